#include "stage/read_controller.hpp"

#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <optional>

namespace tensorinit::stage {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

// A fake volume: reads of `request` bytes, one at a time, each taking request / rate(setting, t)
// seconds of a fake clock. Serial reads make the epoch's rate exactly the setting's rate.
struct FakeVolume {
  std::function<double(const ReadSetting&, double now)> rate;  // bytes per second
  double now = 0;
  std::map<ReadMode, uint64_t> bytes_by_mode;

  void read(ReadController& c, uint64_t total, uint64_t request = 4 * kMiB) {
    for (uint64_t done = 0; done < total; done += request) {
      const auto ticket = c.begin(request, now);
      now += static_cast<double>(request) / rate(ticket.setting, now);
      c.end(ticket, request, now);
      bytes_by_mode[ticket.setting.mode] += request;
    }
  }
};

const ReadSetting kDirect1{.mode = ReadMode::direct, .request = 1 * kMiB, .in_flight = 16};
const ReadSetting kDirect4{.mode = ReadMode::direct, .request = 4 * kMiB, .in_flight = 8};
const ReadSetting kBuffered{.mode = ReadMode::buffered, .request = 16 * kMiB, .in_flight = 2};

ControllerOptions three(uint64_t probe = 32 * kMiB, uint64_t exploit = 256 * kMiB) {
  return {.candidates = {kDirect1, kDirect4, kBuffered}, .probe_bytes = probe, .exploit_bytes = exploit};
}

TEST_CASE("read controller: probes every candidate once, then holds the fastest") {
  ReadController c(three());
  FakeVolume v{.rate = [](const ReadSetting& s, double) { return s == kDirect4 ? 2e9 : 0.5e9; }};
  v.read(c, 2048 * kMiB);
  const auto phases = c.phases();
  REQUIRE(phases.size() >= 4);
  CHECK(phases[0].setting == kDirect1);
  CHECK(phases[1].setting == kDirect4);
  CHECK(phases[2].setting == kBuffered);
  for (size_t i = 0; i < 3; ++i) CHECK(phases[i].probe);
  CHECK_FALSE(phases[3].probe);
  CHECK(phases[3].setting == kDirect4);
  CHECK(phases[3].rate() == doctest::Approx(2e9));
  CHECK(c.best() == kDirect4);
  CHECK(c.carried() == kDirect4);
  // Probing costs a bounded share: most bytes went the fast way.
  const auto direct4 = [&] {
    uint64_t b = 0;
    for (const auto& p : phases)
      if (p.setting == kDirect4) b += p.bytes;
    return b;
  }();
  CHECK(direct4 > 1600 * kMiB);
}

// The lock is part of the setting (ReadSetting::serialised): the unlocked twin is probed, and
// where it is faster its tickets, the exploits and the report's carried setting all say unlocked.
TEST_CASE("read controller: the unlocked twin is measured like any setting and reaches the tickets") {
  const ReadSetting locked{.mode = ReadMode::splice, .request = 16 * kMiB, .in_flight = 2};
  ReadSetting unlocked = locked;
  unlocked.serialised = false;
  for (const bool unlocked_wins : {true, false}) {
    ReadController c({.candidates = {locked, unlocked}, .probe_bytes = 32 * kMiB, .exploit_bytes = 256 * kMiB});
    uint64_t unlocked_bytes = 0;
    FakeVolume v{.rate = [&](const ReadSetting& s, double) {
      if (!s.serialised) unlocked_bytes += 4 * kMiB;
      return s.serialised == unlocked_wins ? 2.5e9 : 2.8e9;
    }};
    v.read(c, 2048 * kMiB);
    const auto phases = c.phases();
    REQUIRE(phases.size() >= 3);
    CHECK(phases[0].setting == locked);
    CHECK(phases[1].setting == unlocked);
    CHECK(c.carried() == (unlocked_wins ? unlocked : locked));
    CHECK(c.best().serialised == !unlocked_wins);
    CHECK((unlocked_bytes > 1024 * kMiB) == unlocked_wins);
  }
}

TEST_CASE("read controller: keeps probing, and moves when the volume changes mid-load") {
  ReadController c(three());
  // Buffered reads are fastest until t = 2 s, then direct 1 MiB reads are (a volume that changed).
  FakeVolume v{.rate = [](const ReadSetting& s, double now) {
    if (now < 2.0) return s == kBuffered ? 1.8e9 : 0.6e9;
    return s == kDirect1 ? 2.0e9 : 0.5e9;
  }};
  v.read(c, 1024 * kMiB);
  CHECK(c.best() == kBuffered);
  v.read(c, 6144 * kMiB);
  CHECK(c.best() == kDirect1);
  const auto phases = c.phases();
  CHECK(phases.back().setting == kDirect1);
  CHECK_FALSE(phases.back().probe);
  // Between exploits it probed the others again.
  size_t reprobes = 0;
  for (size_t i = 3; i < phases.size(); ++i) reprobes += phases[i].probe;
  CHECK(reprobes >= 2);
}

TEST_CASE("read controller: one candidate is one epoch with no probing") {
  ReadController c({.candidates = {kDirect4}, .probe_bytes = 32 * kMiB, .exploit_bytes = 64 * kMiB});
  FakeVolume v{.rate = [](const ReadSetting&, double) { return 1e9; }};
  v.read(c, 1024 * kMiB);
  REQUIRE(c.phases().size() == 1);
  CHECK_FALSE(c.phases()[0].probe);
  CHECK(c.phases()[0].bytes == 1024 * kMiB);
}

TEST_CASE("read controller: overlapping reads of one epoch count from first start to last end") {
  ReadController c(three(8 * kMiB));
  const auto a = c.begin(4 * kMiB, 0.0);
  const auto b = c.begin(4 * kMiB, 0.0);
  CHECK(a.epoch == b.epoch);
  CHECK(c.upcoming() == kDirect4);  // the first epoch's budget is issued: the next one opens
  const auto d = c.begin(4 * kMiB, 0.1);
  CHECK(d.epoch == a.epoch + 1);
  c.end(a, 4 * kMiB, 0.2);
  c.end(b, 4 * kMiB, 0.4);
  c.end(d, 4 * kMiB, 0.3);
  const auto phases = c.phases();
  CHECK(phases[0].bytes == 8 * kMiB);
  CHECK(phases[0].seconds == doctest::Approx(0.4));
  CHECK(phases[0].rate() == doctest::Approx(8 * kMiB / 0.4));
}

TEST_CASE("read controller: an unfinished probe does not decide") {
  ReadController c(three(4 * kMiB, 8 * kMiB));
  const auto slow = c.begin(4 * kMiB, 0.0);  // candidate 0, never finishes in time
  const auto p1 = c.begin(4 * kMiB, 0.0);
  c.end(p1, 4 * kMiB, 0.01);
  const auto p2 = c.begin(4 * kMiB, 0.01);
  c.end(p2, 4 * kMiB, 0.03);
  CHECK(c.upcoming() == kDirect4);  // the fastest finished one
  c.end(slow, 4 * kMiB, 1.0);
  CHECK(c.best() == kDirect4);
}

TEST_CASE("read controller: a probe that ends after the next exploit opened still decides it") {
  ReadController c(three(8 * kMiB, 64 * kMiB));
  const auto p0 = c.begin(8 * kMiB, 0.0);
  c.end(p0, 8 * kMiB, 0.01);  // kDirect1: 0.84 GB/s
  const auto p1 = c.begin(8 * kMiB, 0.01);
  c.end(p1, 8 * kMiB, 0.03);  // kDirect4: 0.42 GB/s
  // kBuffered's probe: two reads out at once, its budget issued, so the next epoch opens before they end.
  const auto a = c.begin(4 * kMiB, 0.03);
  const auto b = c.begin(4 * kMiB, 0.03);
  CHECK(c.upcoming() == kDirect1);  // the fastest finished so far
  const auto x = c.begin(4 * kMiB, 0.03);
  c.end(a, 4 * kMiB, 0.032);
  c.end(b, 4 * kMiB, 0.034);  // kBuffered: 2.1 GB/s, the best now
  CHECK(c.best() == kBuffered);
  CHECK(c.upcoming() == kBuffered);  // the kDirect1 exploit stopped at what it had issued
  const auto y = c.begin(4 * kMiB, 0.034);
  c.end(x, 4 * kMiB, 0.04);
  c.end(y, 4 * kMiB, 0.036);
  const auto phases = c.phases();
  REQUIRE(phases.size() == 5);
  CHECK(phases[3].setting == kDirect1);
  CHECK_FALSE(phases[3].probe);
  CHECK(phases[3].bytes == 4 * kMiB);
  CHECK(phases[4].setting == kBuffered);
  CHECK_FALSE(phases[4].probe);
  CHECK(c.upcoming() == kBuffered);  // a full exploit epoch (64 MiB) of the new best
}

TEST_CASE("read controller: a late probe that loses leaves the exploit alone") {
  ReadController c(three(8 * kMiB, 64 * kMiB));
  const auto p0 = c.begin(8 * kMiB, 0.0);
  c.end(p0, 8 * kMiB, 0.01);
  const auto p1 = c.begin(8 * kMiB, 0.01);
  c.end(p1, 8 * kMiB, 0.03);
  const auto a = c.begin(8 * kMiB, 0.03);
  const auto x = c.begin(4 * kMiB, 0.03);  // the exploit of kDirect1 opened
  c.end(a, 8 * kMiB, 0.5);                 // kBuffered: slow
  CHECK(c.best() == kDirect1);
  const auto y = c.begin(4 * kMiB, 0.5);
  CHECK(y.epoch == x.epoch);
  CHECK(y.setting == kDirect1);
}

TEST_CASE("candidates: explicit choices win, auto probes what the files allow") {
  SUBCASE("cold local files into the host arena: one shared cursor first, no O_DIRECT") {
    const ReadSetting shared{.mode = ReadMode::splice, .request = 256 << 10, .in_flight = 8, .shared = true};
    for (std::optional<bool> direct : {std::optional<bool>(), std::optional<bool>(false)}) {
      const auto all = candidates_for({.direct = direct, .direct_available = true, .splice_available = true, .max_in_flight = 16});
      REQUIRE(all.size() == 3);
      CHECK(all[0] == shared);
      CHECK(all[1] == ReadSetting{.mode = ReadMode::splice, .request = 16 * kMiB, .in_flight = 2});
      CHECK(all[2] == ReadSetting{.mode = ReadMode::splice, .request = 16 * kMiB, .in_flight = 4});
      for (const auto& s : all) CHECK(s.serialised);  // cold: no unlocked twin (measured, copy22.md)
    }
    // Page-cache reads asked for on warm files share it too; auto on warm files does not.
    CHECK(candidates_for({.direct = false, .splice_available = true})[0] == shared);
    for (const auto& s : candidates_for({.splice_available = true})) CHECK_FALSE(s.shared);
    // Fewer readers allowed: fewer on the cursor.
    CHECK(candidates_for({.direct_available = true, .splice_available = true, .max_in_flight = 3})[0].in_flight == 3);
  }
  SUBCASE("warm local files into the host arena: splices of whole chunks, x2 also unlocked") {
    const auto all = candidates_for({.splice_available = true, .cursor_available = true, .max_in_flight = 16});
    REQUIRE(all.size() == 3);
    CHECK(all[0] == ReadSetting{.mode = ReadMode::splice, .request = 16 * kMiB, .in_flight = 2});
    CHECK(all[1] == ReadSetting{.mode = ReadMode::splice, .request = 16 * kMiB, .in_flight = 4});
    CHECK(all[2] == ReadSetting{.mode = ReadMode::splice, .request = 16 * kMiB, .in_flight = 2, .serialised = false});
    // Cold with O_DIRECT refused (direct_io on): the same three.
    CHECK(candidates_for({.direct = true, .splice_available = true}) == all);
    // Readers or chunk size fixed by the user: no twin. No splice (cuda, discard, a filter): no twin.
    for (const auto& facts : {ReadFacts{.request = kMiB, .splice_available = true}, ReadFacts{.in_flight = 2, .splice_available = true},
                              ReadFacts{.in_flight = 3, .direct_available = true, .splice_available = true},
                              ReadFacts{.direct_available = true, .cursor_available = true}, ReadFacts{.cursor_available = true}})
      for (const auto& s : candidates_for(facts)) CHECK(s.serialised);
  }
  SUBCASE("no shared cursor where the sink reads into buffers, O_DIRECT is asked for, or the chunk size is given") {
    for (const auto& s : candidates_for({.direct_available = true, .max_in_flight = 16})) CHECK_FALSE(s.shared);
    for (const auto& s : candidates_for({.direct = true, .direct_available = true, .splice_available = true})) {
      CHECK_FALSE(s.shared);
      CHECK(s.mode == ReadMode::direct);
    }
    for (const auto& s : candidates_for({.request = kMiB, .direct_available = true, .splice_available = true})) CHECK_FALSE(s.shared);
    const auto all = candidates_for({.direct_available = true, .max_in_flight = 16});  // cuda, filters: as before
    REQUIRE(all.size() == 4);
    CHECK(all[0] == kDirect1);
    CHECK(all[1] == kDirect4);
  }
  SUBCASE("cold files into the pipeline's own buffers (discard), direct_io auto: a shared buffered cursor first") {
    const ReadSetting shared{.mode = ReadMode::buffered, .request = kMiB, .in_flight = 8, .shared = true};
    const auto all = candidates_for({.direct_available = true, .cursor_available = true, .max_in_flight = 16});
    REQUIRE(all.size() == 5);
    CHECK(all[0] == shared);
    CHECK(all[1] == kDirect1);
    CHECK(all[2] == kDirect4);
    CHECK(candidates_for({.direct_available = true, .cursor_available = true, .max_in_flight = 3})[0].in_flight == 3);
    // Not on warm files, with direct_io given, or with the chunk size given.
    for (const auto& facts : {ReadFacts{.cursor_available = true}, ReadFacts{.direct = true, .direct_available = true, .cursor_available = true},
                              ReadFacts{.direct = false, .direct_available = true, .cursor_available = true},
                              ReadFacts{.request = kMiB, .direct_available = true, .cursor_available = true}})
      for (const auto& s : candidates_for(facts)) CHECK_FALSE(s.shared);
  }
  SUBCASE("the cuda target (the sink's pinned ring takes the parts) has the cursor as discard has, probed first") {
    // Same facts as discard's: pipeline.cpp makes the cursor available to any sink without a filter.
    const auto all = candidates_for({.direct_available = true, .cursor_available = true, .max_in_flight = 8});
    REQUIRE(all.size() == 5);
    CHECK(all[0] == ReadSetting{.mode = ReadMode::buffered, .request = kMiB, .in_flight = 8, .shared = true});
    for (size_t i = 1; i < all.size(); ++i) CHECK_FALSE(all[i].shared);  // whole chunks and O_DIRECT stay beside it
  }
  SUBCASE("shared_cursor on: only the cursor, parts of the chunk size given (whole chunks in file order)") {
    const ReadSetting chunks{.mode = ReadMode::buffered, .request = 16 * kMiB, .in_flight = 8, .shared = true};
    CHECK(candidates_for({.request = 16 * kMiB, .shared = true, .direct_available = true, .cursor_available = true}) ==
          std::vector<ReadSetting>{chunks});
    CHECK(candidates_for({.shared = true, .direct_available = true, .cursor_available = true}) ==
          std::vector<ReadSetting>{{.mode = ReadMode::buffered, .request = kMiB, .in_flight = 8, .shared = true}});
    CHECK(candidates_for({.shared = true, .cursor_available = true, .max_in_flight = 3})[0].in_flight == 3);
    CHECK(candidates_for({.in_flight = 2, .shared = true, .cursor_available = true})[0].in_flight == 2);
    // O_DIRECT parts only when asked for; splice parts into the host arena.
    CHECK(candidates_for({.direct = true, .shared = true, .direct_available = true, .cursor_available = true})[0].mode ==
          ReadMode::direct);
    CHECK(candidates_for({.shared = true, .direct_available = true, .splice_available = true, .cursor_available = true}) ==
          std::vector<ReadSetting>{{.mode = ReadMode::splice, .request = 256 << 10, .in_flight = 8, .shared = true}});
    // No cursor possible (a filter): the usual candidates, none shared.
    for (const auto& s : candidates_for({.shared = true, .direct_available = true})) CHECK_FALSE(s.shared);
  }
  SUBCASE("shared_cursor off: no shared setting where auto would have one") {
    for (const auto& facts : {ReadFacts{.shared = false, .direct_available = true, .cursor_available = true},
                              ReadFacts{.shared = false, .direct_available = true, .splice_available = true, .cursor_available = true},
                              ReadFacts{.direct = false, .shared = false, .splice_available = true, .cursor_available = true}}) {
      const auto all = candidates_for(facts);
      CHECK_FALSE(all.empty());
      for (const auto& s : all) CHECK_FALSE(s.shared);
    }
  }
  SUBCASE("direct_io on: direct only") {
    for (const auto& s : candidates_for({.direct = true, .direct_available = true})) CHECK(s.mode == ReadMode::direct);
  }
  SUBCASE("direct_io off, or warm files: through the page cache only") {
    for (const auto& s : candidates_for({.direct = false, .direct_available = true})) CHECK(s.mode == ReadMode::buffered);
    for (const auto& s : candidates_for({})) CHECK(s.mode == ReadMode::buffered);
  }
  SUBCASE("direct_io on but refused by the filesystem: buffered") {
    const auto all = candidates_for({.direct = true, .direct_available = false});
    REQUIRE_FALSE(all.empty());
    CHECK(all[0].mode == ReadMode::buffered);
  }
  SUBCASE("readers and chunk_size given: every candidate uses them") {
    const auto all = candidates_for({.request = 2 * kMiB, .in_flight = 3, .direct_available = true});
    for (const auto& s : all) {
      CHECK(s.request == 2 * kMiB);
      CHECK(s.in_flight == 3);
    }
    CHECK(all.size() == 2);  // direct and buffered
  }
  SUBCASE("everything given: one candidate") {
    CHECK(candidates_for({.direct = true, .request = 4 * kMiB, .in_flight = 4, .direct_available = true}).size() == 1);
  }
  SUBCASE("requests never exceed the chunk, in flight never the readers memory allows") {
    for (const auto& s : candidates_for({.direct_available = true, .chunk_size = 512 * 1024, .max_in_flight = 3})) {
      CHECK(s.request <= 512 * 1024);
      CHECK(s.in_flight <= 3);
    }
  }
}

TEST_CASE("controller options: probes are a small share of the load") {
  const auto o = controller_options({kDirect1}, 2048 * kMiB);
  CHECK(o.probe_bytes == 64 * kMiB);
  CHECK(o.exploit_bytes == 512 * kMiB);
  CHECK(controller_options({kDirect1}, 1 * kMiB).probe_bytes == 32 * kMiB);
}

}  // namespace
}  // namespace tensorinit::stage

