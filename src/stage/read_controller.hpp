// The read controller: chooses how the readers read (I/O mode, bytes per read call, reads in
// flight) by measuring during the load itself, in the spirit of TCP's congestion control. Which
// setting wins is not knowable in advance and changes mid-load: on this machine's shared virtual
// disk, O_DIRECT 1 MiB x 32 read a cold file at 2.01 GB/s while 16 MiB x 16 read 0.49 in the same
// minute, and minutes later buffered reads led (docs/notes/tuning.md).
//
// The load is cut into epochs, each holding one setting for a budget of bytes. First every
// candidate is probed once (a short epoch each), then the fastest is exploited for a long epoch;
// after each exploit epoch one other candidate is probed again (round robin), so a volume that
// changes mid-load is noticed. An epoch's rate is its bytes over the span from its first read's
// start to its last read's end (reads of neighbouring epochs overlap a little at the edges; every
// epoch is treated alike). The best setting is the one whose latest epoch was fastest.
// Probing a slow setting is what costs (64 MiB at 0.1 GB/s is 0.6 s), so: a probe running under
// half the best rate is cut short once a quarter of it is done; re-probes go to contenders (at
// least half the best rate) and only every fourth one to the rest; and each re-probe that does not
// change the best doubles the next exploit epoch (a new best resets it). The epoch after a probe
// opens before the probe's last reads end; when they end and make it the best, the exploit epoch
// under way stops there and the next exploits it.
//
// A pure object: fed (ticket, bytes, seconds) by the caller's clock, so it is tested with a fake
// clock and fake rates. Thread-safety: none; the pipeline serialises calls (stage/pipeline.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace tensorinit::stage {

enum class ReadMode : uint8_t {
  buffered,  // pread through the page cache, the chunk announced first (POSIX_FADV_WILLNEED)
  direct,    // pread with O_DIRECT into the reader's buffer (bypasses the page cache)
  splice,    // page cache to the host arena inside the kernel (splice): one copy instead of two
};
const char* to_string(ReadMode mode);

struct ReadSetting {
  ReadMode mode = ReadMode::buffered;
  uint64_t request = 16ull << 20;  // bytes per read call (a multiple of 4096)
  unsigned in_flight = 8;          // readers reading at once
  // How reads are handed out. false: each reader owns a whole chunk of the plan and reads it in
  // `request`s (readers work `chunk_size` apart). true: the readers share one cursor, each read the
  // next `request` bytes in file order, no WILLNEED (readers work on adjacent regions, one
  // sequential stream for the disk and the file's readahead: the plain copies' way, which copied
  // at 1.27 GB/s cold against 0.71 for whole chunks, same run; docs/notes/copy17.md, copy18.md).
  bool shared = false;
  // Whether writes into the sink take turns (HostSink's mutex; other sinks ignore it). Measured
  // here: serialised saves 4x at load 8-11 (unserialised pwrite 1M x4 0.32-0.44 GB/s, serialised
  // 1.35-1.36: writers spin on the tmpfs inode lock) and costs about 10% at a quiet moment (warm
  // 256K x2 2.53 against 2.78; docs/notes/copy21.md), so the warm host candidates include an
  // unlocked twin and the controller measures which wins now (docs/notes/copy22.md).
  bool serialised = true;
  bool operator==(const ReadSetting&) const = default;
};

// What the user fixed (nullopt: auto) and what the load allows; candidates_for turns it into the
// settings worth probing.
struct ReadFacts {
  std::optional<bool> direct;          // direct_io on/off (off: buffered or splice)
  std::optional<uint64_t> request;     // chunk_size given: reads of whole chunks, none shared
  std::optional<unsigned> in_flight;   // readers given
  std::optional<bool> shared;          // shared_cursor on (only shared settings) / off (none)
  bool direct_available = false;       // some file opened with O_DIRECT (a cold local file)
  bool splice_available = false;       // plain local files into the host arena, no filter
  bool cursor_available = false;       // readers may share one cursor: no filter (the pipeline's own
                                       // buffers or the sink's pinned ring, stage/cuda_sink.hpp)
  uint64_t chunk_size = 16ull << 20;   // the plan's chunks: no request is larger
  unsigned max_in_flight = 8;          // reader threads the staging memory allows
};

// The candidates, most likely winner first (it runs first and is the fallback). Never empty.
std::vector<ReadSetting> candidates_for(const ReadFacts& facts);

struct ControllerOptions {
  std::vector<ReadSetting> candidates;  // probed in this order; never empty
  uint64_t probe_bytes = 64ull << 20;   // one probe epoch
  uint64_t exploit_bytes = 512ull << 20;  // one exploit epoch
};

// Probe and exploit budgets for a load of `total` bytes: probes of 1/32 of it (32 MiB to 256 MiB),
// exploits 8 probes long, so probing costs a bounded share of the load.
ControllerOptions controller_options(std::vector<ReadSetting> candidates, uint64_t total);

// One epoch: a setting held for a budget of bytes, and how fast it went.
struct ReadPhase {
  ReadSetting setting;
  bool probe = false;
  uint64_t bytes = 0;    // bytes of the reads that finished
  double seconds = 0;    // first start to last end of its reads
  double rate() const { return seconds > 0 ? static_cast<double>(bytes) / seconds : 0; }
};

class ReadController {
 public:
  explicit ReadController(ControllerOptions options);

  struct Ticket {
    uint32_t epoch = 0;
    ReadSetting setting;
  };
  // The setting for a read of `bytes` starting at `now` (seconds; any monotonic origin).
  Ticket begin(uint64_t bytes, double now);
  // The read of `ticket` finished at `now` having read `bytes`.
  void end(const Ticket& ticket, uint64_t bytes, double now);

  // The setting the next read will get: opens the next epoch when the current one has issued its
  // budget (so callers can wait for a free slot under its in_flight before begin()).
  const ReadSetting& upcoming();
  // Every epoch so far, in order (the last may be unfinished).
  std::vector<ReadPhase> phases() const;
  // The candidate whose latest finished epoch was fastest; the first candidate before any finished.
  ReadSetting best() const;
  // The setting that read the most bytes so far (what carried the load, for the report).
  ReadSetting carried() const;
  const std::vector<ReadSetting>& candidates() const { return options_.candidates; }

 private:
  struct Epoch {
    ReadPhase phase;
    size_t candidate = 0;
    uint64_t budget = 0;
    uint64_t issued = 0;
    unsigned outstanding = 0;
    double first_start = 0;
    double last_end = 0;
    bool started = false;
  };
  void open_next();
  bool finished(const Epoch& e) const { return e.issued >= e.budget && e.outstanding == 0; }
  bool losing(const Epoch& e) const;
  void retarget();  // a probe just finished: stop an exploit epoch that is no longer on the best
  std::optional<size_t> best_candidate() const;

  ControllerOptions options_;
  std::vector<Epoch> epochs_;
  std::vector<std::optional<double>> latest_rate_;  // per candidate: its latest finished epoch
  size_t probed_ = 0;        // candidates probed in the first round
  size_t reprobe_next_ = 0;  // round robin over the others after that
  size_t reprobes_ = 0;
  uint64_t exploit_bytes_ = 0;            // grows while re-probes lose
  std::optional<size_t> exploited_;       // the candidate of the latest exploit epoch
  bool last_was_probe_ = true;
};

}  // namespace tensorinit::stage
