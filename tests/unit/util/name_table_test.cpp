#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "util/name_table.hpp"

TEST_CASE("NameTable: first_duplicate, the first repeat in order, none, empty names") {
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

TEST_CASE("NameTable: insert answers the earlier index, find answers the recorded one") {
  const std::vector<std::string> names = {"a", "b", "", "a", "layers.0.w"};
  auto name_of = [&](size_t i) -> std::string_view { return names[i]; };
  tensorinit::NameTable table(names.size());
  CHECK_FALSE(table.find("a", name_of).has_value());
  CHECK_FALSE(table.insert(0, names[0], name_of).has_value());
  CHECK_FALSE(table.insert(1, names[1], name_of).has_value());
  CHECK_FALSE(table.insert(2, names[2], name_of).has_value());
  CHECK(table.insert(3, names[3], name_of) == std::optional<size_t>(0));
  CHECK_FALSE(table.insert(4, names[4], name_of).has_value());
  CHECK(table.find("a", name_of) == std::optional<size_t>(0));
  CHECK(table.find("", name_of) == std::optional<size_t>(2));
  CHECK(table.find("layers.0.w", name_of) == std::optional<size_t>(4));
  CHECK_FALSE(table.find("layers.0", name_of).has_value());
}
