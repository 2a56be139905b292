// HttpSource against Debian's nginx (tests/tools/nginx.sh), the server the benchmarks use:
// byte-exact parallel ranges, and keep-alive seen from both ends (libcurl's connection count and
// nginx's $connection in its access log).
#include <doctest/doctest.h>

#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "http_test_support.hpp"

using namespace tensorinit;
using namespace tensorinit::testing;

TEST_CASE("http: nginx serves byte-exact parallel ranges over a few kept-alive connections") {
  TempDir root, run;
  const std::string data = http_pattern(8'000'000, 99);
  write_file(root / "model.safetensors", data);
  Nginx nginx(root.path(), run.path());
  auto client = make_client();
  auto source = open_url(client, nginx.url("/model.safetensors"));
  REQUIRE_MESSAGE(source.has_value(), source.error().message);
  CHECK((*source)->size() == data.size());
  CHECK_FALSE((*source)->etag().empty());

  // 4 readers pull 64 KiB..1 MiB chunks off a shared cursor, like the staging pipeline.
  constexpr int kThreads = 4;
  std::atomic<uint64_t> cursor{0};
  std::atomic<int> bad{0}, reads{0};
  std::string out(data.size(), '\0');
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::mt19937 random(t);
      for (;;) {
        const uint64_t want = (64 << 10) + random() % (1 << 20);
        const uint64_t offset = cursor.fetch_add(want);
        if (offset >= data.size()) return;
        const uint64_t n = std::min<uint64_t>(want, data.size() - offset);
        auto ok = (*source)->read_at(offset, std::as_writable_bytes(std::span(out.data() + offset, n)));
        reads.fetch_add(1);
        if (!ok) bad.fetch_add(1);
      }
    });
  for (auto& t : threads) t.join();
  CHECK(bad.load() == 0);
  CHECK(out == data);
  CHECK(reads.load() > 8);

  const auto stats = client->stats();
  CHECK(stats.requests == static_cast<uint64_t>(reads.load()) + 1);
  CHECK(stats.connections <= kThreads);
  // nginx's view: every request was a 206 on one of at most kThreads connections.
  std::ifstream log(run / "access.log");
  std::set<std::string> connections;
  int lines = 0;
  for (std::string line; std::getline(log, line); ++lines) {
    std::istringstream fields(line);
    std::string connection, count, status;
    fields >> connection >> count >> status;
    connections.insert(connection);
    CHECK(status == "206");
  }
  CHECK(lines == reads.load() + 1);
  CHECK(connections.size() <= kThreads);
}
