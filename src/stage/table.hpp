// The tensor table (contract: version 1): where each tensor of a staged model is, for the server.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

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

// The part of the table that grows with the tensors: the text between the brackets of its
// "tensors" array, each tensor of `index` in order at `offsets[i]` of arena 0, or (`pagecache`)
// in its file. Thread-safe.
std::string table_tensors_text(const format::ModelIndex& index, std::span<const uint64_t> offsets, bool pagecache);

// The table with `tensors` (table_tensors_text's for this model and staged.layout, or pagecache).
// Thread-safe.
std::string tensor_table_json(const TableSource& source, const StagedModel& staged, std::string tensors);

// An arena table's tensors, written on a thread of their own while the readers stage: they depend
// on the index and layout_arena(index) alone (a 100,000-tensor table cost 0.03-0.05 s after the
// staging, measured here). The thread stops (and is joined) when `stop` is requested or this is
// destroyed unused: a failed load waits for no table, and publishes none. Without a thread to be
// had, or when the thread threw (bad_alloc), take() builds the text. `index` must outlive this. Not thread-safe: one owner.
class TableTensorsAhead {
 public:
  TableTensorsAhead(const format::ModelIndex& index, std::stop_token stop);
  // Waits for the thread; its text when it was built for `layout`'s offsets, else built here.
  std::string take(const ArenaLayout& layout);

 private:
  const format::ModelIndex& index_;
  std::vector<uint64_t> offsets_;
  std::optional<std::string> text_;  // nullopt: stopped
  std::jthread thread_;                         // declared after what it writes: joined first
  std::optional<std::stop_callback<std::function<void()>>> forward_stop_;  // stop -> thread_
};

}  // namespace tensorinit::stage
