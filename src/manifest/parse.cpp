// The manifest parser: yaml-cpp tree -> plain structs, every key checked (contract "Manifest").
// yaml-cpp throws; Fields throws Failure. Both stop at parse_text/parse_file, which return values.
#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <cstdlib>
#include <algorithm>
#include <optional>
#include <ranges>

#include "manifest/caches.hpp"
#include "manifest/expand.hpp"
#include "manifest/fields.hpp"
#include "manifest/handoff_keys.hpp"
#include "manifest/remote_keys.hpp"
#include "manifest/manifest.hpp"
#include "manifest/signals.hpp"
#include "manifest/words.hpp"
#include "util/redact.hpp"
#include "util/units.hpp"

namespace tensorinit::manifest {
namespace {

// A manifest is a page of YAML; a bigger "manifest" is a wrong path (/dev/zero, a weight file).
constexpr size_t kMaxManifestBytes = 1 << 20;
constexpr uint64_t kMinChunk = 4ull << 10;
constexpr uint64_t kMaxChunk = 1ull << 30;
constexpr int64_t kMaxReaders = 1024;

using Entries = std::vector<std::pair<std::string, Field>>;

const Field* find(const Entries& entries, std::string_view key) {
  for (auto& [name, field] : entries)
    if (name == key) return &field;
  return nullptr;
}

const Field& require(const Fields& f, const Field& map, const Entries& entries, std::string_view key,
                     std::string_view allowed) {
  if (const Field* field = find(entries, key)) return *field;
  f.fail(map, "missing required key '" + std::string(key) + "' (" + std::string(allowed) + ")");
}

// A key of an already checked map (parse_stage and parse_handoff have validated it).
std::optional<Field> child(const Field& map, std::string_view key) {
  if (!map.node.IsMap()) return std::nullopt;
  for (auto it = map.node.begin(); it != map.node.end(); ++it)
    if (it->first.Scalar() == key)
      return Field{map.path + "." + std::string(key), it->second, it->second.Mark()};
  return std::nullopt;
}

}  // namespace

// Contract: [a-z0-9._-]+, not "." or ".." (the name becomes a file name in /dev/shm and the cache).
bool valid_model_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

namespace {

// "image | volume | s3 | http", and "image and volume" (the local types), from util/source_type.hpp.
std::string source_type_words(std::string_view separator, bool local_only) {
  std::vector<std::string_view> words;
  for (const SourceTypeInfo& t : kSourceTypes)
    if (!local_only || !t.remote) words.push_back(t.word);
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += i + 1 == words.size() && separator == ", " ? " and " : std::string(separator);
    out += words[i];
  }
  return out;
}

// The keys any source entry may have: type, path (local), then every remote row's keys in order.
std::vector<std::string_view> source_entry_keys() {
  std::vector<std::string_view> keys{"type", "path"};
  for (const SourceTypeInfo& t : kSourceTypes)
    for (auto part : std::views::split(t.keys, std::string_view(", ")))
      if (std::string_view key(part.begin(), part.end()); std::ranges::find(keys, key) == keys.end())
        keys.push_back(key);
  return keys;
}

}  // namespace

Source parse_source(const Fields& f, const Field& entry) {
  const std::string types = source_type_words(" | ", false);
  if (!entry.node.IsMap())
    f.fail(entry, "expected a map, got " + describe(entry.node) + " (type: " + types + ", with path or url)");
  Entries keys = f.entries(entry, source_entry_keys());
  const Field& type = require(f, entry, keys, "type", types);
  Source source;
  source.where = f.where(entry.mark);
  source.type = f.word<SourceType>(type, kSourceTypeWords);
  const SourceTypeInfo& info = source_type_info(source.type);
  const std::string type_name(info.word);
  for (auto& [name, field] : keys) {
    if (name == "type") continue;
    if (!info.remote) {
      if (name != "path")
        f.fail(field, "not allowed for type " + type_name + " (" + source_type_words(", ", true) +
                          " sources take only path)");
      source.path = f.text(field, "a file or directory path");
      if (source.path.empty()) f.fail(field, "empty path (a file or directory path)");
    } else {
      parse_remote_key(f, source, name, field);
    }
  }
  if (!info.remote && !find(keys, "path"))
    f.fail(entry, "missing required key 'path' (type " + type_name + " needs a file or directory path)");
  if (info.remote && !find(keys, "url"))
    f.fail(entry, "missing required key 'url' (type " + type_name + " needs " + std::string(info.url_form) + ")");
  if (takes_key(info, "region") && source.region.empty()) {
    const char* region = std::getenv("AWS_REGION");
    if (!region || !*region) region = std::getenv("AWS_DEFAULT_REGION");
    source.region = region && *region ? region : "us-east-1";
  }
  return source;
}

