// Whether this process has ptrace access to another one (the exporter of the IPC handles: in
// signal mode, tensorinit, this process's parent), the access that CUDA's cuMem POSIX-fd handles
// need to be imported with pidfd_getfd (PTRACE_MODE_ATTACH_REALCREDS) and legacy cudaIpc handles
// are not known to need. tensorinit-full makes itself non-dumpable first thing (src/main.cpp), so
// a process of the same user without CAP_SYS_PTRACE has no such access; tests/gpu/run.sh drops
// CAP_SYS_PTRACE here, probes, and then opens the handles, which shows whether legacy CUDA IPC
// works without ptrace access (docs/notes/gpu21.md). No CUDA in this file: `--exporter-check`
// runs it alone on machines without a GPU.
#pragma once

#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

namespace exporter_access {

// Drops CAP_SYS_PTRACE from this process's effective, permitted and inheritable sets (it
// overrides both the dumpable flag and Yama). "" when done (or never held), else why not.
inline std::string drop_cap_sys_ptrace() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &header, data) != 0) return std::string("capget: ") + std::strerror(errno);
  const unsigned word = CAP_SYS_PTRACE / 32, bit = 1u << (CAP_SYS_PTRACE % 32);
  data[word].effective &= ~bit;
  data[word].permitted &= ~bit;
  data[word].inheritable &= ~bit;
  if (::syscall(SYS_capset, &header, data) != 0) return std::string("capset: ") + std::strerror(errno);
  return "";
}

inline std::string first_line(const std::string& path, const char* otherwise = "?") {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return in || !line.empty() ? line : otherwise;
}

// errno of a ptrace-gated call on `pid`, 0 when it was allowed.
inline int pidfd_getfd_errno(pid_t pid) {
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_getfd)
  const long pidfd = ::syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) return errno;
  const long fd = ::syscall(SYS_pidfd_getfd, static_cast<int>(pidfd), 2, 0);  // its stderr
  const int e = fd < 0 ? errno : 0;
  if (fd >= 0) ::close(static_cast<int>(fd));
  ::close(static_cast<int>(pidfd));
  return e;
#else
  (void)pid;
  return ENOSYS;
#endif
}

inline int process_vm_readv_errno(pid_t pid) {
  char byte = 0;
  const iovec local{&byte, 1};
  const iovec remote{reinterpret_cast<void*>(4096), 1};  // never mapped: EFAULT once access is granted
  if (::process_vm_readv(pid, &local, 1, &remote, 1, 0) >= 0) return 0;
  return errno == EFAULT ? 0 : errno;
}

// The control: the same probes on a dumpable child of this process (which Yama's scope 1 allows
// too), so a denial of the exporter is the exporter's, not this process's lack of any access.
inline std::string control() {
  int ready[2];
  if (::pipe(ready) != 0) return "no control (pipe)";
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(ready[0]);
    ::close(ready[1]);  // the parent's read returns: the child exists and is dumpable as we are
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char c;
  while (child > 0 && ::read(ready[0], &c, 1) < 0 && errno == EINTR) {
  }
  ::close(ready[0]);
  if (child < 0) return "no control (fork)";
  const int getfd = pidfd_getfd_errno(child), vm = process_vm_readv_errno(child);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  return getfd == 0 && vm == 0 ? "allowed" : std::string("refused too: ") + std::strerror(getfd ? getfd : vm);
}

struct Probe {
  bool denied = false;  // every probe refused with EPERM/EACCES
  std::string line;     // one line for the log and tests/gpu/run.sh's table
};

// Drops CAP_SYS_PTRACE, then probes `pid` with pidfd_getfd (what cuMem POSIX-fd imports use) and
// process_vm_readv.
inline Probe probe(pid_t pid) {
  const std::string dropped = drop_cap_sys_ptrace();
  const int getfd = pidfd_getfd_errno(pid), vm = process_vm_readv_errno(pid);
  const auto refused = [](int e) { return e == EPERM || e == EACCES; };
  const auto said = [](int e) { return e == 0 ? std::string("allowed") : std::string(std::strerror(e)); };
  Probe p;
  p.denied = refused(getfd) && refused(vm);
  const std::string dumpable_child = control();
  p.line = "exporter PID " + std::to_string(pid) + " (" + first_line("/proc/" + std::to_string(pid) + "/comm") + "): " +
           (p.denied ? "ptrace access denied" : "ptrace access NOT denied") + " (CAP_SYS_PTRACE " +
           (dropped.empty() ? "dropped" : "kept: " + dropped) + "; pidfd_getfd: " + said(getfd) +
           "; process_vm_readv: " + said(vm) + "; yama ptrace_scope " +
           first_line("/proc/sys/kernel/yama/ptrace_scope", "absent") + "; the same probes on a dumpable child of the consumer: " +
           dumpable_child + ")";
  return p;
}

}  // namespace exporter_access
