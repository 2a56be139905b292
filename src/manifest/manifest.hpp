// The deployment manifest as plain structs (contract v1). Parsing and validation live in parse.cpp;
// everything here has its contract default already applied.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/error.hpp"
#include "util/redact.hpp"
#include "util/source_type.hpp"
#include "util/target.hpp"
#include "util/url.hpp"
#include "util/weight_format.hpp"

namespace tensorinit::manifest {

using SourceType = tensorinit::SourceType;  // image | volume | s3 | http: one row each (util/source_type.hpp)
using Format = WeightFormat;  // automatic | safetensors | tensorizer | packed (util/weight_format.hpp)
enum class Policy { ordered, fastest };
enum class Verify { none, size, checksums };
using Target = tensorinit::Target;  // host | pagecache | cuda | automatic | discard (util/target.hpp)
using tensorinit::to_string;        // its words, and SourceType's
enum class DirectIo { automatic, on, off };
enum class HandoffMode { exec, signal, none };
enum class StartWhen { early, after_load };
enum class CacheSave { never, on_ready, on_exit };
enum class ReadyProbe { none, http, tcp, socket };
enum class Restart { never, on_failure, always };

struct Source {
  SourceType type = SourceType::image;
  std::string path;       // image, volume: a file or a directory
  Url url;                // s3 (s3://bucket/prefix/), http(s) prefix; printed redacted only
  Url endpoint;           // s3
  std::string region;     // s3 (default us-east-1)
  std::string where;      // "file:line:col" of the entry, for run-time errors
  // Remote sources (s3, http):
  std::vector<std::string> files;  // explicit weight files under url; empty: the index, else model.safetensors
  std::optional<bool> path_style;  // s3: bucket in the path; unset: true when endpoint is set
  std::string access_key_id;       // s3: empty: AWS_ACCESS_KEY_ID
  Secret secret_access_key;        // s3: empty: AWS_SECRET_ACCESS_KEY
  Secret session_token;            // s3: empty: AWS_SESSION_TOKEN
  std::string ca_file;             // https: CA bundle; empty: the system store
  uint32_t connections = 0;        // 0 = auto (scaled to usable cores)
  uint32_t retries = 6;            // per request, after the first attempt
  std::chrono::milliseconds stall_timeout{10000};  // no byte received for this long: retry
  // Not a manifest key: set by the planner on the volume candidate it adds for model.cache, to the
  // url of the remote source whose files the cache holds.
  Url cached_from;
};

struct Model {
  std::string name;
  Format format = Format::automatic;
  std::vector<Source> sources;
  Policy policy = Policy::ordered;
  std::string cache;  // empty: none
  Verify verify = Verify::size;
  Secret key;         // tensorizer encryption key (hex or base64 as written); empty: none
  Secret passphrase;  // tensorizer encryption passphrase (Argon2id parameters from the file)
};

struct Stage {
  Target target = Target::host;
  std::vector<int> devices{0};
  uint32_t readers = 0;  // 0 = auto
  uint64_t chunk_size = 16ull << 20;
  bool chunk_size_set = false;  // given in the manifest; else the read controller sizes the reads
  DirectIo direct_io = DirectIo::automatic;
  DirectIo shared_cursor = DirectIo::automatic;  // the same words: auto | on | off
  uint64_t memory_limit = 1ull << 30;
};

struct Handoff {
  HandoffMode mode = HandoffMode::exec;
  std::vector<std::string> command;  // empty: none given; a YAML string s becomes [/bin/sh, -c, s]
  int signal = 10;  // SIGUSR1
  StartWhen start = StartWhen::early;
  std::chrono::milliseconds grace{10000};
  // handoff.ready: how tensorinit learns the server is ready (manifest/handoff_keys.cpp).
  ReadyProbe ready = ReadyProbe::none;
  std::string ready_host;        // http, tcp: a host name or address (IPv6 without brackets)
  std::string ready_port;        // http (default 80), tcp
  std::string ready_path = "/";  // http: path and query sent in the GET
  std::chrono::milliseconds ready_timeout{600000};  // from each server start
  std::optional<std::string> ready_file;  // written at ready; unset: `ready` beside the report; "": none
  // handoff.restart: the server restarted on the staged weights (signal mode only).
  Restart restart = Restart::never;
  uint32_t max_restarts = 5;
  std::chrono::milliseconds restart_delay{1000};      // first delay; doubles
  std::chrono::milliseconds restart_delay_max{30000}; // the cap (not a key: max(30s, restart_delay))
};

// A start-up cache (contract "caches"): a directory the server fills and reuses, restored from
// the first source holding <name>.tar.zst before the server starts, saved to the first writable one.
struct Cache {
  std::string name;             // [a-z0-9._-]: the archive is <name>.tar.zst under each source
  std::string path;             // absolute; where the server expects it
  std::vector<Source> sources;  // image and http: read only; volume and s3: read and write
  CacheSave save = CacheSave::never;
  uint64_t max_size = 4ull << 30;  // unpacked bytes, restore and save alike
  std::string where;            // "file:line:col" of the entry
};

struct Manifest {
  std::string file;  // where it was read from
  int version = 1;
  Model model;
  Stage stage;
  Handoff handoff;
  std::vector<Cache> caches;
  std::string report = "/run/tensorinit/report.json";
};

// Reads, expands ${VAR} / ${VAR:-default} from the environment, and validates every key.
// Errors are Code::bad_manifest with "file:line:col: message". No exception escapes.
// handoff.command keeps ${TENSORINIT_MODEL_DIR}, ${TENSORINIT_TABLE} and ${TENSORINIT_SOURCE}
// unexpanded: the handoff fills them in (manifest/expand.hpp substitute_handoff_variables).
Result<Manifest> parse_file(const std::string& path);
Result<Manifest> parse_text(const std::string& text, const std::string& file_name);

const char* to_string(HandoffMode);
const char* to_string(Format);
const char* to_string(Policy);
const char* to_string(Verify);
const char* to_string(DirectIo);
const char* to_string(StartWhen);
const char* to_string(CacheSave);
const char* to_string(ReadyProbe);
const char* to_string(Restart);

}  // namespace tensorinit::manifest
