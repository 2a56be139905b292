#!/usr/bin/env python3
"""Cold-start benchmark: seconds from "container start" (the entrypoint process is spawned) to the
server's first HTTP 200 on GET / (a checksum of every weight byte, tests/bench/coldstart/server.py),
for one model under each strategy, the page cache dropped before every run, interleaved rounds,
medians. Prints a table and writes coldstart.json, coldstart.svg and table.md.

    tests/bench/coldstart/coldstart.py                       # 2 GiB bf16, 2 shards, 3 rounds
    tests/bench/coldstart/coldstart.py --rounds 5 --strategies baseline,host-signal
    tests/bench/coldstart/coldstart.py --model /var/tmp/minilm/model    # a real model directory

Needs root (drop_caches, PID namespaces) and a Python with torch, numpy and safetensors (the peers'
venv of tests/bench/bench.sh, else one made in --dir). Standard library only here. See
tests/bench/coldstart/README.md.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, HERE)
from prepare import die, ensure_model, ensure_packed, find_python, last_line, model_files, run_quiet, say, start_nginx, stop_nginx  # noqa: E402
from results import render, summarize  # noqa: E402

MODEL_NAME = "coldstart"  # arenas /dev/shm/tensorinit-coldstart-0, socket /dev/shm/tensorinit-coldstart.sock

STRATEGIES = {
    "baseline": "no tensorinit: the server reads the safetensors files itself (safetensors.torch.load_file)",
    "pagecache-exec": "tensorinit target: pagecache, handoff exec; then the same server reads $TENSORINIT_MODEL_DIR",
    "host-signal": "tensorinit target: host, handoff signal, start: early; the server imports torch during "
                   "the load, waits on $TENSORINIT_SOCKET, maps tensors from the arena (torch.frombuffer, no copy)",
    "host-signal-after": "as host-signal with start: after-load: the server starts once the weights are staged "
                         "(no overlap; shows what the overlap gains or costs)",
    "host-signal-ionice": "as host-signal, tensorinit started under `ionice -c3` (idle I/O class: its readers yield the "
                          "disk to the server) and the server under `ionice -c2 -n0`; not in the default set",
    "packed-host-signal": "as host-signal, from a packed copy (tensorinit pack --split-bytes, one .zst per shard)",
    "http-host-signal": "as host-signal, from a remote http source (nginx on loopback serving the files from the same disk)",
}


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# One run.

def write_manifest(out, key, source, target, mode, files=None, start="early"):
    lines = ["version: 1", "model:", "  name: %s" % MODEL_NAME]
    if key == "packed-host-signal":
        lines.append("  format: packed")
    lines.append("  sources:")
    if source["type"] == "http":
        entry = '{type: http, url: "%s"' % source["url"]
        if files:
            entry += ", files: [%s]" % ", ".join('"%s"' % f for f in files)
        lines.append("    - %s}" % entry)
    else:
        lines.append('    - {type: volume, path: "%s"}' % source["path"])
    lines.append("stage: {target: %s}" % target)
    if mode == "signal":
        lines.append("handoff: {mode: signal, start: %s}" % start)
    else:
        lines.append("handoff: {mode: %s}" % mode)
    lines.append('report: "${COLDSTART_REPORT}"')
    path = os.path.join(out, "manifest-%s.yaml" % key)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def drop_caches(files, what):
    """what = "all": the whole page cache (a node that has never run the image); "model": only the
    weight files (the image's interpreter, torch and tensorinit stay cached)."""
    os.sync()
    if what == "model":
        for path in files:
            fd = os.open(path, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
        return "fadvise"
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return "drop_caches"
    except OSError:  # not root: only the model's files (python, torch and tensorinit stay warm)
        for path in files:
            fd = os.open(path, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
        return "fadvise"


def leftovers():
    return sorted(glob.glob("/dev/shm/tensorinit-%s*" % MODEL_NAME))


def get_answer(port, proc, deadline, poll_s):
    """Polls 127.0.0.1:port until GET / answers 200; returns (monotonic time, body) or raises."""
    while True:
        if proc.poll() is not None:
            raise RuntimeError("the entrypoint exited with %s before answering" % proc.returncode)
        if time.monotonic() > deadline:
            raise RuntimeError("no answer within the timeout")
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=max(1.0, deadline - time.monotonic()))
        except (ConnectionRefusedError, socket.timeout):
            time.sleep(poll_s)
            continue
        with sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            chunks = []
            while True:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        now = time.monotonic()
        data = b"".join(chunks)
        head, _, body = data.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1:2]
        if status == [b"200"]:
            return now, json.loads(body)
        time.sleep(poll_s)


def stop(proc, grace_s=20):
    """SIGTERM to the entrypoint's process group (unshare blocks it and waits; the namespace's init
    handles it), then SIGKILL after grace_s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def run_once(ctx, key, rnd):
    out, py, ti = ctx["out"], ctx["python"], ctx["tensorinit"]
    port = free_port()
    server = [py, os.path.join(HERE, "server.py"), "--port", str(port)]
    report = os.path.join(out, "report-%s-%d.json" % (key, rnd))
    env = dict(os.environ, COLDSTART_REPORT=report)
    for var in ("TENSORINIT_MANIFEST", "TENSORINIT_SOCKET", "TENSORINIT_TABLE", "TENSORINIT_MODEL_DIR"):
        env.pop(var, None)
    if key == "baseline":
        cmd = server + ["--mode", "files", "--dir", ctx["model"]]
        report = None
    elif key == "pagecache-exec":
        cmd = [ti, "run", "-f", ctx["manifests"][key], "--"] + server + ["--mode", "files"]
    elif key == "host-signal-ionice":
        cmd = ["ionice", "-c3", ti, "run", "-f", ctx["manifests"][key], "--", "ionice", "-c2", "-n0"] + server + ["--mode", "table"]
    else:
        cmd = [ti, "run", "-f", ctx["manifests"][key], "--"] + server + ["--mode", "table"]
    if ctx["pid1"]:
        cmd = ["unshare", "-fp", "--mount-proc"] + cmd
    for path in leftovers():
        os.unlink(path)
    how = drop_caches(ctx["drop_files"], ctx["drop"])
    load = loadavg()[0]
    log_path = os.path.join(out, "log-%s-%d.txt" % (key, rnd))
    result = {"strategy": key, "round": rnd, "ok": False, "load1": load, "cache": how}
    with open(log_path, "w") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True)
        try:
            t1, body = get_answer(port, proc, t0 + ctx["timeout"], ctx["poll_s"])
        except (RuntimeError, OSError, ValueError) as e:
            result["error"] = str(e)
            body = None
        rc = stop(proc)
    result["exit_code"] = rc
    if body is not None:
        result["seconds"] = t1 - t0
        result["phases"] = {k: v - t0 for k, v in body["times"].items()}
        result["checksum"] = body["checksum"]
        result["tensors"] = body["tensors"]
        result["bytes"] = body["bytes"]
        if body["checksum"] != ctx["reference"]["checksum"] or body["tensors"] != ctx["reference"]["tensors"]:
            result["error"] = "wrong answer: checksum %s over %d tensors, expected %s over %d" % (
                body["checksum"], body["tensors"], ctx["reference"]["checksum"], ctx["reference"]["tensors"])
        else:
            result["ok"] = True
    if report and os.path.exists(report):
        with open(report) as f:
            r = json.load(f)
        result["report"] = {"seconds": r.get("seconds"), "direct_io": r.get("direct_io"), "readers": r.get("readers"),
                            "bytes": r.get("bytes"), "target": r.get("target"), "ok": r.get("ok"),
                            "source": (r.get("decision") or {}).get("chosen")}
    left = leftovers()
    if left:
        result["leftovers"] = left
        for path in left:
            os.unlink(path)
    if not result["ok"]:
        result.setdefault("error", "failed")
        result["log_tail"] = last_line(open(log_path).read())
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    p.add_argument("--size", default=os.environ.get("BENCH_SIZE", "2GiB"), help="synthetic model size (tensorinit synth --size)")
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--model", help="a real model directory (safetensors) instead of the synthetic one")
    p.add_argument("--label", help="how the table and chart name the model (default: its size or path)")
    p.add_argument("--strategies", default=",".join(k for k in STRATEGIES if k != "host-signal-ionice"), help="comma-separated, from: " + ", ".join(STRATEGIES))
    p.add_argument("--dir", default=os.environ.get("BENCH_DIR", "/var/tmp/tensorinit-coldstart"),
                   help="models, packed copies and results (on the real disk, not tmpfs)")
    p.add_argument("--out", help="results directory (default DIR/results-TIME)")
    p.add_argument("--tensorinit", default=os.environ.get("TENSORINIT", os.path.join(ROOT, "build-cold", "tensorinit")))
    p.add_argument("--python", help="the server's interpreter (torch, numpy, safetensors)")
    p.add_argument("--no-pid1", dest="pid1", action="store_false",
                   help="do not run the entrypoint as PID 1 of a new PID namespace (unshare -fp)")
    p.add_argument("--timeout", type=float, default=600, help="seconds one start may take")
    p.add_argument("--drop", choices=["all", "model"], default="all",
                   help="before each run drop the whole page cache (all: echo 3 > drop_caches) or only the "
                        "weight files (model: fadvise; Python, torch and tensorinit stay cached)")
    p.add_argument("--poll-ms", type=float, default=5, help="the client's retry interval while the port is closed")
    p.add_argument("--redraw", metavar="JSON", help="only re-draw coldstart.svg and table.md (beside JSON) from a coldstart.json")
    args = p.parse_args()
    if args.redraw:
        with open(args.redraw) as f:
            print(render(json.load(f), os.path.dirname(os.path.abspath(args.redraw))))
        return 0

    keys = [k.strip() for k in args.strategies.split(",") if k.strip()]
    for k in keys:
        if k not in STRATEGIES:
            die("unknown strategy %r (known: %s)" % (k, ", ".join(STRATEGIES)))
    if args.rounds < 1:
        die("--rounds must be at least 1")
    ti = os.path.abspath(args.tensorinit)
    if not os.access(ti, os.X_OK):
        die("%s: no tensorinit binary (cmake -S . -B build-cold -G Ninja -DCMAKE_BUILD_TYPE=Release && "
            "ninja -C build-cold tensorinit)" % ti)
    os.makedirs(args.dir, exist_ok=True)
    args.dir = os.path.abspath(args.dir)
    fs = run_quiet(["stat", "-f", "-c", "%T", args.dir]).stdout.strip()
    if fs in ("tmpfs", "ramfs"):
        die("%s is on %s: cold reads would come from memory; pick a directory on the real disk with --dir" % (args.dir, fs))
    if os.geteuid() != 0:
        say("not root: caches are dropped for the model files only (fadvise), and no PID namespace")
        args.pid1 = False
        args.drop = "model"
    if args.pid1 and not shutil.which("unshare"):
        die("unshare not found (util-linux); or pass --no-pid1")
    out = os.path.abspath(args.out or os.path.join(args.dir, "results-" + time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(out, exist_ok=True)

    py = find_python(args.python, args.dir)
    model = ensure_model(args, ti)
    files = model_files(model)
    model_bytes = sum(os.path.getsize(os.path.join(model, f)) for f in files)
    shm = os.statvfs("/dev/shm")
    if shm.f_bavail * shm.f_frsize < model_bytes * 1.05:
        die("/dev/shm has %d bytes free; the host arena needs %d" % (shm.f_bavail * shm.f_frsize, model_bytes))
    say("model: %s, %d file(s), %d bytes; server python: %s" % (model, len(files), model_bytes, py))
    r = run_quiet([py, os.path.join(HERE, "server.py"), "--reference", model])
    if r.returncode != 0:
        die("reference checksum failed: %s" % last_line(r.stdout))
    reference = json.loads(last_line(r.stdout))
    say("expected answer: checksum %s over %d tensors, %d bytes" % (reference["checksum"], reference["tensors"], reference["bytes"]))

    skipped = {}
    manifests = {}
    drop_files = [os.path.join(model, f) for f in files]
    ngdir = None
    try:
        for key in keys:
            if key == "pagecache-exec":
                manifests[key] = write_manifest(out, key, {"type": "volume", "path": model}, "pagecache", "exec")
            elif key == "host-signal":
                manifests[key] = write_manifest(out, key, {"type": "volume", "path": model}, "host", "signal")
            elif key == "host-signal-ionice":
                manifests[key] = write_manifest(out, key, {"type": "volume", "path": model}, "host", "signal")
            elif key == "host-signal-after":
                manifests[key] = write_manifest(out, key, {"type": "volume", "path": model}, "host", "signal",
                                                start="after-load")
            elif key == "packed-host-signal":
                packed, why = ensure_packed(model, ti, args.dir)
                if packed:
                    manifests[key] = write_manifest(out, key, {"type": "volume", "path": packed}, "host", "signal")
                    drop_files += glob.glob(os.path.join(packed, "*.zst"))
                else:
                    skipped[key] = why
            elif key == "http-host-signal":
                url, ngdir, why = start_nginx(model, out)
                if url:
                    has_index = os.path.exists(os.path.join(model, "model.safetensors.index.json"))
                    manifests[key] = write_manifest(out, key, {"type": "http", "url": url}, "host", "signal",
                                                    None if has_index else files)
                else:
                    skipped[key] = why
        # A strategy runs only if a plain `tensorinit load` of its manifest works (warm, untimed).
        for key in list(manifests):
            probe = manifests[key].replace(".yaml", "-probe.yaml")
            with open(manifests[key]) as f:
                text = f.read()
            text = "\n".join("handoff: {mode: none}" if line.startswith("handoff:") else line
                             for line in text.splitlines()) + "\n"
            with open(probe, "w") as f:
                f.write(text)
            r = run_quiet([ti, "load", "-f", probe], env=dict(os.environ, COLDSTART_REPORT=os.path.join(out, "probe-%s.json" % key)))
            if r.returncode != 0:
                skipped[key] = "`tensorinit load` fails (exit %d): %s" % (r.returncode, last_line(r.stdout))
                del manifests[key]
        for k, why in skipped.items():
            say("SKIP %s: %s" % (k, why))
        run_keys = [k for k in keys if k not in skipped]
        if not run_keys:
            die("nothing to run")

        ctx = {"out": out, "python": py, "tensorinit": ti, "model": model, "manifests": manifests,
               "pid1": args.pid1, "drop": args.drop, "drop_files": drop_files, "reference": reference,
               "timeout": args.timeout, "poll_s": args.poll_ms / 1000.0}
        load_before = loadavg()
        started = time.time()
        runs = []
        n = len(run_keys)
        for rnd in range(1, args.rounds + 1):
            for i in range(n):
                key = run_keys[(i + rnd - 1) % n]  # rotated: the disk swings between minutes
                res = run_once(ctx, key, rnd)
                runs.append(res)
                if res["ok"]:
                    say("round %d: %-20s %6.2f s  (load %.1f)" % (rnd, key, res["seconds"], res["load1"]))
                else:
                    say("round %d: %-20s FAILED: %s; %s" % (rnd, key, res["error"], res.get("log_tail", "")))
                if res.get("leftovers"):
                    say("note: left in /dev/shm after the run (removed): %s" % " ".join(res["leftovers"]))
        load_after = loadavg()
    finally:
        stop_nginx(ngdir)

    rows = summarize(runs, run_keys)
    versions = run_quiet([py, "-c", "import torch, safetensors, numpy, platform; "
                          "print(platform.python_version(), torch.__version__, safetensors.__version__, numpy.__version__)"]).stdout.split()
    env_info = {
        "cores": os.cpu_count(), "kernel": platform.release(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_before": load_before, "load_after": load_after,
        "tensorinit": last_line(run_quiet([ti, "--version"]).stdout),
        "python": versions[0] if versions else None, "torch": versions[1] if len(versions) > 1 else None,
        "safetensors": versions[2] if len(versions) > 2 else None, "numpy": versions[3] if len(versions) > 3 else None,
        "pid1": args.pid1, "cache_drop": runs[0]["cache"] if runs else None,
    }
    if args.label:
        model_desc = args.label
    elif args.model:
        model_desc = model
    else:
        model_desc = "synthetic bf16 model, %s in %d shards" % (re.sub(r"^([0-9.]+)\s*", r"\1 ", args.size), args.shards)
    result = {"version": 1, "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
              "model": {"path": model, "description": model_desc, "files": files, "bytes": model_bytes,
                        "tensors": reference["tensors"], "checksum": reference["checksum"]},
              "rounds": args.rounds, "drop": args.drop, "strategies": {k: STRATEGIES[k] for k in keys},
              "skipped": skipped, "environment": env_info, "summary": rows, "runs": runs,
              "wall_seconds": time.time() - started}
    with open(os.path.join(out, "coldstart.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(render(result, out))
    say("results: %s (coldstart.json, coldstart.svg, table.md, logs, reports)" % out)
    return 1 if any(not r["ok"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
