#include "plan/decision.hpp"

#include <doctest/doctest.h>

#include <map>

namespace tensorinit::plan {
namespace {

// A scripted environment: each source path maps to a probe result and a read rate.
class FakeEnvironment final : public Environment {
 public:
  std::map<std::string, CandidateProbe> probes;
  std::map<std::string, double> rates;
  std::vector<std::string> measured;

  CandidateProbe probe(const manifest::Source& source, manifest::Format) override { return probes.at(source.path); }
  double measure_read_rate(const manifest::Source& source, const CandidateProbe&) override {
    measured.push_back(source.path);
    return rates.at(source.path);
  }
};

format::ModelIndex index_of(uint64_t bytes) {
  format::ModelIndex index;
  index.files.push_back({"w.safetensors", bytes + 100});
  index.tensors.push_back({.name = "w", .dtype = "U8", .shape = {bytes}, .file = 0, .file_offset = 100, .bytes = bytes});
  return index;
}

manifest::Model model_with(std::vector<std::string> paths, manifest::Policy policy = manifest::Policy::ordered) {
  manifest::Model m;
  m.name = "t";
  m.policy = policy;
  for (auto& p : paths) m.sources.push_back({.type = manifest::SourceType::volume, .path = p});
  return m;
}

}  // namespace

TEST_CASE("plan: ordered takes the first usable candidate and keeps every reason") {
  FakeEnvironment env;
  env.probes["/a"] = {.fault = Error{Code::no_source, "missing: /a does not exist"}};
  env.probes["/b"] = {.index = index_of(10)};
  env.probes["/c"] = {.index = index_of(20)};
  const auto d = decide(model_with({"/a", "/b", "/c"}), env);
  REQUIRE(d.ok());
  CHECK(d.chosen == 1);
  CHECK(d.index->tensor_bytes() == 10);
  CHECK_FALSE(d.candidates[0].usable);
  CHECK(d.candidates[0].reason == "missing: /a does not exist");
  CHECK(d.candidates[2].usable);
  CHECK(d.candidates[2].bytes == 20);
  CHECK(env.measured.empty());
  CHECK(d.why.find("missing") != std::string::npos);
}

TEST_CASE("plan: fastest measures every usable candidate and takes the quickest") {
  FakeEnvironment env;
  env.probes["/slow"] = {.index = index_of(10)};
  env.probes["/bad"] = {.fault = Error{Code::no_source, "incomplete"}};
  env.probes["/fast"] = {.index = index_of(10)};
  env.rates = {{"/slow", 1e8}, {"/fast", 3e9}};
  const auto d = decide(model_with({"/slow", "/bad", "/fast"}, manifest::Policy::fastest), env);
  REQUIRE(d.ok());
  CHECK(d.chosen == 2);
  CHECK(env.measured == std::vector<std::string>{"/slow", "/fast"});
  CHECK(*d.candidates[0].measured_bps == doctest::Approx(1e8));
  CHECK_FALSE(d.candidates[1].measured_bps.has_value());
  CHECK(d.why.find("3.00 GB/s") != std::string::npos);
}

TEST_CASE("plan: nothing usable is 66 with every reason, or 65 when a file was malformed") {
  FakeEnvironment env;
  env.probes["/a"] = {.fault = Error{Code::no_source, "missing: /a"}};
  env.probes["/b"] = {.fault = Error{Code::no_source, "incomplete: /b/x is 10 bytes"}};
  auto d = decide(model_with({"/a", "/b"}), env);
  CHECK_FALSE(d.ok());
  auto e = no_usable_source(d);
  CHECK(e.code == Code::no_source);
  CHECK(e.message.find("missing: /a") != std::string::npos);
  CHECK(e.message.find("incomplete: /b/x") != std::string::npos);

  env.probes["/b"] = {.fault = Error{Code::bad_data, "/b/x: malformed safetensors file: duplicate key"}};
  d = decide(model_with({"/a", "/b"}), env);
  CHECK(no_usable_source(d).code == Code::bad_data);
}

TEST_CASE("plan: a malformed candidate before a good one is skipped, with its reason") {
  FakeEnvironment env;
  env.probes["/bad"] = {.fault = Error{Code::bad_data, "malformed"}};
  env.probes["/good"] = {.index = index_of(5)};
  const auto d = decide(model_with({"/bad", "/good"}), env);
  REQUIRE(d.ok());
  CHECK(d.chosen == 1);
  CHECK(d.candidates[0].reason == "malformed");
}

}  // namespace tensorinit::plan

