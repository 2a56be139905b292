#include <doctest/doctest.h>

#include <csignal>

#include "manifest/signals.hpp"

using tensorinit::manifest::parse_signal;
using tensorinit::manifest::signal_name;

TEST_CASE("manifest: parse_signal accepts names, prefixes, cases, real-time offsets and numbers") {
  CHECK(parse_signal("SIGUSR1") == SIGUSR1);
  CHECK(parse_signal("USR1") == SIGUSR1);
  CHECK(parse_signal("usr2") == SIGUSR2);
  CHECK(parse_signal("SigTerm") == SIGTERM);
  CHECK(parse_signal("SIGWINCH") == SIGWINCH);
  CHECK(parse_signal("SIGSYS") == SIGSYS);
  CHECK(parse_signal("POLL") == SIGIO);
  CHECK(parse_signal("SIGRTMIN") == SIGRTMIN);
  CHECK(parse_signal("SIGRTMIN+0") == SIGRTMIN);
  CHECK(parse_signal("SIGRTMIN+5") == SIGRTMIN + 5);
  CHECK(parse_signal("SIGRTMAX") == SIGRTMAX);
  CHECK(parse_signal("RTMAX-2") == SIGRTMAX - 2);
  CHECK(parse_signal("1") == 1);
  CHECK(parse_signal("64") == 64);
}

TEST_CASE("manifest: parse_signal refuses what is not a signal") {
  for (const char* bad : {"", "SIG", "USR3", "SIGUSR1 ", "0", "65", "-1", "1x", "SIGRTMIN-1", "SIGRTMIN+", "SIGRTMIN+x",
                          "SIGRTMAX+1", "SIGRTMIN+99", "RTMAX--1", "+1"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_signal(bad).has_value());
  }
}

TEST_CASE("manifest: signal_name round-trips") {
  CHECK(signal_name(SIGUSR1) == "SIGUSR1");
  CHECK(signal_name(SIGABRT) == "SIGABRT");
  CHECK(signal_name(SIGRTMIN) == "SIGRTMIN");
  CHECK(signal_name(SIGRTMIN + 3) == "SIGRTMIN+3");
  for (int s = 1; s <= SIGRTMAX; ++s) {
    if (s > SIGSYS && s < SIGRTMIN) continue;  // glibc-internal numbers have no name
    CAPTURE(s);
    CHECK(parse_signal(signal_name(s)) == s);
  }
}
