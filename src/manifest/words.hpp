// The manifest's words for its enums, once: parse reads them (Fields::word, which lists them in
// this order in its errors) and to_string (names.cpp) writes the first word of a value back, so
// the two can never disagree. Like kWeightFormatWords (util/weight_format.hpp). Internal to
// manifest/.
#pragma once

#include <array>
#include <string_view>
#include <utility>

#include "manifest/manifest.hpp"

namespace tensorinit::manifest {

template <class E, size_t N>
using WordTable = std::array<std::pair<std::string_view, E>, N>;

// SourceType's words are tensorinit::kSourceTypeWords (util/source_type.hpp), from its rows.
inline constexpr WordTable<Policy, 2> kPolicyWords{{{"ordered", Policy::ordered}, {"fastest", Policy::fastest}}};
inline constexpr WordTable<Verify, 3> kVerifyWords{
    {{"none", Verify::none}, {"size", Verify::size}, {"checksums", Verify::checksums}}};
// Target's words are tensorinit::kTargetWords (util/target.hpp), shared with stage/.
// true and false read as on and off; written as on and off.
inline constexpr WordTable<DirectIo, 5> kDirectIoWords{{{"auto", DirectIo::automatic},
                                                        {"on", DirectIo::on},
                                                        {"off", DirectIo::off},
                                                        {"true", DirectIo::on},
                                                        {"false", DirectIo::off}}};
inline constexpr WordTable<HandoffMode, 3> kHandoffModeWords{
    {{"exec", HandoffMode::exec}, {"signal", HandoffMode::signal}, {"none", HandoffMode::none}}};
inline constexpr WordTable<StartWhen, 2> kStartWhenWords{
    {{"early", StartWhen::early}, {"after-load", StartWhen::after_load}}};
inline constexpr WordTable<Restart, 3> kRestartWords{
    {{"never", Restart::never}, {"on-failure", Restart::on_failure}, {"always", Restart::always}}};
inline constexpr WordTable<CacheSave, 3> kCacheSaveWords{
    {{"never", CacheSave::never}, {"on-ready", CacheSave::on_ready}, {"on-exit", CacheSave::on_exit}}};
// Not a key's value (handoff.ready is a map): the words the report and messages use.
inline constexpr WordTable<ReadyProbe, 4> kReadyProbeWords{
    {{"none", ReadyProbe::none}, {"http", ReadyProbe::http}, {"tcp", ReadyProbe::tcp}, {"socket", ReadyProbe::socket}}};

// The first word of `value` in `words` ("?" when it has none). The words are literals: .data()
// ends with a NUL. Thread-safe.
template <class E, size_t N>
constexpr const char* word_of(const WordTable<E, N>& words, E value) {
  for (const auto& [word, e] : words)
    if (e == value) return word.data();
  return "?";
}

}  // namespace tensorinit::manifest