namespace tensorinit::plan {
namespace {

// Remote candidates are keyed by url in the fake; the cache candidate by its path.
class RemoteFakeEnvironment final : public Environment {
 public:
  std::map<std::string, CandidateProbe> probes;
  std::vector<std::string> probed;
  CandidateProbe probe(const manifest::Source& source, manifest::Format) override {
    const std::string key = source.path.empty() ? source.url.reveal() : source.path;
    probed.push_back(key);
    return probes.at(key);
  }
  double measure_read_rate(const manifest::Source&, const CandidateProbe&) override { return 1; }
};

manifest::Model remote_model(std::string cache) {
  manifest::Model m;
  m.name = "t";
  m.cache = std::move(cache);
  m.sources.push_back({.type = manifest::SourceType::image, .path = "/img"});
  m.sources.push_back({.type = manifest::SourceType::s3, .url = "s3://b/p/"});
  m.sources.push_back({.type = manifest::SourceType::http, .url = "https://h/p/"});
  return m;
}

}  // namespace

TEST_CASE("plan: model.cache adds a volume candidate before each remote source") {
  const auto sources = candidate_sources(remote_model("/mnt/c"));
  REQUIRE(sources.size() == 5);
  CHECK(sources[1].type == manifest::SourceType::volume);
  CHECK(sources[1].path == "/mnt/c/t");
  CHECK(sources[1].cached_from == "s3://b/p/");
  CHECK(sources[2].type == manifest::SourceType::s3);
  CHECK(sources[3].cached_from == "https://h/p/");
  CHECK(candidate_sources(remote_model("")).size() == 3);
}

TEST_CASE("plan: ordered does not probe remote candidates after a usable one") {
  RemoteFakeEnvironment env;
  env.probes["/img"] = {.fault = Error{Code::no_source, "missing"}};
  env.probes["/mnt/c/t"] = {.index = index_of(5)};
  const auto d = decide(remote_model("/mnt/c"), env);
  REQUIRE(d.ok());
  CHECK(d.chosen == 1);
  CHECK(env.probed == std::vector<std::string>{"/img", "/mnt/c/t", "/mnt/c/t"});  // the http cache candidate is local
  CHECK(d.candidates[2].reason.find("not probed") == 0);
  CHECK(d.candidates[4].reason.find("not probed") == 0);
}

TEST_CASE("plan: the most telling remote fault decides the exit code") {
  RemoteFakeEnvironment env;
  env.probes["/img"] = {.fault = Error{Code::no_source, "missing"}};
  env.probes["s3://b/p/"] = {.fault = Error{Code::unavailable, "unreachable after 6 retries"}};
  env.probes["https://h/p/"] = {.fault = Error{Code::no_source, "404"}};
  auto d = decide(remote_model(""), env);
  CHECK(no_usable_source(d).code == Code::unavailable);
  env.probes["https://h/p/"] = {.fault = Error{Code::denied, "403"}};
  d = decide(remote_model(""), env);
  CHECK(no_usable_source(d).code == Code::denied);
  env.probes["/img"] = {.fault = Error{Code::bad_data, "malformed"}};
  d = decide(remote_model(""), env);
  CHECK(no_usable_source(d).code == Code::bad_data);
}

}  // namespace tensorinit::plan
