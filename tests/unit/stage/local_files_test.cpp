// The pagecache target's one check (can the server read each tensor from its file as it is?) and
// the staging side of the indexed descriptors.
#include "stage/local_files.hpp"

#include <doctest/doctest.h>

#include <string>

#include "stage/destination.hpp"

namespace tensorinit::stage {
namespace {

format::ModelIndex two_tensors() {
  format::ModelIndex index;
  index.files.push_back({.path = "/m/model.tensors", .size = 1000});
  index.tensors.push_back({.name = "w", .dtype = "F32", .shape = {4}, .file = 0, .file_offset = 100, .bytes = 16});
  index.tensors.push_back({.name = "v", .dtype = "F32", .shape = {4}, .file = 0, .file_offset = 200, .bytes = 16});
  return index;
}

void check_refused(const format::ModelIndex& index, std::string_view why) {
  auto ok = check_pagecache_can_serve(index);
  REQUIRE_FALSE(ok.has_value());
  INFO("message: " << ok.error().message);
  CHECK(ok.error().code == Code::no_source);
  CHECK(ok.error().message.find("/m/model.tensors") != std::string::npos);
  CHECK(ok.error().message.find(why) != std::string::npos);
  CHECK(ok.error().message.find("use target host or cuda") != std::string::npos);
}

}  // namespace

TEST_CASE("local files: pagecache serves plain tensors, not meta, encrypted or packed ones") {
  auto index = two_tensors();
  CHECK(check_pagecache_can_serve(index).has_value());
  SUBCASE("a tensorizer meta tensor has no bytes in the file") {
    index.tensors[1].zeros = true;
    check_refused(index, "tensor 'v': a tensorizer meta tensor has no bytes in the file");
  }
  SUBCASE("an encrypted tensor would be ciphertext") {
    index.tensors[0].encrypted = true;
    check_refused(index, "cannot serve an encrypted tensorizer file (tensor 'w'");
  }
  SUBCASE("a packed file would be compressed bytes") {
    index.files[0].packed = true;
    check_refused(index, "cannot serve a packed file");
  }
  SUBCASE("empty tensors have nothing to read, whatever their flags") {
    index.tensors[1].zeros = true;
    index.tensors[1].encrypted = true;
    index.tensors[1].bytes = 0;
    CHECK(check_pagecache_can_serve(index).has_value());
  }
}

TEST_CASE("local files: an index without descriptors is an internal error, not a reopen by path") {
  auto index = two_tensors();
  bool direct = false;
  auto files = prepare_local_files(index, std::nullopt, true, direct);
  REQUIRE_FALSE(files.has_value());
  CHECK(files.error().code == Code::internal);
  CHECK(files.error().message.find("/m/model.tensors") != std::string::npos);
}

}  // namespace tensorinit::stage
