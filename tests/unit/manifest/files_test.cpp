// parse_file on real files: the shipped config/ manifests, a written temp file, and files that are
// missing, unreadable or not manifests at all.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "manifest/manifest.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::manifest;

const std::string kRepo = TENSORINIT_FIXTURES "/../..";

std::string temp_path(const char* name) {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp && *tmp ? tmp : "/tmp") + "/tensorinit-manifest-test-" + std::to_string(::getpid()) + "-" + name;
}

}  // namespace

TEST_CASE("manifest: config/minimal.yaml parses to the defaults") {
  auto m = parse_file(kRepo + "/config/minimal.yaml");
  REQUIRE_MESSAGE(m.has_value(), m.error().message);
  CHECK(m->file == kRepo + "/config/minimal.yaml");
  CHECK(m->version == 1);
  CHECK_FALSE(m->model.name.empty());
  REQUIRE(m->model.sources.size() == 1);
  Stage stage;
  CHECK(m->stage.chunk_size == stage.chunk_size);
  CHECK(m->stage.readers == stage.readers);
}

// The reference documents each key's default by writing it: every key it sets must equal the
// struct default, except the ones that have no default (name, sources) or show an example.
TEST_CASE("manifest: config/tensorinit.reference.yaml parses and states the true defaults") {
  auto m = parse_file(kRepo + "/config/tensorinit.reference.yaml");
  REQUIRE_MESSAGE(m.has_value(), m.error().message);
  Manifest defaults;
  CHECK(m->model.format == defaults.model.format);
  CHECK(m->model.policy == defaults.model.policy);
  CHECK(m->model.cache == defaults.model.cache);
  CHECK(m->model.verify == defaults.model.verify);
  CHECK(m->stage.target == defaults.stage.target);
  CHECK(m->stage.devices == defaults.stage.devices);
  CHECK(m->stage.readers == defaults.stage.readers);
  CHECK(m->stage.chunk_size == defaults.stage.chunk_size);
  CHECK(m->stage.chunk_size_set == defaults.stage.chunk_size_set);  // written, it would fix the requests
  CHECK(m->stage.direct_io == defaults.stage.direct_io);
  CHECK(m->stage.memory_limit == defaults.stage.memory_limit);
  CHECK(m->handoff.mode == defaults.handoff.mode);
  CHECK(m->handoff.signal == defaults.handoff.signal);
  CHECK(m->handoff.start == defaults.handoff.start);
  CHECK(m->handoff.grace == defaults.handoff.grace);
  CHECK(m->handoff.ready == defaults.handoff.ready);
  CHECK(m->handoff.ready_timeout == defaults.handoff.ready_timeout);
  CHECK(m->handoff.restart == defaults.handoff.restart);
  CHECK(m->handoff.max_restarts == defaults.handoff.max_restarts);
  CHECK(m->handoff.restart_delay == defaults.handoff.restart_delay);
  CHECK(m->report == defaults.report);
  // It shows one source of each type.
  REQUIRE(m->model.sources.size() == 4);
  CHECK(m->model.sources[0].type == SourceType::image);
  CHECK(m->model.sources[1].type == SourceType::volume);
  CHECK(m->model.sources[2].type == SourceType::s3);
  CHECK(m->model.sources[3].type == SourceType::http);
  const Source& s3 = m->model.sources[2];
  Source remote_defaults;
  CHECK(s3.retries == remote_defaults.retries);
  CHECK(s3.stall_timeout == remote_defaults.stall_timeout);
  CHECK(s3.connections == remote_defaults.connections);
  CHECK(s3.files == remote_defaults.files);
  CHECK(s3.ca_file == remote_defaults.ca_file);
  CHECK(s3.access_key_id.empty());
  CHECK(s3.secret_access_key.empty());
  CHECK(s3.session_token.empty());
  CHECK(m->model.key.empty());
  CHECK(m->model.passphrase.empty());
  CHECK_FALSE(m->handoff.command.empty());
}

TEST_CASE("manifest: parse_file reads a written file and names it in errors") {
  std::string path = temp_path("m.yaml");
  {
    std::ofstream out(path);
    out << "version: 1\nmodel:\n  name: tiny\n  sources: [{type: volume, path: /v}]\nstage:\n  readers: none\n";
  }
  auto m = parse_file(path);
  std::remove(path.c_str());
  REQUIRE_FALSE(m.has_value());
  CHECK(m.error().code == Code::bad_manifest);
  CHECK(m.error().message.starts_with(path + ":6:12: stage.readers: 'none' is not a reader count"));
}

TEST_CASE("manifest: missing, unreadable and non-manifest files are exit 78") {
  auto missing = parse_file("/nonexistent/tensorinit.yaml");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == Code::bad_manifest);
  CHECK(missing.error().message == "/nonexistent/tensorinit.yaml: cannot open manifest: No such file or directory");

  auto directory = parse_file(TENSORINIT_FIXTURES);
  REQUIRE_FALSE(directory.has_value());
  CHECK(directory.error().code == Code::bad_manifest);
  CHECK(directory.error().message == std::string(TENSORINIT_FIXTURES) + ": cannot read manifest: Is a directory");

  auto binary = parse_file(TENSORINIT_FIXTURES "/tiny-f16.safetensors");
  REQUIRE_FALSE(binary.has_value());
  CHECK(binary.error().code == Code::bad_manifest);
  CHECK(binary.error().message.starts_with(TENSORINIT_FIXTURES "/tiny-f16.safetensors: "));

  auto endless = parse_file("/dev/zero");
  REQUIRE_FALSE(endless.has_value());
  CHECK(endless.error().message == "/dev/zero: not a manifest: larger than 1.00 MiB");

  if (::geteuid() != 0) {  // root reads anything: the check only means something for others
    std::string path = temp_path("unreadable.yaml");
    { std::ofstream out(path); out << "version: 1\n"; }
    ::chmod(path.c_str(), 0);
    auto denied = parse_file(path);
    std::remove(path.c_str());
    REQUIRE_FALSE(denied.has_value());
    CHECK(denied.error().message == path + ": cannot open manifest: Permission denied");
  }
}
