// The manifest's words for its enums, as written in YAML (manifest.hpp to_string).
#include "manifest/manifest.hpp"

namespace tensorinit::manifest {

const char* to_string(SourceType type) {
  switch (type) {
    case SourceType::image: return "image";
    case SourceType::volume: return "volume";
    case SourceType::s3: return "s3";
    case SourceType::http: return "http";
  }
  return "?";
}

const char* to_string(Target target) {
  switch (target) {
    case Target::host: return "host";
    case Target::pagecache: return "pagecache";
    case Target::cuda: return "cuda";
    case Target::automatic: return "auto";
    case Target::discard: return "discard";
  }
  return "?";
}

const char* to_string(HandoffMode mode) {
  switch (mode) {
    case HandoffMode::exec: return "exec";
    case HandoffMode::signal: return "signal";
    case HandoffMode::none: return "none";
  }
  return "?";
}

const char* to_string(Format format) { return weight_format_name(format).data(); }

const char* to_string(Policy policy) { return policy == Policy::ordered ? "ordered" : "fastest"; }

const char* to_string(Verify verify) {
  switch (verify) {
    case Verify::none: return "none";
    case Verify::size: return "size";
    case Verify::checksums: return "checksums";
  }
  return "?";
}

const char* to_string(DirectIo direct_io) {
  switch (direct_io) {
    case DirectIo::automatic: return "auto";
    case DirectIo::on: return "on";
    case DirectIo::off: return "off";
  }
  return "?";
}

const char* to_string(StartWhen start) { return start == StartWhen::early ? "early" : "after-load"; }

const char* to_string(ReadyProbe probe) {
  switch (probe) {
    case ReadyProbe::none: return "none";
    case ReadyProbe::http: return "http";
    case ReadyProbe::tcp: return "tcp";
    case ReadyProbe::socket: return "socket";
  }
  return "?";
}

const char* to_string(Restart restart) {
  switch (restart) {
    case Restart::never: return "never";
    case Restart::on_failure: return "on-failure";
    case Restart::always: return "always";
  }
  return "?";
}

const char* to_string(CacheSave save) {
  switch (save) {
    case CacheSave::never: return "never";
    case CacheSave::on_ready: return "on-ready";
    case CacheSave::on_exit: return "on-exit";
  }
  return "?";
}

}  // namespace tensorinit::manifest
