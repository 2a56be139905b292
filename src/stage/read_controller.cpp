#include "stage/read_controller.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace tensorinit::stage {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kBlock = 4096;

uint64_t fit_request(uint64_t request, uint64_t chunk_size) {
  const uint64_t r = std::min(request, std::max(chunk_size, kBlock));
  return std::max(kBlock, r / kBlock * kBlock);
}

}  // namespace

const char* to_string(ReadMode mode) {
  switch (mode) {
    case ReadMode::buffered: return "buffered";
    case ReadMode::direct: return "direct";
    case ReadMode::splice: return "splice";
  }
  return "?";
}

std::vector<ReadSetting> candidates_for(const ReadFacts& facts) {
  const unsigned most = std::max(1u, facts.max_in_flight);
  const auto in_flight = [&](unsigned wanted) { return std::min(most, facts.in_flight.value_or(wanted)); };
  const auto request = [&](uint64_t wanted) { return fit_request(facts.request.value_or(wanted), facts.chunk_size); };
  // Through the page cache: splice where the sink takes descriptors (one copy fewer), else pread.
  const ReadMode cached = facts.splice_available ? ReadMode::splice : ReadMode::buffered;
  std::vector<ReadSetting> out;
  const auto add = [&](ReadMode mode, uint64_t req, unsigned flight, bool shared = false, bool serialised = true) {
    const ReadSetting s{
        .mode = mode, .request = request(req), .in_flight = in_flight(flight), .shared = shared, .serialised = serialised};
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  };
  const bool direct = facts.direct_available && facts.direct.value_or(true);
  const bool through_cache = !direct || !facts.direct.has_value();
  // shared_cursor on: the readers share one cursor in every epoch, parts of the chunk size given
  // (whole chunks in file order) or else the auto settings' part sizes, O_DIRECT only when asked
  // for. What tests/gpu/run.sh forces to measure the cursor against whole chunks on a GPU.
  if (facts.shared == true && facts.cursor_available) {
    const ReadMode mode = facts.direct == true && facts.direct_available ? ReadMode::direct : cached;
    add(mode, mode == ReadMode::splice ? 256 << 10 : 1 * kMiB, 8, true);
    return out;
  }
  const bool may_share = facts.shared != false;
  // Cold into the host arena (direct_io auto or off), the plain copies' way: the readers share one
  // cursor, 256 KiB splices, WILLNEED ahead of the cursor (stage/read_cursor.hpp), and no O_DIRECT
  // candidates: their epochs, interleaved, cost more than they won. Measured here (2 GiB, page
  // cache dropped, 3 interleaved rounds, load 4-5; docs/notes/copy18.md): these (and splice 16M
  // x8) 0.98 (0.84-1.08) GB/s against 0.88 (0.75-0.89) with O_DIRECT 1M x16 and 4M x8 beside
  // them and 0.80 (0.76-0.83) for the O_DIRECT and whole-chunk splice candidates before.
  if (may_share && facts.splice_available && !facts.request && facts.direct != true &&
      (facts.direct_available || facts.direct == false)) {
    add(ReadMode::splice, 256 << 10, 8, true);
    add(ReadMode::splice, facts.chunk_size, 2);
    add(ReadMode::splice, facts.chunk_size, 4);
    // No unlocked twin (ReadSetting::serialised) here: splice 256K x8 shared unlocked carried 2 of
    // 8 cold loads at load 8-10 and the loads ran 0.59-0.61 GB/s median against 0.62-0.67 without
    // it (docs/notes/copy22.md).
    return out;
  }
  // Measured on this machine's virtual disk (docs/notes/tuning.md): O_DIRECT with 1-4 MiB requests
  // and 16-32 MiB in flight led most often when cold; through the page cache, a few readers with
  // the chunk announced ahead (the kernel then keeps the device busy) and the copy on both cores.
  // Cold files into buffers of the pipeline's own (the discard target), direct_io auto: the readers
  // share one cursor with buffered 1 MiB reads, first (probed after O_DIRECT epochs it ran 0.19-0.24
  // GB/s: the readahead then treats it as random). 2 GiB, page cache dropped, 4-6 interleaved rounds
  // at four moments (docs/notes/copy19.md): 0.95/0.99/0.86/0.75 GB/s against 0.83/0.95/0.83/0.72
  // for the O_DIRECT and whole-chunk buffered candidates alone. The cuda target's parts go into its
  // pinned ring the same way (discard is the figure that predicts the GPU path; the cursor is
  // probed beside the O_DIRECT and whole-chunk candidates, which stay; not yet measured on a GPU:
  // tests/gpu/run.sh measures it forced against whole chunks). Not with a filter.
  if (may_share && facts.cursor_available && facts.direct_available && !facts.direct.has_value() && !facts.request)
    add(ReadMode::buffered, 1 * kMiB, 8, true);
  if (direct) {
    add(ReadMode::direct, 1 * kMiB, 16);
    add(ReadMode::direct, 4 * kMiB, 8);
  }
  if (through_cache) {
    add(cached, facts.chunk_size, 2);
    add(cached, facts.chunk_size, 4);
    // Warm into the host arena: the unlocked twin of the first (two writers, as the quiet moment's
    // best plain copy, unserialised pwrite 256K x2 at 2.78 GB/s; ReadSetting::serialised). It
    // carried 5 of 8 warm loads at load 8-10, the loads at parity: 1.33-1.43 GB/s median against
    // 1.20-1.45 (docs/notes/copy22.md).
    // Only where the read setting is auto: a user who fixed it gets no probing of the lock either.
    if (cached == ReadMode::splice && !facts.request && !facts.in_flight) add(cached, facts.chunk_size, 2, false, false);
  }
  return out;
}

