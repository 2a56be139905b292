"""Set-up for the cold-start benchmark: the server's Python, the model, its packed copy, nginx."""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
PEERS_VENV = "/var/tmp/tensorinit-bench/venv"


def say(msg):
    print("[coldstart %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def die(msg):
    print("coldstart.py: error: %s" % msg, file=sys.stderr)
    sys.exit(1)


def run_quiet(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def last_line(text):
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


# --------------------------------------------------------------------------------------------
# Set-up: the Python environment, the model, its packed copy, nginx.

def python_ok(py):
    return os.access(py, os.X_OK) and run_quiet([py, "-c", "import torch, numpy, safetensors.torch"]).returncode == 0


def find_python(requested, bench_dir):
    """A Python with torch, numpy and safetensors: --python, else the peers' venv of bench.sh, else
    a venv made here the way bench.sh makes it (Debian's python3-torch + safetensors from PyPI)."""
    if requested:
        if not python_ok(requested):
            die("%s cannot import torch, numpy and safetensors.torch" % requested)
        return requested
    for py in (os.path.join(PEERS_VENV, "bin", "python"), os.path.join(bench_dir, "venv", "bin", "python")):
        if python_ok(py):
            return py
    sys_py = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else shutil.which("python3")
    if run_quiet([sys_py, "-c", "import torch"]).returncode != 0 and os.geteuid() == 0:
        say("installing python3-torch (Debian, CPU)")
        run_quiet(["apt-get", "install", "-y", "-q", "python3-torch", "python3-venv"])
    venv = os.path.join(bench_dir, "venv")
    py = os.path.join(venv, "bin", "python")
    if not os.access(py, os.X_OK):
        r = run_quiet([sys_py, "-m", "venv", "--system-site-packages", venv])
        if r.returncode != 0:
            die("cannot make a venv at %s: %s" % (venv, last_line(r.stdout)))
    # Debian 12's torch is 1.13; safetensors' metadata accepts it, --no-deps keeps pip off torch.
    run_quiet([py, "-m", "pip", "install", "-q", "--no-deps", "safetensors"])
    if not python_ok(py):
        die("%s cannot import torch, numpy and safetensors.torch (apt-get install python3-torch; "
            "%s -m pip install --no-deps safetensors)" % (py, py))
    return py


def model_files(directory):
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            return sorted(set(json.load(f)["weight_map"].values()))
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(directory, "*.safetensors")))


def ensure_model(args, ti):
    if args.model:
        model = os.path.abspath(args.model)
        if not model_files(model):
            die("%s: no *.safetensors files" % model)
        return model
    model = os.path.join(args.dir, "model-%s-x%d" % (args.size, args.shards))
    if not os.path.exists(os.path.join(model, ".complete")):
        say("writing the model: %s in %d shard(s) into %s" % (args.size, args.shards, model))
        shutil.rmtree(model, ignore_errors=True)
        cmd = [ti, "synth", "--size", args.size]
        if args.shards > 1:
            cmd += ["--shards", str(args.shards)]
        r = run_quiet(cmd + [model])
        if r.returncode != 0:
            die("tensorinit synth failed: %s" % last_line(r.stdout))
        os.sync()
        open(os.path.join(model, ".complete"), "w").close()
    return model


def ensure_packed(model, ti, bench_dir):
    """A packed copy of the model (one NAME.safetensors.zst per shard, the index kept), made once.
    Returns (dir, None) or (None, reason)."""
    r = run_quiet([ti, "pack", "--help"])
    if r.returncode != 0:
        return None, "`tensorinit pack --help` fails in this build: %s" % last_line(r.stdout)
    packed = os.path.join(bench_dir, "packed" + re.sub(r"[^A-Za-z0-9.]+", "-", model.rstrip("/")))
    # The marker records what was packed (names, sizes, mtimes): a changed model is packed again.
    stamp = json.dumps([[n, os.path.getsize(os.path.join(model, n)), os.path.getmtime(os.path.join(model, n))]
                        for n in model_files(model)])
    marker = os.path.join(packed, ".complete")
    if os.path.exists(marker) and open(marker).read() == stamp:
        return packed, None
    shutil.rmtree(packed, ignore_errors=True)
    os.makedirs(packed)
    for name in model_files(model):
        say("packing %s" % name)
        r = run_quiet([ti, "pack", "--split-bytes", os.path.join(model, name), os.path.join(packed, name + ".zst")])
        if r.returncode != 0:
            return None, "tensorinit pack failed: %s" % last_line(r.stdout)
    index = os.path.join(model, "model.safetensors.index.json")
    if os.path.exists(index):
        shutil.copy(index, packed)
    os.sync()
    with open(marker, "w") as f:
        f.write(stamp)
    return packed, None


def start_nginx(model, out):
    """nginx (tests/tools/nginx.sh) serving the model's parent directory; returns (url, dir, reason)."""
    if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
        return None, None, "nginx is not installed (apt-get install nginx-light)"
    ngdir = os.path.join(out, "nginx")
    r = subprocess.run(["bash", os.path.join(ROOT, "tests", "tools", "nginx.sh"), "start", os.path.dirname(model), ngdir],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        return None, None, "nginx did not start: %s" % last_line(r.stderr)
    return "http://127.0.0.1:%s/%s/" % (r.stdout.strip(), os.path.basename(model)), ngdir, None


def stop_nginx(ngdir):
    if ngdir:
        subprocess.run(["bash", os.path.join(ROOT, "tests", "tools", "nginx.sh"), "stop", ngdir])
