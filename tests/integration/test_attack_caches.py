#!/usr/bin/env python3
"""Attacks on start-up caches (manifest `caches:`) found by the attacker's review, each a start of
real processes: a cache poisoned by one server (a symlink chain that reads as inside but resolves
out of the directory) must not let the next replica's server write outside its cache; a cache
pointed at the arenas' directory or the weights is neither restored nor saved.
"""
import fcntl
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_caches as tc  # noqa: E402  (its manifest, run, check; TMP is this test's TEST_TMP)
from test_caches import TENSORINIT, TMP, run  # noqa: E402

import testkit  # noqa: E402  (on the path test_caches put it on)
from testkit import check  # noqa: E402


def manifest(name, cache_dir, vol, script):
    """test_caches' signal-mode manifest, its server script replaced by `script` ($1: the cache)."""
    with open(tc.SERVER, "w") as f:
        f.write(script)
    return tc.manifest(name, cache_dir, [f"{{type: volume, path: {vol}}}"])


def symlink_chain():
    # x -> "." is inside; y -> "x/.." reads as inside but is the cache's parent. One server saves
    # them (a compromised or careless one); the next replica restores them and writes "y/escaped".
    vol, parent = os.path.join(TMP, "vol"), os.path.join(TMP, "replicas")
    os.makedirs(parent)
    poison = 'cd "$1" && ln -s . x && ln -s x/.. y && ln -s x/../outside z\n'
    r = run(manifest("poison", os.path.join(parent, "c1"), vol, poison))
    check("poisoning start: exit 0 (saved)", r.returncode == 0 and os.path.exists(os.path.join(vol, "inductor.tar.zst")),
          r.stderr[-600:])
    victim = 'printf pwned > "$1/y/escaped" 2>/dev/null; printf pwned > "$1/z" 2>/dev/null; exit 0\n'
    r = run(manifest("victim", os.path.join(parent, "c2"), vol, victim))
    check("victim start: exit 0 (a cache never fails a start)", r.returncode == 0, r.stderr[-600:])
    c2 = os.path.join(parent, "c2")
    check("victim start: the chain is left out of the save or refused at the restore",
          not os.path.islink(os.path.join(c2, "y")) and not os.path.islink(os.path.join(c2, "z")), r.stderr[-600:])
    check("victim start: nothing written outside its cache",
          not os.path.exists(os.path.join(parent, "escaped")) and not os.path.exists(os.path.join(parent, "outside")),
          os.listdir(parent))


def cache_in_shm():
    # The operator points the cache at the arenas' directory (or one holding it, or the weights):
    # a save would archive this instance's arena, table and lock for the next start to restore
    # beside its load; a refused archive would empty it. Refused up front; the start goes on.
    shm, vol = os.path.join(TMP, "shm"), os.path.join(TMP, "vol-shm")
    os.makedirs(shm)
    env = dict(os.environ, TENSORINIT_SHM_DIR=shm)
    for case, path in [("equal", shm), ("holds", TMP), ("weights", os.path.join(TMP, "model", "cache"))]:
        r = run(manifest("shm-" + case, path, vol, "exit 0\n"), env)
        check(f"cache {case} the arenas' directory or weights: exit 0", r.returncode == 0, r.stderr[-600:])
        check(f"cache {case}: refused, said so", "neither restored nor saved" in r.stderr, r.stderr[-600:])
        check(f"cache {case}: nothing saved", not os.path.exists(os.path.join(vol, "inductor.tar.zst")), os.listdir(vol)
              if os.path.isdir(vol) else "")
        check(f"cache {case}: nothing left in the arenas' directory", os.listdir(shm) == [], os.listdir(shm))


def shared_directory():
    # Two containers mount one host directory as their cache and start together: both saw it
    # empty and restored into it at once (one's refusal emptying the other's files). The
    # restore holds the directory (flock); here the test holds it as the other instance would.
    vol, shared = os.path.join(TMP, "vol-shared"), os.path.join(TMP, "shared")
    r = run(manifest("shared-seed", os.path.join(TMP, "seed"), vol, 'printf v1 > "$1/k"\n'))
    check("shared directory: an archive to restore", r.returncode == 0 and os.path.exists(os.path.join(vol, "inductor.tar.zst")),
          r.stderr[-600:])
    os.makedirs(shared)
    fd = os.open(shared, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        r = run(manifest("shared-second", shared, vol, "exit 0\n"))
    finally:
        os.close(fd)
    check("shared directory being restored by another: exit 0, kept as it is",
          r.returncode == 0 and "being restored by another instance" in r.stderr and os.listdir(shared) == [],
          r.stderr[-600:])


def killed_mid_restore():
    # SIGKILL (OOM, the node) while a restore writes: the next start found the directory not empty
    # and kept the torn files as the server's. Whenever the kill lands, the next start must give
    # the server each file whole or not at all.
    vol, seed, d = os.path.join(TMP, "vol-kill"), os.path.join(TMP, "kill-seed"), os.path.join(TMP, "kill-cache")
    os.makedirs(seed)
    blob = os.urandom(48 << 20)  # incompressible: the restore writes for a while
    with open(os.path.join(seed, "blob"), "wb") as f:
        f.write(blob)
    r = run(manifest("kill-seed", seed, vol, "exit 0\n"))  # not empty: kept, then saved
    check("killed mid-restore: an archive to restore", r.returncode == 0 and os.path.exists(os.path.join(vol, "inductor.tar.zst")),
          r.stderr[-600:])
    p = subprocess.Popen([TENSORINIT, "run", "-f", manifest("kill-victim", d, vol, "exit 0\n")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while p.poll() is None and not os.path.exists(os.path.join(d, "blob")):  # the event: the file appears
        time.sleep(0.002)
    caught = p.poll() is None
    p.kill()
    p.wait()
    print(f"# killed {'during' if caught else 'after'} the restore")
    r = run(manifest("kill-next", d, vol, "exit 0\n"))
    path = os.path.join(d, "blob")
    whole = not os.path.exists(path) or open(path, "rb").read() == blob
    check("killed mid-restore: the next start gives the file whole or not at all", r.returncode == 0 and whole,
          r.stderr[-600:])


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    subprocess.run([TENSORINIT, "synth", "--size", "1MiB", "--seed", "5", os.path.join(TMP, "model")], check=True,
                   capture_output=True)
    symlink_chain()
    cache_in_shm()
    shared_directory()
    killed_mid_restore()
    print(f"{testkit.failures} failed")
    return 1 if testkit.failures else 0


if __name__ == "__main__":
    sys.exit(main())
