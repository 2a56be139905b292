// A remote source (a remote row of util/source_type.hpp: s3, http) as the planner sees it: the weight files found under its URL
// (explicit `files`, else model.safetensors.index.json, else model.safetensors), each opened
// (size and ETag pinned for the whole load) and indexed through ranged reads of its header.
#pragma once

#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "format/tensor_index.hpp"
#include "io/byte_source.hpp"
#include "io/http_request.hpp"
#include "io/remote_endpoint.hpp"
#include "util/url.hpp"
#include "manifest/manifest.hpp"
#include "util/error.hpp"

namespace tensorinit::plan {

struct RemoteFile {
  std::string name;  // relative to the source's url: also its path under the cache directory
  std::string url;   // redacted; what cache records name
  std::string etag;
  std::shared_ptr<const io::ByteSource> source;  // pinned to `etag`; thread-safe
  // The server sent an ETag or a Last-Modified: every read is checked against that version. False:
  // only the size is, so a rewrite during the load goes unseen (and the file is never cached).
  bool pinned = true;
};

struct RemoteModel {
  format::ModelIndex index;         // files[i].path = files[i].url
  std::vector<RemoteFile> files;    // parallel to index.files
  std::optional<std::string> shard_index;  // the index.json as fetched, for the cache
  std::string shard_index_url;             // its redacted URL (the cache record's)
};

// The endpoint of a remote source (io::open_endpoint for its type; errors name source.where, never a
// secret), and its transport options. Also used by app/cache_remote.
Result<io::RemoteEndpoint> endpoint_for(const manifest::Source& source);
io::RemoteOptions options_for(const manifest::Source& source);

// The URL a cache record gives for a file of this source: the source's url, redacted, with its
// query dropped, then '/' and name (so that the last segment is the file's name).
std::string remote_file_url(const manifest::Source& source, const std::string& name);

// Readers for a remote load: the source's `connections`, else 8 per usable core (at least 16):
// each reader is one keep-alive connection waiting mostly on the network.
unsigned remote_readers(const manifest::Source& source, unsigned usable_cores);

// Errors: Code::no_source (404: not there), Code::denied (401/403, missing credentials),
// Code::unavailable (unreachable after retries, libcurl missing), Code::bad_data (malformed).
// Messages name redacted URLs only.
Result<RemoteModel> open_remote_model(const manifest::Source& source, format::Format format, std::stop_token stop);

}  // namespace tensorinit::plan
