// A model on a local path: one weight file, or a directory (model.safetensors.index.json, else
// every *.safetensors in it, else every *.tensors, else every *.zst: the order of format/formats.hpp).
// Each file is read as format_of_file says. Produces the tensor index, every size checked against
// the headers.
#pragma once

#include <stop_token>
#include <string>
#include <vector>

#include "format/tensor_index.hpp"
#include "util/error.hpp"

namespace tensorinit::format {

// Errors, each a decision for the planner:
//   Code::no_source  missing, or incomplete (a shard absent or shorter than its header says)
//   Code::denied     unreadable
//   Code::bad_data   malformed, or not the format asked for
//   Code::stopped    `stop` was requested (checked between files and every few thousand tensors)
Result<ModelIndex> index_local_model(const std::string& path, Format format, std::stop_token stop = {});

// Exactly the files `names` (relative to `dir`), in that order: a cache directory holding what a
// remote source's `files` listed. Same errors; tensor names must be unique across the files.
Result<ModelIndex> index_model_files(const std::string& dir, const std::vector<std::string>& names,
                                     Format format);

}  // namespace tensorinit::format
