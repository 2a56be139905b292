#include "app/advise.hpp"

#include <doctest/doctest.h>

using namespace tensorinit::app;

TEST_CASE("advise: a fast volume beats pulling a big image; a slow one loses on cached nodes") {
  AdviseInputs in{.bytes = 16'000'000'000ull, .image_read_bps = 2e9, .pull_bps = 0.2e9, .volume_read_bps = 1e9};
  Advice a = advise(in);
  REQUIRE(a.rows.size() == 2);
  CHECK(a.rows[0].cold_node_s == doctest::Approx(16 / 0.2 + 16 / 2.0));
  CHECK(a.rows[0].warm_node_s == doctest::Approx(8.0));
  CHECK(a.rows[1].cold_node_s == doctest::Approx(16.0));
  CHECK(a.recommendation.find("when replicas land on fresh nodes") != std::string::npos);
  in.volume_read_bps = 4e9;
  CHECK(advise(in).recommendation.find("Use the volume:") == 0);
}

TEST_CASE("advise: a small model with a slow-to-attach volume is baked, with the break-even size") {
  AdviseInputs in{.bytes = 100'000'000ull, .image_read_bps = 2e9, .pull_bps = 0.2e9, .volume_read_bps = 1e9,
                  .volume_attach_s = 5};
  Advice a = advise(in);
  CHECK(a.recommendation.find("Bake") == 0);
  CHECK(a.recommendation.find("Break-even") != std::string::npos);
  // At the break-even size both cost the same on a fresh node: attach / (1/pull + 1/image - 1/volume).
  const double gap = 1 / 0.2e9 + 1 / 2e9 - 1 / 1e9;
  in.bytes = static_cast<uint64_t>(5 / gap);
  a = advise(in);
  CHECK(a.rows[0].cold_node_s == doctest::Approx(a.rows[1].cold_node_s).epsilon(0.001));
}

TEST_CASE("advise: without a volume rate it says what to give") {
  Advice a = advise({.bytes = 1'000'000'000ull});
  CHECK(a.rows.size() == 1);
  CHECK(a.recommendation.find("--volume-rate") != std::string::npos);
}
