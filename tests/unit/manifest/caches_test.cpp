// The `caches:` list: parsed with defaults, every bad value refused with file:line:col.
#include <doctest/doctest.h>

#include <string>

#include "manifest/manifest.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::manifest;

const std::string kHead = "version: 1\nmodel:\n  name: m\n  sources: [{type: image, path: /models/m}]\n";

Result<Manifest> parse(const std::string& caches) { return parse_text(kHead + "caches:\n" + caches, "c.yaml"); }

std::string error_of(const std::string& caches) {
  auto result = parse(caches);
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().code == Code::bad_manifest);
  return result.error().message;
}

}  // namespace

TEST_CASE("manifest caches: keys, defaults and every source shape") {
  auto m = parse(R"(  - name: inductor
    path: /root/.cache/inductor/
    sources:
      - {type: volume, path: /mnt/caches}
      - {type: s3, url: "s3://bucket/caches/", endpoint: "http://127.0.0.1:9000"}
      - {type: http, url: "https://host/caches/"}
      - {type: image, path: /caches}
    save: on-ready
    max_size: 1GiB
  - name: triton
    path: /root/.triton
    sources: [{type: volume, path: /mnt/caches}]
)");
  REQUIRE(m.has_value());
  REQUIRE(m->caches.size() == 2);
  const Cache& c = m->caches[0];
  CHECK(c.name == "inductor");
  CHECK(c.path == "/root/.cache/inductor");  // trailing '/' dropped
  CHECK(c.sources.size() == 4);
  CHECK(c.sources[1].type == SourceType::s3);
  CHECK(c.save == CacheSave::on_ready);
  CHECK(c.max_size == (1ull << 30));
  CHECK(c.where == "c.yaml:6:5");
  CHECK(m->caches[1].save == CacheSave::never);  // default: saving is opted into
  CHECK(m->caches[1].max_size == (4ull << 30));
  CHECK(std::string(to_string(CacheSave::on_exit)) == "on-exit");
}

TEST_CASE("manifest caches: absent or empty is no caches") {
  auto none = parse_text(kHead, "c.yaml");
  REQUIRE(none.has_value());
  CHECK(none->caches.empty());
  auto empty = parse("");
  REQUIRE(empty.has_value());
  CHECK(empty->caches.empty());
}

TEST_CASE("manifest caches: bad entries are refused with their position") {
  CHECK(error_of("  - {name: a, path: relative/dir, sources: [{type: volume, path: /v}]}\n").find("c.yaml:6:") == 0);
  CHECK(error_of("  - {name: a, path: relative/dir, sources: [{type: volume, path: /v}]}\n").find("absolute") !=
        std::string::npos);
  CHECK(error_of("  - {name: a, path: /x/../etc, sources: [{type: volume, path: /v}]}\n").find("..") != std::string::npos);
  CHECK(error_of("  - {name: a, path: /, sources: [{type: volume, path: /v}]}\n").find("'/'") != std::string::npos);
  CHECK(error_of("  - {name: A/b, path: /x, sources: [{type: volume, path: /v}]}\n").find("not a valid name") !=
        std::string::npos);
  CHECK(error_of("  - {name: a, path: /x}\n").find("no sources") != std::string::npos);
  CHECK(error_of("  - {name: a, path: /x, sources: []}\n").find("no sources") != std::string::npos);
  CHECK(error_of("  - {name: a, path: /x, sources: [{type: volume, path: /v}], save: sometimes}\n")
            .find("never | on-ready | on-exit") != std::string::npos);
  CHECK(error_of("  - {name: a, path: /x, sources: [{type: volume, path: /v}], max_size: 0}\n").find("0 bytes") !=
        std::string::npos);
  CHECK(error_of("  - {name: a, path: /x, sources: [{type: volume, path: /v}], maxsize: 1GiB}\n")
            .find("did you mean 'max_size'") != std::string::npos);
  CHECK(error_of("  - {name: a, path: /x, sources: [{type: volume}]}\n").find("missing required key 'path'") !=
        std::string::npos);
  CHECK(error_of("  - {name: a, sources: [{type: volume, path: /v}]}\n").find("missing required key 'path'") !=
        std::string::npos);
}

TEST_CASE("manifest caches: names unique, directories apart") {
  CHECK(error_of("  - {name: a, path: /x, sources: [{type: volume, path: /v}]}\n"
                 "  - {name: a, path: /y, sources: [{type: volume, path: /v}]}\n")
            .find("used twice") != std::string::npos);
  CHECK(error_of("  - {name: a, path: /x, sources: [{type: volume, path: /v}]}\n"
                 "  - {name: b, path: /x/sub, sources: [{type: volume, path: /v}]}\n")
            .find("overlaps") != std::string::npos);
  auto apart = parse("  - {name: a, path: /x, sources: [{type: volume, path: /v}]}\n"
                     "  - {name: b, path: /xy, sources: [{type: volume, path: /v}]}\n");
  CHECK(apart.has_value());
}
