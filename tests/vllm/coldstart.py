"""Cold start of the real vLLM OpenAI server (CPU): time from process start to the first
completion, page cache dropped before each start, three ways side by side, interleaved:

  vllm         vLLM alone, reading the model directory itself (--load-format safetensors)
  exec-pc      tensorinit run, exec mode, target pagecache: reads the files into the page cache
               with parallel readers, then starts vLLM (which reads them from memory)
  signal-early tensorinit run, signal mode, start early, target host: vLLM starts at once and
               its imports overlap the load; --load-format tensorinit takes the arena

    python coldstart.py --model DIR --tensorinit BIN --work DIR [--runs 3]

Prints one line per run and a markdown table of medians. Needs root (drop_caches).
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def manifest(path, model, mode, target):
    # vLLM's server does not handle SIGUSR1 (the default handoff.signal; its default action kills):
    # SIGWINCH is harmless, and the plugin learns readiness from the socket.
    extra = "  start: early\n  signal: SIGWINCH\n" if mode == "signal" else ""
    with open(path, "w") as f:
        f.write("version: 1\nmodel:\n  name: vllm-coldstart\n  format: safetensors\n  sources:\n"
                "    - {type: volume, path: %s}\nstage:\n  target: %s\n%shandoff:\n  mode: %s\n%s  grace: 20s\n"
                % (model, target, "  direct_io: off\n" if target == "pagecache" else "", mode, extra))


def first_completion(port, proc, timeout=1800):
    body = json.dumps({"model": "tiny", "prompt": "the quick brown fox", "max_tokens": 1, "temperature": 0}).encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %d" % proc.returncode)
        try:
            req = urllib.request.Request("http://127.0.0.1:%d/v1/completions" % port, body,
                                         {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=600) as r:
                json.load(r)
                return time.monotonic()
        except (OSError, ValueError):
            time.sleep(0.2)
    raise TimeoutError("no completion within %d s" % timeout)


def one_run(kind, args, python):
    port = free_port()
    server = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", args.model, "--served-model-name", "tiny",
              "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--max-model-len", "128",
              "--enforce-eager", "--seed", "0"]
    if kind == "vllm":
        cmd = server + ["--load-format", "safetensors"]
    else:
        m = os.path.join(args.work, kind + ".yaml")
        manifest(m, args.model, "exec" if kind == "exec-pc" else "signal", "pagecache" if kind == "exec-pc" else "host")
        cmd = [args.tensorinit, "run", "-f", m, "--"] + server + (["--load-format", "tensorinit"] if kind == "signal-early" else [])
    drop_caches()
    log = open(os.path.join(args.work, "coldstart-%s.log" % kind), "w")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=False)
    try:
        t1 = first_completion(port, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return t1 - t0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--tensorinit", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    kinds = ["vllm", "exec-pc", "signal-early"]
    times = {k: [] for k in kinds}
    for i in range(args.runs):
        order = kinds[i % 3:] + kinds[:i % 3]  # rotate: no configuration always first after a drop
        for kind in order:
            t = one_run(kind, args, sys.executable)
            times[kind].append(t)
            print("run %d %-12s %.1f s" % (i + 1, kind, t), flush=True)
    size = sum(os.path.getsize(os.path.join(args.model, f)) for f in os.listdir(args.model) if f.endswith(".safetensors"))
    print("\n| way (model %.0f MB f32, page cache dropped) | median s | runs s |" % (size / 1e6))
    print("|---|---|---|")
    for k in kinds:
        print("| %s | %.1f | %s |" % (k, statistics.median(times[k]), ", ".join("%.1f" % t for t in times[k])))


if __name__ == "__main__":
    main()
