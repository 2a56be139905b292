// The tensor table (contract: version 1): where each tensor of a staged model is, for the server.
#pragma once

#include <string>

#include "format/tensor_index.hpp"
#include "stage/staged_model.hpp"
#include "util/url.hpp"

namespace tensorinit::stage {

// Where the staged model came from, as the table names it.
struct TableSource {
  std::string model;  // model.name
  std::string type;   // image, volume, s3, http
  std::string path;   // image, volume; empty for a remote source
  Url url;            // remote; printed redacted
};

// Arenas (host: its path; cuda: one per device with its IPC handle; pagecache: none) and, per
// tensor of `index` in order, its arena offset or (pagecache) its file and file offset.
// Thread-safe.
std::string tensor_table_json(const TableSource& source, const format::ModelIndex& index, const StagedModel& staged);

}  // namespace tensorinit::stage