namespace tensorinit::stage {
namespace {

TEST_CASE("read controller: a slow probe is cut short, and slow candidates are seldom probed again") {
  ReadController c(three());
  FakeVolume v{.rate = [](const ReadSetting& s, double) { return s == kBuffered ? 0.1e9 : s == kDirect4 ? 2e9 : 1.5e9; }};
  v.read(c, 8192 * kMiB, 1 * kMiB);
  const auto phases = c.phases();
  uint64_t slow = 0;
  size_t slow_probes = 0, fast_probes = 0;
  for (const auto& p : phases) {
    if (p.setting == kBuffered) {
      slow += p.bytes;
      ++slow_probes;
      CHECK(p.bytes <= 32 * kMiB / 4 + 1 * kMiB);  // cut at a quarter of the probe
    } else if (p.probe && p.setting == kDirect1) {
      ++fast_probes;
    }
  }
  CHECK(slow_probes >= 1);
  CHECK(slow_probes <= fast_probes);
  CHECK(slow <= 4 * 9 * kMiB);  // 0.4% of the load, where uncut probes would take 2.5%
  // Exploit epochs grow while re-probes lose: few epochs for 8 GiB.
  CHECK(phases.size() < 24);
  CHECK(c.best() == kDirect4);
}

}  // namespace
}  // namespace tensorinit::stage
