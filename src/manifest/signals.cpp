#include "manifest/signals.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <csignal>
#include <utility>

namespace tensorinit::manifest {
namespace {

constexpr std::array<std::pair<std::string_view, int>, 31> kNames{{
    {"HUP", SIGHUP},     {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP},   {"ABRT", SIGABRT},     {"IOT", SIGIOT},     {"BUS", SIGBUS},
    {"FPE", SIGFPE},     {"KILL", SIGKILL},     {"USR1", SIGUSR1},   {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},   {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},   {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},   {"CONT", SIGCONT},   {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU},   {"URG", SIGURG},
    {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},     {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH}, {"IO", SIGIO},         {"PWR", SIGPWR},
}};

std::optional<int> parse_number(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

bool in_range(int signal) { return signal >= 1 && signal <= SIGRTMAX; }

}  // namespace

std::optional<int> parse_signal(std::string_view text) {
  if (!text.empty() && text.front() >= '0' && text.front() <= '9') {
    auto number = parse_number(text);
    if (!number || !in_range(*number)) return std::nullopt;
    return number;
  }
  std::string upper;
  for (char c : text) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string_view name = upper;
  if (name.starts_with("SIG")) name.remove_prefix(3);
  if (name == "POLL") return SIGPOLL;
  if (name == "SYS") return SIGSYS;
  for (auto [known, number] : kNames)
    if (name == known) return number;
  // Real-time signals: RTMIN, RTMIN+n, RTMAX, RTMAX-n (SIGRTMIN is a glibc run-time value).
  for (auto [base, sign] : {std::pair{std::string_view("RTMIN"), 1}, std::pair{std::string_view("RTMAX"), -1}}) {
    if (!name.starts_with(base)) continue;
    std::string_view rest = name.substr(base.size());
    int origin = sign > 0 ? SIGRTMIN : SIGRTMAX;
    if (rest.empty()) return origin;
    if (rest.front() != (sign > 0 ? '+' : '-')) return std::nullopt;
    if (rest.size() < 2 || rest[1] < '0' || rest[1] > '9') return std::nullopt;
    auto offset = parse_number(rest.substr(1));
    if (!offset) return std::nullopt;
    int signal = origin + sign * *offset;
    if (signal < SIGRTMIN || signal > SIGRTMAX) return std::nullopt;
    return signal;
  }
  return std::nullopt;
}

std::string signal_name(int signal) {
  if (signal == SIGSYS) return "SIGSYS";
  for (auto [known, number] : kNames)
    if (number == signal && known != "IOT") return "SIG" + std::string(known);
  if (signal == SIGRTMIN) return "SIGRTMIN";
  if (signal > SIGRTMIN && signal <= SIGRTMAX) return "SIGRTMIN+" + std::to_string(signal - SIGRTMIN);
  return std::to_string(signal);
}

}  // namespace tensorinit::manifest