ControllerOptions controller_options(std::vector<ReadSetting> candidates, uint64_t total) {
  ControllerOptions o;
  o.candidates = std::move(candidates);
  o.probe_bytes = std::clamp<uint64_t>(total / 32, 32 * kMiB, 256 * kMiB);
  o.exploit_bytes = 8 * o.probe_bytes;
  return o;
}

ReadController::ReadController(ControllerOptions options) : options_(std::move(options)) {
  if (options_.candidates.empty()) options_.candidates.push_back({});
  latest_rate_.resize(options_.candidates.size());
  exploit_bytes_ = options_.exploit_bytes;
}

bool ReadController::losing(const Epoch& e) const {
  const auto best = best_candidate();
  if (!e.phase.probe || !best || *best == e.candidate || e.phase.bytes < e.budget / 4 || e.phase.seconds <= 0) return false;
  return e.phase.rate() < 0.5 * *latest_rate_[*best];
}

std::optional<size_t> ReadController::best_candidate() const {
  std::optional<size_t> best;
  for (size_t i = 0; i < latest_rate_.size(); ++i)
    if (latest_rate_[i] && (!best || *latest_rate_[i] > *latest_rate_[*best])) best = i;
  return best;
}

ReadSetting ReadController::best() const { return options_.candidates[best_candidate().value_or(0)]; }

ReadSetting ReadController::carried() const {
  std::vector<uint64_t> bytes(options_.candidates.size());
  for (const Epoch& e : epochs_) bytes[e.candidate] += e.phase.bytes;
  return options_.candidates[static_cast<size_t>(std::max_element(bytes.begin(), bytes.end()) - bytes.begin())];
}

