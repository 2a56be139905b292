// A cache archive on an s3 or http source (cache/store.hpp): restored with the same parallel
// ranged reads as remote weights (io/http_source), saved to s3 with one signed PUT of a file
// written to an unlinked temporary (O_TMPFILE in $TMPDIR, else /tmp: a killed save leaves
// nothing). http sources are read only. Names are redacted URLs.
#pragma once

#include <memory>
#include <string>

#include "cache/store.hpp"
#include "manifest/manifest.hpp"

namespace tensorinit::app {

// The store of the archive <cache_name>.tar.zst under `source`'s url. Errors (missing
// credentials, a bad s3 URL) surface when it is opened or written, as a cache's never stop a start.
std::unique_ptr<cache::Store> remote_cache_store(const manifest::Source& source, const std::string& cache_name);

}  // namespace tensorinit::app
