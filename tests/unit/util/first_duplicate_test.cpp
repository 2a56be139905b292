#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "util/first_duplicate.hpp"

TEST_CASE("first_duplicate: the first repeat in order, none, empty names") {
  auto find = [](const std::vector<std::string>& names) {
    return tensorinit::first_duplicate(names.size(), [&](size_t i) -> std::string_view { return names[i]; });
  };
  CHECK_FALSE(find({}).has_value());
  CHECK_FALSE(find({"a"}).has_value());
  CHECK_FALSE(find({"a", "b", "ab", ""}).has_value());
  CHECK(find({"a", "b", "a", "b"}) == std::optional<size_t>(2));
  CHECK(find({"", "x", ""}) == std::optional<size_t>(2));
  std::vector<std::string> many;
  for (int i = 0; i < 100'000; ++i) many.push_back("tensor." + std::to_string(i));
  CHECK_FALSE(find(many).has_value());
  many.push_back("tensor.77777");
  CHECK(find(many) == std::optional<size_t>(100'000));
}
