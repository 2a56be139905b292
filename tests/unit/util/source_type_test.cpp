// The source type table (util/source_type.hpp): every value of the enum has its row, found by walking
// the enum's values as the compiler names them, so that a type added to the enum alone fails here.
#include "util/source_type.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tensorinit {
namespace {

// "tensorinit::SourceType::s3" for an enumerator, "" for a value the enum does not name (GCC and
// clang print "(tensorinit::SourceType)7" for those, as magic_enum relies on).
template <auto V>
constexpr std::string_view enumerator_name() {
  std::string_view f = __PRETTY_FUNCTION__;
  const size_t at = f.find("V = ");
  if (at == std::string_view::npos) return "";
  f.remove_prefix(at + 4);
  f = f.substr(0, f.find_first_of(";]"));
  return f.starts_with('(') ? std::string_view() : f;
}

template <size_t... I>
std::vector<std::pair<SourceType, std::string_view>> named_values(std::index_sequence<I...>) {
  std::vector<std::pair<SourceType, std::string_view>> out;
  const auto add = [&out](SourceType value, std::string_view name) {
    if (!name.empty()) out.emplace_back(value, name);
  };
  (add(static_cast<SourceType>(I), enumerator_name<static_cast<SourceType>(I)>()), ...);
  return out;
}

TEST_CASE("source types: every value of the enum has its row, and every row its value") {
  static_assert(enumerator_name<SourceType::s3>() == "tensorinit::SourceType::s3");
  static_assert(enumerator_name<static_cast<SourceType>(200)>().empty());
  const auto named = named_values(std::make_index_sequence<64>());
  CHECK(named.size() == kSourceTypes.size());
  for (const auto& [value, name] : named) {
    CAPTURE(name);
    REQUIRE_MESSAGE(static_cast<size_t>(value) < kSourceTypes.size(), "no row in kSourceTypes for ", name);
    const SourceTypeInfo& row = source_type_info(value);
    CHECK(row.type == value);
    CHECK(name.ends_with("::" + std::string(row.word)));  // the word is the enumerator's name
  }
}

TEST_CASE("source types: words unique; a remote row says how its url is checked and what it takes") {
  std::set<std::string_view> words;
  for (const SourceTypeInfo& row : kSourceTypes) {
    CAPTURE(row.word);
    CHECK(words.insert(row.word).second);
    CHECK(std::string_view(to_string(row.type)) == row.word);
    if (!row.remote) {
      CHECK(row.keys.empty());
      continue;
    }
    CHECK(row.keys.starts_with("url"));
    CHECK(!row.url_form.empty());
    CHECK(!row.url_allowed.empty());
    CHECK(!row.url_schemes[0].empty());
  }
  CHECK(kSourceTypeWords.size() == kSourceTypes.size());
  CHECK(is_remote(SourceType::s3));
  CHECK(!is_remote(SourceType::volume));
  CHECK(!source_type_info(SourceType::image).cache_writable);  // the image's layer is read only
  CHECK(!source_type_info(SourceType::http).cache_writable);   // no upload
}

}  // namespace
}  // namespace tensorinit
