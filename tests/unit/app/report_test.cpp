// The report (contract): one function writes it on every path. A load's fields, the phases adding
// up to `total` (a phase that ran beside the others is named, not summed), a failure's code, the
// server's part, and no secret of the manifest in it, whatever failed.
#include "app/report.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <nlohmann/json.hpp>

#include "../scratch_dir.hpp"
#include "app/load_weights.hpp"
#include "tiny_model.hpp"

namespace tensorinit::app {
namespace {

using nlohmann::json;
using testing::ScratchDir;
using testing::ShmDir;
using testing::slurp;
using testing::tiny_manifest;

manifest::Manifest parse(const std::string& yaml) {
  auto m = manifest::parse_text(yaml, "test.yaml");
  REQUIRE_MESSAGE(m.has_value(), m.error().message);
  return std::move(*m);
}


// The report written to a scratch file, parsed.
struct Written {
  ScratchDir dir;
  std::string path = dir / "report.json";
  json write(const manifest::Manifest& m, const LoadedWeights* loaded, const std::optional<plan::Decision>& decision,
             const Error* error, const Phases& phases, const ServerFacts& server = {},
             const json& caches = nullptr) {
    write_report(path, m, loaded, decision, error, phases, server, caches);
    return json::parse(slurp(path));
  }
};

// seconds: the keys that are not phases (spans from the process start, or the server's).
const std::set<std::string> kNotPhases = {"total", "ready", "server", "restart_checks"};

// startup and every phase not named in overlapping_phases, summed: never more than total.
void check_phases_add_up(const json& report) {
  const json& seconds = report["seconds"];
  std::set<std::string> beside;
  if (report.contains("overlapping_phases"))
    for (const auto& name : report["overlapping_phases"]) beside.insert(name.get<std::string>());
  double sum = 0;
  for (const auto& [name, s] : seconds.items()) {
    CHECK_MESSAGE(s.get<double>() >= 0, name);
    if (!kNotPhases.contains(name) && !beside.contains(name)) sum += s.get<double>();
  }
  CHECK_MESSAGE(sum <= seconds["total"].get<double>() + 1e-9, report.dump());
}

TEST_CASE("report: a load has every field of the contract, and its phases add up to total") {
  ShmDir shm;
  const manifest::Manifest m = tiny_manifest();
  Phases phases;
  std::optional<plan::Decision> decision;
  const LoadedWeights loaded = testing::stage_tiny(m, phases, shm.path.string(), decision);
  Written out;
  const json r = out.write(m, &loaded, std::nullopt, nullptr, phases);
  CHECK(r["version"] == 1);
  CHECK(r["ok"] == true);
  CHECK(r["model"] == "tiny");
  CHECK(r["decision"]["chosen"]["type"] == "image");
  CHECK(r["decision"]["chosen"]["path"] == m.model.sources[0].path);
  REQUIRE(r["decision"]["candidates"].size() == 1);
  CHECK(r["decision"]["candidates"][0]["usable"] == true);
  CHECK(r["target"] == "host");
  CHECK(r["files"] == 1);
  CHECK(r["tensors"] == loaded.decision->index->tensors.size());
  CHECK(r["bytes"] == loaded.staged.bytes);
  CHECK(r["readers"].get<unsigned>() >= 1);
  CHECK(r["chunk_size"].get<uint64_t>() > 0);
  CHECK(r["direct_io"].is_boolean());
  CHECK(r["restarts"] == 0);
  CHECK(r["throughput_gbps"].get<double>() >= 0);
  CHECK(r["error"].is_null());
  CHECK(!r.contains("exit_code"));
  CHECK(!r.contains("caches"));
  for (const char* key : {"total", "startup", "plan", "index", "stage", "table"}) CHECK_MESSAGE(r["seconds"].contains(key), key);
  for (const char* key : {"ready", "server", "restart_checks"}) CHECK_MESSAGE(!r["seconds"].contains(key), key);
  check_phases_add_up(r);
  CHECK(!r.contains("overlapping_phases"));
  // The timeline: each phase's end, in order, within total.
  std::vector<std::string> events;
  double last = 0;
  for (const auto& e : r["timeline"]) {
    events.push_back(e["event"].get<std::string>());
    CHECK(e["at"].get<double>() >= last);
    last = e["at"].get<double>();
  }
  CHECK(events == std::vector<std::string>{"plan", "stage", "table"});
  CHECK(last <= r["seconds"]["total"].get<double>());
  ::unlink(loaded.table_path.c_str());
}

TEST_CASE("report: a phase that ran beside the others (CUDA start-up) is named, not summed") {
  Phases phases;
  phases.time("plan", [] { return 0; });
  phases.add_beside("cuda_init", 1000.0);  // longer than the whole run: it overlapped
  Written out;
  const json r = out.write(tiny_manifest(), nullptr, std::nullopt, nullptr, phases);
  CHECK(r["seconds"]["cuda_init"] == 1000.0);
  CHECK(r["overlapping_phases"] == json::array({"cuda_init"}));
  check_phases_add_up(r);
}

TEST_CASE("report: a failure has ok false, the error, its exit code and the decision so far") {
  const manifest::Manifest m = parse("version: 1\nmodel: {name: gone, sources: [{type: volume, path: /nonexistent/m}]}\n"
                                     "stage: {target: pagecache}\n");
  Phases phases;
  std::optional<plan::Decision> decision;
  auto decided = decide_source(m, phases, decision);
  REQUIRE(!decided);
  Written out;
  const json r = out.write(m, nullptr, decision, &decided.error(), phases);
  CHECK(r["ok"] == false);
  CHECK(r["model"] == "gone");
  CHECK(r["target"] == "pagecache");  // the manifest's, since nothing was staged
  CHECK(r["error"] == decided.error().message);
  CHECK(r["exit_code"] == 66);
  CHECK(r["decision"]["chosen"].is_null());
  REQUIRE(r["decision"]["candidates"].size() == 1);
  CHECK(r["decision"]["candidates"][0]["usable"] == false);
  CHECK(!r["decision"]["candidates"][0]["reason"].get<std::string>().empty());
  for (const char* key : {"files", "tensors", "bytes", "readers", "reads"}) CHECK_MESSAGE(!r.contains(key), key);
  CHECK(r["throughput_gbps"] == 0.0);
  check_phases_add_up(r);

  const Error stopped{Code::stopped, "stopped by SIGTERM"};  // before any decision
  const json early = out.write(m, nullptr, std::nullopt, &stopped, Phases{});
  CHECK(early["decision"].is_null());
  CHECK(early["exit_code"] == 143);
}

TEST_CASE("report: the server's part and the caches, only when there are some") {
  Phases phases;
  phases.mark("server_spawned");
  Written out;
  const json r = out.write(tiny_manifest(), nullptr, std::nullopt, nullptr, phases,
                           {.ready = 2.5, .server = 1.5, .restarts = 2, .restart_check_seconds = 0.25},
                           json{{"inductor", {{"restored", true}}}});
  CHECK(r["seconds"]["ready"] == 2.5);
  CHECK(r["seconds"]["server"] == 1.5);
  CHECK(r["seconds"]["restart_checks"] == 0.25);
  CHECK(r["restarts"] == 2);
  CHECK(r["caches"]["inductor"]["restored"] == true);
  REQUIRE(r["timeline"].size() == 1);
  CHECK(r["timeline"][0]["event"] == "server_spawned");
}

TEST_CASE("report: no path writes nothing; a path that cannot be written is not a failure") {
  Phases phases;
  ScratchDir dir;
  write_report("", tiny_manifest(), nullptr, std::nullopt, nullptr, phases, {}, nullptr);
  CHECK(std::filesystem::is_empty(dir.path));
  const std::string file = dir / "file";  // a report path under a regular file
  std::ofstream(file) << "x";
  write_report(file + "/report.json", tiny_manifest(), nullptr, std::nullopt, nullptr, phases, {}, nullptr);
  CHECK(slurp(file) == "x");
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path), {}) == 1);
}

