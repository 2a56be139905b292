// The local files of a model as staging reads them: the descriptors opened when the model was
// indexed (format::WeightFile::source), never the paths again, and the checks that the bytes
// staged are the bytes indexed. A shard rewritten in place during a load, or a same-size file
// swapped in under the path (a flipped `current` symlink) between plan and stage, is refused
// instead of staged with the old header's offsets.
#pragma once

#include <span>
#include <vector>

#include "format/tensor_index.hpp"
#include "io/file_source.hpp"
#include "manifest/manifest.hpp"
#include "util/error.hpp"

namespace tensorinit::stage {

// The indexed descriptors of index.files, in order, each checked unchanged since it was indexed,
// O_DIRECT enabled where `stage.direct_io` says (never for target pagecache). `any_direct` is set
// when one file reads with O_DIRECT. Errors: Code::bad_data naming a file that changed;
// Code::internal for an index built without descriptors. Call from one thread, before the readers.
Result<std::vector<io::FileSource*>> prepare_local_files(const format::ModelIndex& index, const manifest::Stage& stage,
                                                         manifest::Target target, bool& any_direct);

// After staging and before anything is published: every file is still the version that was
// indexed (device, inode, size, mtime, ctime of its descriptor); with target pagecache, where the
// server opens the paths itself, each path still names that file. Code::bad_data naming the file
// and saying nothing was published. Thread-safe.
Status check_files_unchanged(std::span<io::FileSource* const> files, manifest::Target target);

// Target pagecache hands the server `file` and `file_offset` to read itself: every tensor's bytes
// must lie in its file as they are. Not so for a packed file (compressed), a tensorizer meta tensor
// (no bytes in the file: loaded as zeros) or an encrypted tensor (ciphertext). Code::no_source
// naming the file, the tensor and the fix. The one check for every pagecache path (local, cache,
// remote written through), run before anything is read or written. Thread-safe.
Status check_pagecache_can_serve(const format::ModelIndex& index);

}  // namespace tensorinit::stage
