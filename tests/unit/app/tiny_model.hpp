// The tiny fixture (tests/fixtures/tiny-f16.safetensors) as a manifest's model, and decided and
// staged the way `load` does it: what the app tests load.
#pragma once

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <utility>

#include "app/load_weights.hpp"

namespace tensorinit::testing {

// `extra`: more keys of model: (", verify: none").
inline manifest::Manifest tiny_manifest(const std::string& extra = "") {
  auto m = manifest::parse_text("version: 1\nmodel: {name: tiny, sources: [{type: image, path: \"" +
                                    std::string(TENSORINIT_FIXTURES) + "/tiny-f16.safetensors\"}]" + extra + "}\n",
                                "test.yaml");
  REQUIRE_MESSAGE(m.has_value(), m.error().message);
  return std::move(*m);
}

// The plan, index, stage and table phases of `m` into `shm_dir`, timed in `phases`. The weights
// point at `decision`, which must outlive them (as LoadSession's does).
inline app::LoadedWeights stage_tiny(const manifest::Manifest& m, app::Phases& phases, const std::string& shm_dir,
                                     std::optional<plan::Decision>& decision) {
  auto decided = app::decide_source(m, phases, decision);
  REQUIRE_MESSAGE(decided.has_value(), decided.error().message);
  auto loaded = app::stage_weights(m, **decided, {}, phases, nullptr, shm_dir);
  REQUIRE_MESSAGE(loaded.has_value(), loaded.error().message);
  return std::move(*loaded);
}

}  // namespace tensorinit::testing
