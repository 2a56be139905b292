// The format table: one rule picks the format of a file for local and remote sources alike, the
// default file names come from one place, and a model never mixes tensorizer with safetensors.
#include <doctest/doctest.h>

#include <string>

#include "format/formats.hpp"
#include "format/safetensors_writer.hpp"
#include "io/memory_source.hpp"
#include "packed_files.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::format;
using namespace tensorinit::testing;

std::string small_safetensors() { return safetensors_head({{"w", "BF16", {4}, 8}}, {}) + std::string(8, '\x01'); }

Format picked(std::string_view name, Format requested, const io::ByteSource* bytes = nullptr) {
  auto f = format_of_file(name, requested, bytes);
  REQUIRE_MESSAGE(f.has_value(), f.error().message);
  return *f;
}

std::string refused(std::string_view name, Format requested) {
  auto f = format_of_file(name, requested, nullptr);
  REQUIRE_FALSE(f.has_value());
  CHECK(f.error().code == Code::bad_data);
  return f.error().message;
}

}  // namespace

TEST_CASE("formats: format auto goes by the extension, else by the packed magic, else safetensors") {
  CHECK(picked("m/model.safetensors", Format::automatic) == Format::safetensors);
  CHECK(picked("https://h/p/model.tensors", Format::automatic) == Format::tensorizer);
  CHECK(picked("model.safetensors.zst", Format::automatic) == Format::packed);
  CHECK(picked("weights.bin", Format::automatic) == Format::safetensors);
  const std::string packed = pack(small_safetensors(), 64).file;
  io::MemorySource packed_bytes("weights.bin", packed);
  CHECK(picked("weights.bin", Format::automatic, &packed_bytes) == Format::packed);
  // The extension wins over the bytes: a .safetensors name is read as safetensors (and fails there).
  CHECK(picked("model.safetensors", Format::automatic, &packed_bytes) == Format::safetensors);
}

TEST_CASE("formats: a format the manifest names is kept unless the name says another one") {
  CHECK(picked("weights.bin", Format::tensorizer) == Format::tensorizer);
  CHECK(picked("weights.bin", Format::packed) == Format::packed);
  // A packed file holds safetensors and may keep that name (tensorinit pack's input name).
  CHECK(picked("model.safetensors", Format::packed) == Format::packed);
  CHECK(refused("d/model.safetensors.zst", Format::safetensors) ==
        "d/model.safetensors.zst: a packed file, but the manifest says format: safetensors");
  CHECK(refused("model.safetensors.zst", Format::tensorizer).find("a packed file") != std::string::npos);
  CHECK(refused("model.safetensors", Format::tensorizer).find("a safetensors file") != std::string::npos);
  // Remote sources used to read these as the name said, whatever the manifest asked (local refused).
  CHECK(refused("https://h/model.tensors", Format::safetensors).find("a tensorizer file") != std::string::npos);
  CHECK(refused("model.tensors", Format::packed).find("but the manifest says format: packed") != std::string::npos);
}

TEST_CASE("formats: one table of extensions, default names and what the bytes are") {
  REQUIRE(formats().size() == 3);
  CHECK(formats()[0].format == Format::safetensors);  // the order a directory is searched
  CHECK(formats()[1].format == Format::tensorizer);
  CHECK(formats()[2].format == Format::packed);
  CHECK(format_info(Format::automatic).default_file == "model.safetensors");
  CHECK(format_info(Format::tensorizer).default_file == "model.tensors");
  CHECK(format_info(Format::packed).default_file == "model.safetensors.zst");
  CHECK(format_info(Format::safetensors).bytes_are_tensors);
  CHECK(format_info(Format::tensorizer).bytes_are_tensors);
  CHECK_FALSE(format_info(Format::packed).bytes_are_tensors);
  for (const FormatInfo& f : formats()) {
    CHECK(f.default_file.ends_with(f.extension));
    CHECK(picked(f.default_file, Format::automatic) == f.format);
    CHECK(picked(f.default_file, f.format) == f.format);
  }
}

TEST_CASE("formats: add_weight_file indexes a file and keeps one model to one family of formats") {
  const std::string plain = small_safetensors();
  const std::string packed = pack(plain, 64).file;
  io::MemorySource plain_bytes("a.safetensors", plain), packed_bytes("b.safetensors.zst", packed);
  ModelIndex model;
  REQUIRE(add_weight_file(model, packed_bytes, WeightFile{.path = "b.safetensors.zst", .size = packed.size()},
                          Format::packed));
  CHECK(model.format == Format::packed);
  CHECK(model.files[0].packed);
  CHECK(model.files[0].size == plain.size());  // the decoded size
  REQUIRE(add_weight_file(model, plain_bytes, WeightFile{.path = "a.safetensors", .size = plain.size()},
                          Format::safetensors));
  CHECK(model.format == Format::safetensors);  // mixed: WeightFile::packed tells them apart
  REQUIRE(model.tensors.size() == 2);
  CHECK(model.tensors[0].file == 0);
  CHECK(model.tensors[1].file == 1);
  // A tensorizer file never joins them (its staging decrypts and verifies per model).
  auto mixed = add_weight_file(model, plain_bytes, WeightFile{.path = "c.tensors", .size = plain.size()},
                               Format::tensorizer);
  REQUIRE_FALSE(mixed.has_value());
  CHECK(mixed.error().code == Code::bad_data);
  CHECK(mixed.error().message.find("c.tensors: a tensorizer file in a model of safetensors files") == 0);
  CHECK(model.files.size() == 2);
}
