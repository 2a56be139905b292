// Restoring refuses hostile and broken archives and leaves the directory empty.
#include "cache/unpack.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>

#include "archive_builder.hpp"
#include "io/memory_source.hpp"
#include "../scratch_dir.hpp"

namespace {

using namespace tensorinit;
using namespace tensorinit::cache;
using tensorinit::testing::ArchiveBuilder;
using tensorinit::testing::ScratchDir;

Result<Unpacked> unpack_bytes(const std::string& bytes, const std::string& dir, UnpackLimits limits = {}) {
  io::MemorySource source("archive", bytes);
  return unpack(*archive_library().value(), source, dir, limits, {});
}

// Refused as bad_data, with `why` in the message, and nothing left in the directory.
void check_refused(const std::string& bytes, const std::string& why, UnpackLimits limits = {}) {
  ScratchDir dir;
  ScratchDir outside;
  auto result = unpack_bytes(bytes, dir.path.string(), limits);
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().code == Code::bad_data);
  CHECK_MESSAGE(result.error().message.find(why) != std::string::npos, result.error().message);
  CHECK(directory_is_empty(dir.path.string()));
}

}  // namespace

TEST_CASE("cache unpack: paths are made relative and safe, or refused") {
  CHECK(safe_relative_path("a/./b//c") == "a/b/c");
  CHECK(safe_relative_path("./a") == "a");
  CHECK_FALSE(safe_relative_path("/etc/passwd"));
  CHECK_FALSE(safe_relative_path("a/../../b"));
  CHECK_FALSE(safe_relative_path("a/.."));
  CHECK_FALSE(safe_relative_path("."));
  CHECK_FALSE(safe_relative_path(""));
  CHECK(link_stays_inside("a/link", "../b"));
  CHECK(link_stays_inside("a/b/link", "../../c/d"));
  CHECK_FALSE(link_stays_inside("a/link", "../../b"));
  CHECK_FALSE(link_stays_inside("link", "../x"));
  CHECK_FALSE(link_stays_inside("link", "/etc"));
  CHECK_FALSE(link_stays_inside("a/link", "b/../../../x"));
}

TEST_CASE("cache unpack: a well-formed archive is restored byte for byte") {
  ArchiveBuilder b;
  b.file("kernels/a.so", "AAAA").file("top.json", "{}").symlink("kernels/latest", "a.so").record();
  ScratchDir dir;
  auto result = unpack_bytes(b.bytes(), dir.path.string());
  REQUIRE_MESSAGE(result.has_value(), result.error().message);
  CHECK(result->record.files == 3);
  CHECK(testing::slurp(dir / "kernels/a.so") == "AAAA");
  CHECK(testing::slurp(dir / "kernels/latest") == "AAAA");
  CHECK(std::filesystem::is_symlink(dir.path / "kernels/latest"));
}

TEST_CASE("cache unpack: hostile entries are refused and the directory left empty") {
  check_refused(ArchiveBuilder().file("ok", "x").file("/etc/evil", "x").record().bytes(), "absolute path");
  check_refused(ArchiveBuilder().file("ok", "x").file("a/../../evil", "x").record().bytes(), "'..'");
  check_refused(ArchiveBuilder().symlink("out", "/etc").record().bytes(), "symlink pointing out");
  check_refused(ArchiveBuilder().symlink("d/out", "../../etc").record().bytes(), "symlink pointing out");
  check_refused(ArchiveBuilder().file("dev", "", AE_IFCHR).record().bytes(), "device");
  check_refused(ArchiveBuilder().file("fifo", "", AE_IFIFO).record().bytes(), "device, FIFO");
  check_refused(ArchiveBuilder().file("a", "x").hardlink("b", "a").record().bytes(), "hard link");
  check_refused(ArchiveBuilder().file("a", "x").file("a", "y").record().bytes(), "appears twice");
}

TEST_CASE("cache unpack: a symlink restored earlier is never written through") {
  // "d" -> "." stays inside, but a later "d/x" must not be written via the link either way.
  ScratchDir dir;
  auto bytes = ArchiveBuilder().symlink("d", "sub").file("sub/x", "1").file("d/y", "2").record().bytes();
  auto result = unpack_bytes(bytes, dir.path.string());
  CHECK_FALSE(result.has_value());
  CHECK(directory_is_empty(dir.path.string()));
}

TEST_CASE("cache unpack: over max_size, zip bombs, torn and lying archives are refused") {
  check_refused(ArchiveBuilder().file("big", std::string(1000, 'x')).record().bytes(), "max_size",
                {.max_size = 999});
  check_refused(ArchiveBuilder().file("zeros", std::string(4 << 20, '\0')).record().bytes(), "zip bomb",
                {.max_ratio = 100, .ratio_floor = 1 << 20});
  check_refused(ArchiveBuilder().file("a", "x").bytes(), "no record");
  check_refused(ArchiveBuilder().file("a", "x").record(true).bytes(), "differ from the archive's record");
  std::string whole = ArchiveBuilder().file("a", std::string(100000, 'q')).record().bytes();
  check_refused(whole.substr(0, whole.size() / 2), "");  // torn: cut in the middle
  std::string flipped = whole;
  flipped[flipped.size() / 2] ^= 0x55;
  check_refused(flipped, "");
  check_refused("not an archive at all", "");
  check_refused(ArchiveBuilder().record().file("late", "x").bytes(), "after the record");
}

TEST_CASE("cache unpack: a symlink whose '..' follows another restored symlink is refused (attacker)") {
  // "x" -> "." stays inside; "y" -> "x/.." looks inside lexically but the kernel resolves it as
  // <dir>/.. (the parent of the cache), and "z" -> "x/../etc" as a sibling of the cache (/etc for
  // a cache at /cache). Before the fix both were restored: the server then wrote through them.
  check_refused(ArchiveBuilder().symlink("x", ".").symlink("y", "x/..").record().bytes(), "symlink pointing out");
  check_refused(ArchiveBuilder().symlink("x", ".").symlink("z", "x/../etc").record().bytes(), "symlink pointing out");
  check_refused(ArchiveBuilder().symlink("a/x", "..").symlink("a/y", "x/../..").record().bytes(),
                "symlink pointing out");
  CHECK_FALSE(link_stays_inside("y", "x/.."));
  CHECK_FALSE(link_stays_inside("a/b/y", "x/../z"));
  CHECK(link_stays_inside("a/b/y", "../../x/z"));  // leading '..' climb real directories only
  CHECK(link_stays_inside("a/b/y", "./../x"));
}
