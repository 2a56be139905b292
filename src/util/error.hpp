// Errors as values. A few codes, each driving a decision (the contract's exit codes).
#pragma once

#include <expected>
#include <string>
#include <utility>

namespace tensorinit {

// Exit codes of the contract (sysexits.h where tensorinit itself fails).
enum class Code : int {
  ok = 0,
  usage = 64,        // bad command line
  bad_data = 65,     // malformed file, checksum or size mismatch
  no_source = 66,    // no usable weight source
  unavailable = 69,  // no GPU, remote unreachable after retries
  internal = 70,
  io = 74,
  denied = 77,
  bad_manifest = 78,
  not_executable = 126,  // the server command cannot be executed
  not_found = 127,       // the server command does not exist
  stopped = 143,     // told to stop (SIGTERM) before a child existed
};

struct Error {
  Code code = Code::internal;
  std::string message;  // one line; names the file and the problem; never holds secrets

  int exit_code() const { return static_cast<int>(code); }
};

template <class T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> fail(Code code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}

// Thrown only inside a module and converted to a value at its boundary (or by main's one catch).
struct Failure {
  Error error;
};

[[noreturn]] inline void raise(Code code, std::string message) {
  throw Failure{Error{code, std::move(message)}};
}

}  // namespace tensorinit
