#!/usr/bin/env python3
"""A start-up cache restored from a remote that trickles (one byte every 0.3 s, with a
stall_timeout of 10m so the minimum rate never ends it) must not hold the server's start: once
the weights are ready the restore gets its bound (TENSORINIT_CACHE_RESTORE_BOUND, a test knob;
by default 30 s + max_size at 8 MiB/s), then it is stopped, the directory is left empty, the
server starts, and the report says "too slow", not "stopped by a signal".
Before the fix (main at 496d6a7) the start waited for the trickle: 69 s for a 238-byte archive; with
this one (4 KiB of random bytes) the run did not end in 120 s.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["TESTS_DIR"], "tools"))
import testkit  # noqa: E402
from testkit import check  # noqa: E402

TENSORINIT = os.environ["TENSORINIT"]
TMP = os.environ["TEST_TMP"]


def manifest(name, cache_dir, source, save):
    path = os.path.join(TMP, name + ".yaml")
    seen = os.path.join(TMP, name + ".seen")
    with open(path, "w") as f:
        f.write(f"""version: 1
model:
  name: attack5-{name}
  sources: [{{type: image, path: "{os.path.join(TMP, 'model')}"}}]
handoff:
  mode: signal
  start: after-load
  command: [/bin/sh, -c, 'ls -A "$0" > "$1"; head -c 4096 /dev/urandom > "$0/blob"', {cache_dir}, {seen}]
caches:
  - name: inductor
    path: {cache_dir}
    save: {save}
    max_size: 64MiB
    sources: [{source}]
report: {os.path.join(TMP, name + '.report.json')}
""")
    return path


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    subprocess.run([TENSORINIT, "synth", "--size", "1MiB", os.path.join(TMP, "model")], check=True,
                   capture_output=True)
    www = os.path.join(TMP, "www")
    vol = os.path.join(www, "caches")
    os.makedirs(vol)
    # The archive: saved by a first start to a volume, served over http by the fault server.
    r = subprocess.run([TENSORINIT, "run", "-f", manifest("seed", os.path.join(TMP, "c0"),
                                                          f"{{type: volume, path: {vol}}}", "on-exit")],
                       capture_output=True, text=True, timeout=300)
    check("seed: an archive saved", r.returncode == 0 and os.path.exists(os.path.join(vol, "inductor.tar.zst")),
          r.stderr[-600:])

    server = subprocess.Popen([sys.executable, os.path.join(os.environ["TESTS_DIR"], "tools", "fault_server.py"), www,
                               "--stdin-control", "--fault", "/caches/inductor.tar.zst trickle after=16 times=0"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline())
    server.stdout.readline()
    cache = os.path.join(TMP, "c1")
    src = f'{{type: http, url: "http://127.0.0.1:{port}/caches/", stall_timeout: 10m}}'
    env = dict(os.environ, TENSORINIT_CACHE_RESTORE_BOUND="1s")
    try:
        r = subprocess.run([TENSORINIT, "run", "-f", manifest("slow", cache, src, "never")], capture_output=True,
                           text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired as e:
        check("a trickling restore does not hold the start (exit within 120 s)", False, (e.stderr or b"")[-600:])
        server.stdin.close()
        server.wait()
        return
    check("trickling restore: the server started, exit 0", r.returncode == 0, r.stderr[-800:])
    with open(os.path.join(TMP, "slow.seen")) as f:
        check("trickling restore: the server found an empty directory", f.read().split() == [])
    with open(os.path.join(TMP, "slow.report.json")) as f:
        restore = json.load(f)["caches"][0]["restore"]
    check("trickling restore: reported stopped, too slow",
          restore["state"] == "stopped" and restore["message"].startswith("too slow") and "signal" not in restore["message"],
          restore)
    check("trickling restore: one warning line says too slow",
          sum(1 for line in r.stderr.splitlines()
              if line.startswith("tensorinit: warning: cache inductor: restore stopped: too slow")) == 1, r.stderr)
    check("trickling restore: no error line", "tensorinit: error:" not in r.stderr, r.stderr)
    check("trickling restore: only the server's file in the directory, no restore marker",
          sorted(os.listdir(cache)) == ["blob"], os.listdir(cache))
    server.stdin.close()
    server.wait()


if __name__ == "__main__":
    main()
    testkit.finish()
