// The local files of a model as staging reads them: the descriptors opened when the model was
// indexed (format::WeightFile::source), never the paths again, and the checks that the bytes
// staged are the bytes indexed. A shard rewritten in place during a load, or a same-size file
// swapped in under the path (a flipped `current` symlink) between plan and stage, is refused
// instead of staged with the old header's offsets.
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "format/tensor_index.hpp"
#include "io/file_source.hpp"
#include "util/error.hpp"

namespace tensorinit::stage {

// The indexed descriptors of index.files, in order, each checked unchanged since it was indexed.
// O_DIRECT where `direct_io` says (nullopt: for files under half resident, whose reads would go to
// the device anyway), never when `may_bypass_cache` is false (the pagecache target: filling the
// cache is the point). `any_direct` is set when one file reads with O_DIRECT. Errors:
// Code::bad_data naming a file that changed; Code::internal for an index built without
// descriptors. Call from one thread, before the readers.
Result<std::vector<io::FileSource*>> prepare_local_files(const format::ModelIndex& index, std::optional<bool> direct_io,
                                                         bool may_bypass_cache, bool& any_direct);

// After staging and before anything is published: every file is still the version that was
// indexed (device, inode, size, mtime, ctime of its descriptor); with `check_paths` (target
// pagecache, where the server opens the paths itself) each path still names that file.
// Code::bad_data naming the file and saying nothing was published. Thread-safe.
Status check_files_unchanged(std::span<io::FileSource* const> files, bool check_paths);

}  // namespace tensorinit::stage