namespace {

Model parse_model(const Fields& f, const Field& map) {
  Entries keys = f.entries(map, {"name", "format", "sources", "policy", "cache", "verify", "key", "passphrase"});
  Model model;
  constexpr std::string_view allowed = "[a-z0-9._-], 1 to 64 characters, not . or ..";
  const Field& name = require(f, map, keys, "name", allowed);
  model.name = f.text(name, allowed);
  if (!valid_model_name(model.name))
    f.fail(name, f.quoted(name, model.name) + " is not a valid name (" + std::string(allowed) + ")");
  const Field& sources = require(f, map, keys, "sources", "a list of at least one source");
  if (sources.node.IsNull()) f.fail(sources, "no sources (a list of at least one source)");
  for (const Field& item : f.items(sources, "a list of sources, each a map with type and path or url"))
    model.sources.push_back(parse_source(f, item));
  if (model.sources.empty()) f.fail(sources, "no sources (a list of at least one source)");
  if (const Field* field = find(keys, "format"))
    model.format = f.word<Format>(*field, kWeightFormatWords);
  if (const Field* field = find(keys, "policy"))
    model.policy = f.word<Policy>(*field, kPolicyWords);
  if (const Field* field = find(keys, "cache")) model.cache = f.optional_text(*field, "a directory path");
  if (const Field* field = find(keys, "verify"))
    model.verify = f.word<Verify>(*field, kVerifyWords);
  // Secrets: taken as written (after ${VAR} expansion); checked where they are used, so that a
  // message can never quote them.
  if (const Field* field = find(keys, "key")) model.key = Secret(f.optional_text(*field, "hex or base64, usually ${TENSORINIT_KEY}"));
  if (const Field* field = find(keys, "passphrase"))
    model.passphrase = Secret(f.optional_text(*field, "a passphrase, usually ${TENSORINIT_PASSPHRASE}"));
  return model;
}

int device_index(const Fields& f, const Field& field, std::string_view text) {
  auto number = Fields::parse_integer(text);
  if (!number || *number < 0 || *number > 1023)
    f.fail(field, f.quoted(field, text) + " is not a device index (integers 0..1023, e.g. [0, 1])");
  return static_cast<int>(*number);
}

// A list of device indices; a scalar "0,1" (handy with ${CUDA_DEVICES}) is read as a list too.
std::vector<int> parse_devices(const Fields& f, const Field& field) {
  std::vector<int> devices;
  constexpr std::string_view allowed = "a list of device indices, e.g. [0, 1]";
  if (field.node.IsScalar()) {
    std::string text = f.text(field, allowed);
    size_t start = 0;
    while (start <= text.size()) {
      size_t comma = std::min(text.find(',', start), text.size());
      std::string item = text.substr(start, comma - start);
      while (!item.empty() && item.front() == ' ') item.erase(0, 1);
      while (!item.empty() && item.back() == ' ') item.pop_back();
      devices.push_back(device_index(f, field, item));
      start = comma + 1;
    }
  } else {
    for (const Field& item : f.items(field, allowed)) devices.push_back(device_index(f, item, f.text(item, allowed)));
  }
  if (devices.empty()) f.fail(field, "no devices (" + std::string(allowed) + ")");
  for (size_t i = 0; i < devices.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (devices[i] == devices[j]) f.fail(field, "device " + std::to_string(devices[i]) + " is listed twice");
  return devices;
}

Stage parse_stage(const Fields& f, const Field& map) {
  Entries keys = f.entries(map, {"target", "devices", "readers", "chunk_size", "direct_io", "shared_cursor", "memory_limit"});
  Stage stage;
  if (const Field* field = find(keys, "target"))
    stage.target = f.word<Target>(*field, kTargetWords);
  if (const Field* field = find(keys, "devices")) stage.devices = parse_devices(f, *field);
  if (const Field* field = find(keys, "readers")) {
    constexpr std::string_view allowed = "auto or an integer 1..1024";
    std::string text = f.text(*field, allowed);
    if (text != "auto") {
      auto number = Fields::parse_integer(text);
      if (!number || *number < 1 || *number > kMaxReaders)
        f.fail(*field, f.quoted(*field, text) + " is not a reader count (" + std::string(allowed) + ")");
      stage.readers = static_cast<uint32_t>(*number);
    }
  }
  const Field* chunk = find(keys, "chunk_size");
  if (chunk) {
    constexpr std::string_view allowed = "a power of two from 4KiB to 1GiB";
    stage.chunk_size = f.size(*chunk, allowed);
    stage.chunk_size_set = true;
    uint64_t c = stage.chunk_size;
    if (c < kMinChunk || c > kMaxChunk || (c & (c - 1)) != 0)
      f.fail(*chunk, format_bytes(c) + " is not a valid chunk size (" + std::string(allowed) + ")");
  }
  if (const Field* field = find(keys, "direct_io"))
    stage.direct_io = f.word<DirectIo>(*field, kDirectIoWords);
  if (const Field* field = find(keys, "shared_cursor"))
    stage.shared_cursor = f.word<DirectIo>(*field, kDirectIoWords);
  const Field* limit = find(keys, "memory_limit");
  if (limit) stage.memory_limit = f.size(*limit, "at least chunk_size, e.g. 1GiB");
  if (stage.memory_limit < stage.chunk_size) {
    const Field& at = limit ? *limit : chunk ? *chunk : map;
    f.fail(at, "memory_limit " + format_bytes(stage.memory_limit) + " is smaller than chunk_size " +
                   format_bytes(stage.chunk_size) + " (memory_limit must hold at least one chunk)");
  }
  return stage;
}

std::vector<std::string> parse_command(const Fields& f, const Field& field) {
  constexpr std::string_view allowed = "a list of strings such as [python3, -m, server], or one shell command line";
  ExpandOptions later{[](std::string_view name) { return is_handoff_variable(name); }};
  if (field.node.IsNull()) return {};
  if (field.node.IsScalar()) {
    std::string line = f.text(field, allowed, later);
    if (line.empty()) f.fail(field, std::string("empty command (") + std::string(allowed) + ")");
    return {"/bin/sh", "-c", line};
  }
  std::vector<std::string> command;
  for (const Field& item : f.items(field, allowed)) command.push_back(f.text(item, allowed, later));
  if (!command.empty() && command.front().empty())
    f.fail(field, "the program name (first item) is empty (" + std::string(allowed) + ")");
  return command;
}

int parse_handoff_signal(const Fields& f, const Field& field) {
  constexpr std::string_view allowed = "a name such as SIGUSR1, USR1, SIGRTMIN+3, or a number 1..64";
  std::string text = f.text(field, allowed);
  auto signal = parse_signal(text);
  if (!signal) f.fail(field, f.quoted(field, text) + " is not a signal (" + std::string(allowed) + ")");
  if (*signal == SIGKILL || *signal == SIGSTOP)
    f.fail(field, signal_name(*signal) + " cannot be caught: the server could not treat it as 'weights ready' (" +
                      std::string(allowed) + ")");
  return *signal;
}

Handoff parse_handoff(const Fields& f, const Field& map) {
  Entries keys = f.entries(map, {"mode", "command", "signal", "start", "grace", "ready", "restart", "max_restarts",
                                 "restart_delay"});
  Handoff handoff;
  if (const Field* field = find(keys, "mode"))
    handoff.mode = f.word<HandoffMode>(*field, kHandoffModeWords);
  if (const Field* field = find(keys, "command")) handoff.command = parse_command(f, *field);
  if (const Field* field = find(keys, "signal")) handoff.signal = parse_handoff_signal(f, *field);
  if (const Field* field = find(keys, "start"))
    handoff.start = f.word<StartWhen>(*field, kStartWhenWords);
  if (const Field* field = find(keys, "grace")) handoff.grace = f.duration(*field, "e.g. 10s, 500ms, 1m");
  parse_supervision_keys(f, map, handoff, {.mode = find(keys, "mode"), .ready = find(keys, "ready"),
                                           .restart = find(keys, "restart"), .max_restarts = find(keys, "max_restarts"),
                                           .restart_delay = find(keys, "restart_delay")});
  return handoff;
}

Manifest parse_root(const Fields& f, const YAML::Node& root) {
  Field top{"", root, root.Mark()};
  if (!root.IsMap()) {
    if (root.IsNull()) f.fail(YAML::Mark::null_mark(), "", "empty manifest (a map with version, model, stage, handoff, report)");
    f.fail(top, "expected a map, got " + describe(root) + " (keys: version, model, stage, handoff, caches, report)");
  }
  Entries keys = f.entries(top, {"version", "model", "stage", "handoff", "caches", "report"});
  Manifest manifest;
  manifest.file = f.file();
  const Field& version = require(f, top, keys, "version", "version: 1");
  std::string version_text = f.text(version, "1");
  if (version_text != "1")
    f.fail(version, "unsupported manifest version " + f.quoted(version, version_text) + " (this tensorinit reads version 1)");
  manifest.version = 1;
  manifest.model = parse_model(f, require(f, top, keys, "model", "a map with name and sources"));
  const Field* stage = find(keys, "stage");
  if (stage) manifest.stage = parse_stage(f, *stage);
  const Field* handoff = find(keys, "handoff");
  if (handoff) manifest.handoff = parse_handoff(f, *handoff);
  if (const Field* field = find(keys, "caches")) manifest.caches = parse_caches(f, *field);
  if (const Field* field = find(keys, "report")) manifest.report = f.optional_text(*field, "a file path, or \"\" for none");

  if (manifest.stage.target == Target::discard && manifest.handoff.mode != HandoffMode::none) {
    std::optional<Field> mode = handoff ? child(*handoff, "mode") : std::nullopt;
    f.fail(mode ? *mode : *child(*stage, "target"), "stage.target discard (a benchmark of the reads: nothing is kept) "
                                                    "needs handoff.mode: none");
  }
  // GPU memory belongs to the process that allocated it: an exec'd server would find nothing.
  if (manifest.stage.target == Target::cuda && manifest.handoff.mode == HandoffMode::exec) {
    std::optional<Field> mode = handoff ? child(*handoff, "mode") : std::nullopt;
    Field at = mode ? *mode : *child(*stage, "target");
    f.fail(at, "handoff.mode exec cannot be used with stage.target cuda: GPU memory does not survive exec "
               "(use handoff.mode: signal)");
  }
  return manifest;
}

std::string syntax_error(const std::string& file, const YAML::Exception& e) {
  std::string where = file;
  if (e.mark.line >= 0 && e.mark.column >= 0)
    where += ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
  return printable(where + ": YAML syntax error: " + e.msg);
}

}  // namespace

Result<Manifest> parse_text(const std::string& text, const std::string& file_name) {
  try {
    std::vector<YAML::Node> documents = YAML::LoadAll(text);
    Fields fields(file_name, process_env());
    if (documents.size() > 1)
      fields.fail(documents[1].Mark(), "", "more than one YAML document (a manifest is one document)");
    return parse_root(fields, documents.empty() ? YAML::Node() : documents.front());
  } catch (const Failure& failure) {
    return std::unexpected(failure.error);
  } catch (const YAML::Exception& e) {
    return fail(Code::bad_manifest, syntax_error(file_name, e));
  } catch (const std::exception& e) {
    return fail(Code::bad_manifest, printable(file_name + ": cannot parse manifest: " + e.what()));
  }
}

Result<Manifest> parse_file(const std::string& path) {
  if (path.empty()) return fail(Code::bad_manifest, "cannot open manifest: the path is empty");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(Code::bad_manifest, printable(path) + ": cannot open manifest: " + std::strerror(errno));
  std::string text;
  char buffer[16384];
  int read_errno = 0;
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) read_errno = errno;
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxManifestBytes) break;
  }
  ::close(fd);
  if (read_errno != 0)
    return fail(Code::bad_manifest, printable(path) + ": cannot read manifest: " + std::strerror(read_errno));
  if (text.size() > kMaxManifestBytes)
    return fail(Code::bad_manifest, printable(path) + ": not a manifest: larger than " + format_bytes(kMaxManifestBytes));
  if (text.find('\0') != std::string::npos)
    return fail(Code::bad_manifest, printable(path) + ": not a manifest: binary data (a NUL byte)");
  return parse_text(text, path);
}

}  // namespace tensorinit::manifest
