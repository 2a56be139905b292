/* Keeps the shipped binary runnable on glibc 2.35 (Ubuntu 22.04), though it is built on Debian 12
 * (glibc 2.36).
 *
 * Debian 12's libstdc++.a (random.o, std::random_device) calls arc4random, new in glibc 2.36; it
 * is linked in whether or not random_device is used (cow-string-inst.o refers to it), and that one
 * reference made the whole executable require GLIBC_2.36: "version `GLIBC_2.36' not found" at
 * start on 22.04. Defining arc4random in the executable satisfies the reference at link time, so
 * no 2.36 symbol is needed (scripts/package.sh checks the highest GLIBC_ version required).
 *
 * Linked into the tensorinit executable only (CMakeLists.txt). Hidden: without that, the linker
 * would export it (glibc defines the same name) and it would interpose glibc's arc4random for the
 * libraries dlopened later (libcurl's closure). Same contract as glibc's: never fails; aborts if
 * the kernel cannot supply randomness. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/types.h>

__attribute__((visibility("hidden"))) uint32_t arc4random(void) {
  uint32_t value;
  unsigned char* out = (unsigned char*)&value;
  size_t got = 0;
  while (got < sizeof value) {
    ssize_t n = getrandom(out + got, sizeof value - got, 0); /* GLIBC_2.25 */
    if (n < 0) {
      if (errno == EINTR) continue;
      abort();
    }
    got += (size_t)n;
  }
  return value;
}