// Every secret a manifest can hold: URL userinfo and query, s3 keys (one through ${VAR}), the
// tensorizer key and passphrase. The remote candidates fail (nothing listens on port 1), so their
// reasons and the error are in the report too.
TEST_CASE("report: no secret of the manifest reaches it, from the decision or the error") {
  ::setenv("TI_REPORT_TEST_SECRET", "envSecretValue42", 1);
  const manifest::Manifest m = parse(
      "version: 1\nmodel:\n  name: secret\n  key: keySecretValue42\n  passphrase: passSecretValue42\n  sources:\n"
      "    - {type: http, url: \"http://alice:urlSecretValue42@127.0.0.1:1/m/?X-Amz-Signature=sigSecretValue42\","
      " retries: 0}\n"
      "    - {type: s3, url: \"s3://bucket/m/\", endpoint: \"http://127.0.0.1:1\", access_key_id: AKIDVALUE42,"
      " secret_access_key: \"${TI_REPORT_TEST_SECRET}\", session_token: tokenSecretValue42, retries: 0}\n");
  ::unsetenv("TI_REPORT_TEST_SECRET");
  Phases phases;
  std::optional<plan::Decision> decision;
  auto decided = decide_source(m, phases, decision);
  REQUIRE(!decided);
  REQUIRE(decision);
  Written out;
  out.write(m, nullptr, decision, &decided.error(), phases);
  const std::string text = slurp(out.path);
  CHECK(text.find("127.0.0.1:1") != std::string::npos);  // the candidates are there, redacted
  for (const char* secret : {"urlSecretValue42", "sigSecretValue42", "envSecretValue42", "tokenSecretValue42",
                             "keySecretValue42", "passSecretValue42"})
    CHECK_MESSAGE(text.find(secret) == std::string::npos, secret, "\n", text);
}

}  // namespace
}  // namespace tensorinit::app
