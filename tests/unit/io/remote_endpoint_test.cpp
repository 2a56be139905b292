// io/remote_endpoint: one endpoint per remote source type, and the wire URL each makes.
#include "io/remote_endpoint.hpp"

#include <doctest/doctest.h>

namespace tensorinit::io {
namespace {

TEST_CASE("remote endpoint: every remote row of util/source_type.hpp has one, no local row has") {
  for (const SourceTypeInfo& row : kSourceTypes) {
    CAPTURE(row.word);
    CHECK(has_endpoint(row.type) == row.remote);
  }
  auto local = open_endpoint(SourceType::volume, RemoteConfig{.where = "m.yaml:3:7"});
  REQUIRE(!local);
  CHECK(local.error().code == Code::internal);
  CHECK(local.error().message == "m.yaml:3:7: source type volume has no remote endpoint");
}

TEST_CASE("remote endpoint: s3 signs and addresses the bucket; http joins the prefix, unsigned") {
  RemoteConfig s3{.url = Url("s3://models/p/"), .endpoint = Url("http://127.0.0.1:9000"), .region = "us-east-1",
                  .access_key_id = "AKID", .secret_access_key = Secret("s3cr3t"), .where = "m.yaml:4:7"};
  auto e = open_endpoint(SourceType::s3, s3);
  REQUIRE(e);
  CHECK(e->signer != nullptr);
  CHECK(e->wire_url("a b.safetensors") == "http://127.0.0.1:9000/models/p/a%20b.safetensors");

  auto h = open_endpoint(SourceType::http, RemoteConfig{.url = Url("https://u:pw@h/m/?tok=1")});
  REQUIRE(h);
  CHECK(h->signer == nullptr);
  CHECK(h->wire_url("x/model.safetensors") == "https://u:pw@h/m/x/model.safetensors?tok=1");
}

}  // namespace
}  // namespace tensorinit::io
