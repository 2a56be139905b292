#!/usr/bin/env python3
"""Time to ready of a server that torch.compiles a small model on the CPU
(compile_cache_server.py), started by `tensorinit run` with a start-up cache for
TORCHINDUCTOR_CACHE_DIR: first start (cold: empty cache, nothing to restore) against a start whose
cache tensorinit restores from a volume and from s3 (moto_server on loopback). Interleaved rounds
in rotating order; medians with min and max. Time to ready: from tensorinit's launch to the
server's ready line (its first answer from the compiled model).

  TENSORINIT=build/tensorinit python3 tests/bench/compile_cache.py [--rounds 3]

Needs torch (COMPILE_CACHE_PYTHON, else python3, else the vLLM bench venv) and moto_server.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TENSORINIT = os.path.abspath(os.environ.get("TENSORINIT", os.path.join(ROOT, "build", "tensorinit")))


def torch_python():
    for candidate in [os.environ.get("COMPILE_CACHE_PYTHON"), "python3", "/var/tmp/tensorinit-vllm/venv/bin/python"]:
        if candidate and shutil.which(candidate) and subprocess.run(
                [candidate, "-c", "import torch"], capture_output=True).returncode == 0:
            return candidate
    raise SystemExit("no python with torch (set COMPILE_CACHE_PYTHON)")


def manifest(work, name, cache_dir, sources, save, python, port):
    ready, stop = os.path.join(work, name + ".ready"), os.path.join(work, name + ".stop")
    path = os.path.join(work, name + ".yaml")
    srcs = "\n".join("      - " + s for s in sources)
    with open(path, "w") as f:
        f.write(f"""version: 1
model:
  name: {name}
  sources: [{{type: image, path: "{os.path.join(work, 'model')}"}}]
handoff:
  mode: signal
  start: after-load
  command: [env, "TORCHINDUCTOR_CACHE_DIR={cache_dir}/inductor", "TRITON_CACHE_DIR={cache_dir}/triton",
            {python}, {os.path.join(HERE, 'compile_cache_server.py')}, {ready}, "{port}", {stop}]
caches:
  - name: compile
    path: {cache_dir}
    save: {save}
    max_size: 2GiB
    sources:
{srcs}
report: {os.path.join(work, name + '.report.json')}
""")
    return path, ready, stop


def start(work, name, cache_dir, sources, save, python, env, port):
    """Runs one start; returns (seconds to ready, report's cache entry)."""
    shutil.rmtree(cache_dir, ignore_errors=True)
    m, ready, stop = manifest(work, name, cache_dir, sources, save, python, port)
    for f in (ready, stop):
        if os.path.exists(f):
            os.unlink(f)
    t0 = time.time()
    p = subprocess.Popen([TENSORINIT, "run", "-f", m], env=env, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(work, name + ".log"), "w"))
    while not os.path.exists(ready):
        if p.poll() is not None:
            raise SystemExit(f"{name}: tensorinit exited {p.returncode}; see {work}/{name}.log")
        time.sleep(0.01)
    with open(ready) as f:
        at = float(f.read().split()[1])
    open(stop, "w").close()
    if p.wait(timeout=600) != 0:
        raise SystemExit(f"{name}: exit {p.returncode}; see {work}/{name}.log")
    with open(os.path.join(work, name + ".report.json")) as f:
        return at - t0, json.load(f)["caches"][0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    python = torch_python()
    work = tempfile.mkdtemp(prefix="tensorinit-compile-cache-")
    os.environ.setdefault("TEST_TMP", work)
    os.environ.setdefault("TESTS_DIR", os.path.dirname(HERE))
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
    from moto_s3 import moto_env, moto_user, start_moto  # noqa: E402
    import boto3

    subprocess.run([TENSORINIT, "synth", "--size", "1MiB", os.path.join(work, "model")], check=True, capture_output=True)
    moto, endpoint = start_moto(work)
    try:
        creds = moto_user(endpoint, "bench")  # moto enforces SigV4 after its first actions
        env = moto_env(creds)
        s3_client = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint, **creds)
        s3_client.create_bucket(Bucket="caches")
        volume = [f"{{type: volume, path: {os.path.join(work, 'volume')}}}"]
        s3 = [f'{{type: s3, url: "s3://caches/bench/", endpoint: "{endpoint}"}}']
        cache_dir = os.path.join(work, "cache")
        # Seed: one cold start saving to the volume; the same archive uploaded to s3.
        _, seeded = start(work, "seed-volume", cache_dir, volume, "on-exit", python, env, 18181)
        s3_client.upload_file(seeded["save"]["archive"], "caches", "bench/compile.tar.zst")
        print(f"seeded: {seeded['save']['message']}", flush=True)
        cases = {"cold (first start)": [f"{{type: volume, path: {os.path.join(work, 'empty-volume')}}}"],
                 "restored from volume": volume, "restored from s3": s3}
        times = {c: [] for c in cases}
        restore_s = {c: [] for c in cases}
        names = list(cases)
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for case in order:
                seconds, entry = start(work, f"r{r}-{names.index(case)}", cache_dir, cases[case], "never", python, env,
                                       18181)
                if case != names[0] and entry["restore"]["state"] != "restored":
                    raise SystemExit(f"{case}: not restored: {entry['restore']['message']}")
                times[case].append(seconds)
                restore_s[case].append(entry["restore"]["seconds"])
                print(f"round {r}: {case}: ready in {seconds:.2f}s ({entry['restore']['state']}, "
                      f"restore {entry['restore']['seconds']:.2f}s)", flush=True)
        print(f"\n| start | time to ready, median (min-max) | cache restore, median | runs |\n|---|---|---|---|")
        for case in names:
            t = times[case]
            print(f"| {case} | {statistics.median(t):.2f} s ({min(t):.2f}-{max(t):.2f}) | "
                  f"{statistics.median(restore_s[case]):.2f} s | {len(t)} |")
    finally:
        moto.kill()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
