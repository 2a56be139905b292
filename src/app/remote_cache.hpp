// A remote load's files as the stager reads them: each written through to model.cache
// (<cache>/<model name>/<file>) when its lock can be had, else read from remote only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/byte_source.hpp"
#include "io/file_source.hpp"
#include "plan/remote_model.hpp"
#include "stage/cache_fill.hpp"

namespace tensorinit::app {

class RemoteCache {
 public:
  // `cache_dir` empty: no write-through. Cache errors (a read-only volume, a full disk) are logged
  // and the load goes on from remote.
  RemoteCache(std::shared_ptr<const plan::RemoteModel> remote, const std::string& cache_dir);

  // One per remote file, in index order; valid while this object lives. Thread-safe to read.
  const std::vector<std::shared_ptr<const io::ByteSource>>& sources() const { return sources_; }

  // Every file is being written through (what the pagecache target needs: the server reads them).
  bool filling_all() const;

  // After a successful load: completes, syncs and records every fill of its own, then checks
  // every file's record and writes the shard index when all are there, whoever recorded them
  // (of several replicas filling parts of the model, the one that commits last sees them all).
  // Returns true when the cache now holds the whole model. Failures are logged, not returned:
  // the weights are staged either way.
  bool commit();
  // After commit() returned true: every copy in the cache, opened (what a pagecache table names;
  // a restart checks them as local files: FileSource::check_unchanged, check_path). A copy this
  // load wrote must be the file it renamed there (device and inode); one another replica recorded,
  // the size its record says. Else Code::bad_data naming the copy (replaced since).
  Result<std::vector<std::shared_ptr<const io::FileSource>>> open_copies() const;

  // A fill of this load's own failed to commit (logged): the cache directory may hold an older,
  // unrecorded copy of that file under its name. Not set when others fill or no fill began.
  bool failed() const { return failed_; }

  const std::string& dir() const { return dir_; }

 private:
  bool recorded(const plan::RemoteFile& file) const;  // complete in the cache, this version

  std::shared_ptr<const plan::RemoteModel> remote_;
  std::string dir_;
  std::vector<std::unique_ptr<stage::CacheFill>> fills_;  // null where not filling
  std::vector<std::shared_ptr<const io::ByteSource>> sources_;
  bool failed_ = false;
};

}  // namespace tensorinit::app
