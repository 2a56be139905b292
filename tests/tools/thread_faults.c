// LD_PRELOAD (test_attack6_threads.sh): pthread_create fails with EAGAIN from the PT_FAIL_FROM-th call on (1-based),
// PT_FAIL_COUNT times (default: every call after), as under a container's pids limit.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
static atomic_int calls;
int pthread_create(pthread_t* t, const pthread_attr_t* a, void* (*f)(void*), void* arg) {
  static int (*real)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
  if (!real) real = dlsym(RTLD_NEXT, "pthread_create");
  const int n = ++calls;
  const char* from = getenv("PT_FAIL_FROM");
  const char* count = getenv("PT_FAIL_COUNT");
  if (from && n >= atoi(from) && (!count || n < atoi(from) + atoi(count))) return EAGAIN;
  return real(t, a, f, arg);
}

// aligned_alloc returns NULL (ENOMEM) for AA_FAIL_OVER bytes or more, as under a memory limit.
void* aligned_alloc(size_t align, size_t n) {
  static void* (*real)(size_t, size_t);
  if (!real) real = dlsym(RTLD_NEXT, "aligned_alloc");
  const char* over = getenv("AA_FAIL_OVER");
  if (over && n >= strtoull(over, NULL, 10)) {
    errno = ENOMEM;
    return NULL;
  }
  return real(align, n);
}
