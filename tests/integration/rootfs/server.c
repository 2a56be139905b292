/* A stand-in inference server for the container test (test_container_rootfs.sh): linked against
 * glibc only, run by tensorinit as PID 1 inside a root filesystem that has nothing else.
 *
 *   server ARENA OUTDIR
 *
 * Writes into OUTDIR (a bind mount the test reads from outside): env (the TENSORINIT_* variables,
 * its pid and parent pid), table.json (a copy of $TENSORINIT_TABLE), arena.bin (a copy of ARENA),
 * zombies (zombie processes left after 20 orphans exited), then "ready". On SIGTERM it writes
 * "got-term" and exits 42, so the test sees both the forwarding and the exit code. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char outdir[512];
static volatile sig_atomic_t got_term;

static void on_term(int sig) { (void)sig; got_term = 1; }

static void die(const char* what) { perror(what); exit(3); }

static void out_path(char* buf, size_t size, const char* name) { snprintf(buf, size, "%s/%s", outdir, name); }

static void copy_file(const char* from, const char* name) {
  char to[600];
  out_path(to, sizeof to, name);
  int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (in < 0 || out < 0) die(from);
  char buf[1 << 16];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n) die("write");
  if (n < 0) die("read");
  close(in);
  close(out);
}

static void write_text(const char* name, const char* text) {
  char path[600];
  out_path(path, sizeof path, name);
  FILE* f = fopen(path, "w");
  if (!f) die(path);
  fputs(text, f);
  fclose(f);
}

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0) {}
}

/* Orphans: each child forks a grandchild and exits at once; the grandchild is re-parented to
 * PID 1 (tensorinit) and exits 100 ms later. Only PID 1 can reap it. */
static void make_orphans(int count) {
  for (int i = 0; i < count; i++) {
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
      if (fork() == 0) {
        sleep_ms(100);
        _exit(0);
      }
      _exit(0);
    }
    waitpid(child, NULL, 0);
  }
}

static int count_zombies(void) {
  DIR* proc = opendir("/proc");
  if (!proc) die("/proc");
  int zombies = 0;
  struct dirent* e;
  while ((e = readdir(proc)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[300], stat[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE* f = fopen(path, "r");
    if (!f) continue;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = 0;
    const char* close_paren = strrchr(stat, ')'); /* "pid (comm) S ..." */
    if (close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z') zombies++;
  }
  closedir(proc);
  return zombies;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: server ARENA OUTDIR\n");
    return 2;
  }
  snprintf(outdir, sizeof outdir, "%s", argv[2]);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigset_t unblock;
  sigemptyset(&unblock);
  sigprocmask(SIG_SETMASK, &unblock, NULL);

  const char* table = getenv("TENSORINIT_TABLE");
  char env[2048];
  snprintf(env, sizeof env, "TENSORINIT_TABLE=%s\nTENSORINIT_MODEL_DIR=%s\nTENSORINIT_SOURCE=%s\npid=%d\nppid=%d\n",
           table ? table : "", getenv("TENSORINIT_MODEL_DIR") ? getenv("TENSORINIT_MODEL_DIR") : "",
           getenv("TENSORINIT_SOURCE") ? getenv("TENSORINIT_SOURCE") : "", (int)getpid(), (int)getppid());
  write_text("env", env);
  if (table) copy_file(table, "table.json");
  copy_file(argv[1], "arena.bin");

  make_orphans(20);
  sleep_ms(600); /* the orphans exit after 100 ms; PID 1 has had ample time to reap them */
  char zombies[32];
  snprintf(zombies, sizeof zombies, "%d\n", count_zombies());
  write_text("zombies", zombies);
  write_text("ready", "");

  while (!got_term) pause();
  write_text("got-term", "");
  return 42;
}
