#include <doctest/doctest.h>

#include <cstdint>

#include "util/units.hpp"

using tensorinit::format_bytes;
using tensorinit::parse_duration;
using tensorinit::parse_size;

TEST_CASE("units: parse_size takes every unit of the contract") {
  CHECK(parse_size("0") == 0);
  CHECK(parse_size("123") == 123);
  CHECK(parse_size("7B") == 7);
  CHECK(parse_size("4KiB") == 4096);
  CHECK(parse_size("16MiB") == 16ull << 20);
  CHECK(parse_size("2GiB") == 2ull << 30);
  CHECK(parse_size("3TiB") == 3ull << 40);
  CHECK(parse_size("5KB") == 5000);
  CHECK(parse_size("6MB") == 6000000);
  CHECK(parse_size("7GB") == 7000000000ull);
  CHECK(parse_size("8TB") == 8000000000000ull);
  CHECK(parse_size(" 16 MiB ") == 16ull << 20);
}

TEST_CASE("units: parse_size is exact with fractions and large numbers") {
  CHECK(parse_size("1.5GiB") == 1536ull << 20);
  CHECK(parse_size("1.1KB") == 1100);  // through a double this was 1100.0000000000002: refused
  CHECK(parse_size("0.001GB") == 1000000);
  CHECK(parse_size("2.50KiB") == 2560);
  CHECK(parse_size(".5KiB") == 512);
  CHECK(parse_size("9007199254740993") == 9007199254740993ull);  // 2^53 + 1: a double loses the 1
  CHECK(parse_size("18446744073709551615") == UINT64_MAX);
  CHECK_FALSE(parse_size("18446744073709551616").has_value());
  CHECK_FALSE(parse_size("16777216TiB").has_value());  // 2^64 bytes
  CHECK_FALSE(parse_size("99999999999999999999999TB").has_value());
  CHECK_FALSE(parse_size("1.5B").has_value());
  CHECK_FALSE(parse_size("0.3KiB").has_value());  // 307.2 bytes
}

TEST_CASE("units: parse_size refuses malformed text") {
  for (const char* bad : {"", " ", "MiB", "-1", "+1", "1e3", "1.2.3", "16mib", "16 M", "16MiBs", "1 0", ".", "1,5GiB",
                          "0x10", "16iB"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_size(bad).has_value());
  }
}

TEST_CASE("units: parse_duration takes ms, s, m and bare seconds") {
  CHECK(parse_duration("250ms") == std::chrono::milliseconds(250));
  CHECK(parse_duration("10s") == std::chrono::seconds(10));
  CHECK(parse_duration("2m") == std::chrono::minutes(2));
  CHECK(parse_duration("1.5s") == std::chrono::milliseconds(1500));
  CHECK(parse_duration("0.5m") == std::chrono::seconds(30));
  CHECK(parse_duration("3") == std::chrono::seconds(3));
  CHECK(parse_duration("0") == std::chrono::milliseconds(0));
  CHECK(parse_duration(" 5 s ") == std::chrono::seconds(5));
  for (const char* bad : {"", "s", "-1s", "10 seconds", "1h", "1e3ms", "1..2s", "10S", "5sec"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_duration(bad).has_value());
  }
  CHECK_FALSE(parse_duration("99999999999999999999m").has_value());
}

TEST_CASE("units: format_bytes") {
  CHECK(format_bytes(0) == "0 B");
  CHECK(format_bytes(1023) == "1023 B");
  CHECK(format_bytes(1536) == "1.50 KiB");
  CHECK(format_bytes(16ull << 20) == "16.00 MiB");
  CHECK(format_bytes(3ull << 40) == "3.00 TiB");
}
