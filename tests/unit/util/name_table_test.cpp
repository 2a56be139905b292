#include <doctest/doctest.h>

#include <functional>
#include <set>
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

TEST_CASE("NameTable: first_duplicate finds the first repeat at every position (names hashed ahead)") {
  for (size_t count = 2; count <= 20; ++count)
    for (size_t first = 0; first < count; ++first)
      for (size_t again = first + 1; again < count; ++again) {
        std::vector<std::string> names;
        for (size_t i = 0; i < count; ++i) names.push_back("t" + std::to_string(i));
        names[again] = names[first];
        INFO(count << " names, " << again << " repeats " << first);
        CHECK(tensorinit::first_duplicate(count, [&](size_t i) -> std::string_view { return names[i]; }) ==
              std::optional<size_t>(again));
      }
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

TEST_CASE("NameTable: names built to share std::hash's slots are spread by the keyed hash") {
  // What an attacker can precompute against a public hash: 64 names whose std::hash agree in the
  // low 16 bits (one slot of a 65,536-slot table, every insert walking all earlier ones).
  std::vector<std::string> same_slot;
  const uint64_t target = std::hash<std::string_view>{}("layers.0.w") & 0xffff;
  for (uint64_t i = 0; same_slot.size() < 64; ++i) {
    std::string name = "layers." + std::to_string(i) + ".w";
    if ((std::hash<std::string_view>{}(name) & 0xffff) == target) same_slot.push_back(std::move(name));
  }
  std::set<uint64_t> slots;
  for (const auto& name : same_slot) slots.insert(tensorinit::name_hash(name) & 0xffff);
  CHECK(slots.size() >= 60);  // 64 random slots of 65,536: 4 colliding pairs has odds of about 1e-7
  CHECK(tensorinit::name_hash("layers.0.w") == tensorinit::name_hash("layers.0.w"));  // stable in a process
}
