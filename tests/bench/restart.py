#!/usr/bin/env python3
"""Restart without reload vs a fresh start (issue 14 part 2), interleaved rounds, medians.

  python3 tests/bench/restart.py [--size 1GiB] [--rounds 5] [--tensorinit build/tensorinit]

Each round, in alternating order:
  fresh:   `tensorinit run` (signal mode, ready by socket) of the model, page cache warm (the best
           case for a fresh start): seconds.ready from the report (process start to the server's
           ready, the server having mapped every tensor).
  restart: the same, but the first server exits 3 once it is ready; tensorinit restarts it
           (restart_delay 0ms) and the second server maps every tensor and says ready: the time
           from the first server's exit to the second's ready (report timeline), and of it the
           arena check (stderr line).
The server is python3 with examples/clients/python: wait_and_open(), a view of every tensor,
notify_ready(). Its interpreter start and imports are in both figures.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER = """
import os, sys
sys.path.insert(0, %r)
import tensorinit_client as tc
w = tc.wait_and_open()
views = [w.raw(n) for n in w.names()]
tc.notify_ready()
flag = sys.argv[1]
if os.path.exists(flag):
    os.unlink(flag)
    sys.exit(3)
""" % os.path.join(ROOT, "examples", "clients", "python")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1GiB")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tensorinit", default=os.path.join(ROOT, "build", "tensorinit"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="tensorinit-restart-bench-", dir="/var/tmp")
    model = os.path.join(tmp, "model")
    subprocess.run([a.tensorinit, "synth", "--size", a.size, "--seed", "7", model], check=True, stderr=subprocess.DEVNULL)
    server = os.path.join(tmp, "server.py")
    open(server, "w").write(SERVER)
    flag = os.path.join(tmp, "crash-once")
    report = os.path.join(tmp, "report.json")
    manifest = os.path.join(tmp, "m.yaml")
    open(manifest, "w").write(
        "version: 1\nmodel: {name: restart-bench, sources: [{type: image, path: %s}]}\nreport: %s\n"
        "handoff: {mode: signal, restart: on-failure, restart_delay: 0ms, ready: {socket: true}}\n" % (model, report))
    subprocess.run(["cat", model + "/model.safetensors"], stdout=subprocess.DEVNULL, check=True)  # warm
    fresh, restart, check = [], [], []
    for i in range(a.rounds):
        for kind in (("fresh", "restart") if i % 2 == 0 else ("restart", "fresh")):
            if kind == "restart":
                open(flag, "w").close()
            p = subprocess.run([a.tensorinit, "run", "-f", manifest, "--", "python3", server, flag],
                               capture_output=True, text=True)
            r = json.load(open(report))
            assert p.returncode == 0 and r["ok"], (p.returncode, p.stderr)
            if kind == "fresh":
                fresh.append(r["seconds"]["ready"])
                continue
            t = r["timeline"]
            exited = [e["at"] for e in t if e["event"] == "server_exited"][0]
            ready = [e["at"] for e in t if e["event"] == "server_ready"][-1]
            restart.append(ready - exited)
            m = re.search(r"checked unchanged in ([0-9.]+)s", p.stderr)
            check.append(float(m.group(1)) if m else float("nan"))
    def row(name, xs):
        print("| %s | %.3f | %.3f | %.3f |" % (name, statistics.median(xs), min(xs), max(xs)))
    print("model %s, %d rounds, seconds: median, min, max" % (a.size, a.rounds))
    print("| what | median | min | max |\n|---|---|---|---|")
    row("fresh `tensorinit run` to ready (warm page cache)", fresh)
    row("restart: server exit to the new server ready", restart)
    row("of which the arena digest check", check)
    print("restart / fresh (medians): %.1f%%" % (100 * statistics.median(restart) / statistics.median(fresh)))
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