void ReadController::open_next() {
  const size_t n = options_.candidates.size();
  Epoch e;
  if (n == 1) {  // nothing to choose: one epoch for the whole load
    e.candidate = 0;
    e.budget = std::numeric_limits<uint64_t>::max();
  } else if (probed_ < n) {  // the first round: every candidate once
    e.candidate = probed_++;
    e.phase.probe = true;
  } else if (last_was_probe_) {
    e.candidate = best_candidate().value_or(0);
    if (exploited_ && *exploited_ == e.candidate) exploit_bytes_ = std::min(exploit_bytes_ * 2, 64 * options_.probe_bytes);
    else exploit_bytes_ = options_.exploit_bytes;
    exploited_ = e.candidate;
    e.budget = exploit_bytes_;
  } else {  // between exploits: probe another candidate again (round robin, contenders first)
    const size_t best = best_candidate().value_or(0);
    const bool anyone = ++reprobes_ % 4 == 0;
    const auto contender = [&](size_t i) {
      return i != best && (anyone || !latest_rate_[i] || !latest_rate_[best] || *latest_rate_[i] >= 0.5 * *latest_rate_[best]);
    };
    size_t pick = best;
    for (size_t step = 1; step <= n && pick == best; ++step)
      if (contender((reprobe_next_ + step) % n)) pick = (reprobe_next_ + step) % n;
    if (pick == best) {  // no contender: keep exploiting
      e.candidate = best;
      e.budget = exploit_bytes_;
    } else {
      reprobe_next_ = pick;
      e.candidate = pick;
      e.phase.probe = true;
    }
  }
  e.phase.setting = options_.candidates[e.candidate];
  if (e.budget == 0) e.budget = e.phase.probe ? options_.probe_bytes : options_.exploit_bytes;
  last_was_probe_ = e.phase.probe;
  epochs_.push_back(e);
}

const ReadSetting& ReadController::upcoming() {
  if (!epochs_.empty() && losing(epochs_.back())) epochs_.back().budget = epochs_.back().issued;  // cut short
  if (epochs_.empty() || epochs_.back().issued >= epochs_.back().budget) open_next();
  return epochs_.back().phase.setting;
}

ReadController::Ticket ReadController::begin(uint64_t bytes, double now) {
  upcoming();
  Epoch& e = epochs_.back();
  if (!e.started) {
    e.first_start = now;
    e.last_end = now;
    e.started = true;
  }
  e.issued += std::max<uint64_t>(bytes, 1);
  ++e.outstanding;
  return {static_cast<uint32_t>(epochs_.size() - 1), e.phase.setting};
}

void ReadController::end(const Ticket& ticket, uint64_t bytes, double now) {
  if (ticket.epoch >= epochs_.size()) return;
  Epoch& e = epochs_[ticket.epoch];
  if (e.outstanding > 0) --e.outstanding;
  e.phase.bytes += bytes;
  e.last_end = std::max(e.last_end, now);
  e.phase.seconds = e.last_end - e.first_start;
  if (finished(e) && e.phase.seconds > 0) {
    latest_rate_[e.candidate] = e.phase.rate();
    if (e.phase.probe) retarget();
  }
}

// The epoch after a probe opens as soon as the probe's budget is issued, before its last reads end
// (readers do not wait), so an exploit epoch used to be chosen without the probe just before it:
// in 12 warm host loads here (2026-12-07 19:02-19:04 UTC, 2 or 3 candidates) every first exploit
// ignored the last probe, which had been faster in 10 (e.g. splice 16 MiB x 2 probed 1.21, x 4
// 2.16 GB/s, then x 2 exploited for 512 MiB at 1.10; docs/notes/copy20.md). So a finishing probe
// that makes another candidate the best stops the exploit under way (it issues no more) and the
// next epoch exploits the new best.
void ReadController::retarget() {
  Epoch& now = epochs_.back();
  const auto best = best_candidate();
  if (now.phase.probe || !best || *best == now.candidate || now.issued >= now.budget) return;
  now.budget = now.issued;
  last_was_probe_ = true;  // the next epoch exploits
}

std::vector<ReadPhase> ReadController::phases() const {
  std::vector<ReadPhase> out;
  out.reserve(epochs_.size());
  for (const Epoch& e : epochs_)
    if (e.started) out.push_back(e.phase);
  return out;
}

}  // namespace tensorinit::stage
