"""Helpers for the readiness and restart tests (test_ready.py, test_restart.py): manifests for a
synthetic model, tensorinit run in the background, waiting on files (events, never sleeps)."""

import atexit
import json
import os
import signal
import subprocess
import sys
import time

TENSORINIT = os.environ["TENSORINIT"]
TEST_TMP = os.environ["TEST_TMP"]
TESTS_DIR = os.environ["TESTS_DIR"]
ROOT = os.path.dirname(os.path.abspath(TESTS_DIR))
CLIENT = os.path.join(ROOT, "examples", "clients", "python")
sys.path.insert(0, os.path.join(TESTS_DIR, "tools"))
from testkit import check, finish, free_port  # noqa: E402, F401  (the tests take them from here)
_started = []


@atexit.register
def _kill_started():  # a test that raised leaves no tensorinit holding its model name
    for proc in _started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def fresh_tmp():
    subprocess.run(["rm", "-rf", TEST_TMP], check=True)
    os.makedirs(TEST_TMP)


def synth(size="4MiB", binary=None):
    model = os.path.join(TEST_TMP, "model")
    if not os.path.exists(model):
        subprocess.run([binary or TENSORINIT, "synth", "--size", size, "--seed", "5", model], check=True,
                       stderr=subprocess.DEVNULL)
    return model


def write_manifest(name, model, handoff, stage="{target: host}"):
    path = os.path.join(TEST_TMP, name + ".yaml")
    with open(path, "w") as f:
        f.write("version: 1\nmodel: {name: %s, sources: [{type: image, path: \"%s\"}]}\n" % (name, model))
        f.write("stage: %s\nreport: %s/%s.report.json\nhandoff:\n" % (stage, TEST_TMP, name))
        for line in handoff:
            f.write("  " + line + "\n")
    return path


def server_script(name, body, client=True):
    """A Python server: `body` runs with tc (the client, unless client=False: a faster start),
    LOG (append a JSON line) and TMP."""
    path = os.path.join(TEST_TMP, "srv_" + name + ".py")  # not a module name (http.py)
    with open(path, "w") as f:
        f.write("import json, os, signal, socket, sys, time\nsys.path.insert(0, %r)\n" % CLIENT)
        f.write(("import tensorinit_client as tc\n" if client else "") + "TMP = %r\n" % TEST_TMP)
        f.write("def LOG(**kw):\n    kw['pid'] = os.getpid()\n"
                "    with open(os.path.join(TMP, %r + '.log'), 'a') as f: f.write(json.dumps(kw) + '\\n')\n" % name)
        f.write(body)
    return path


def log_lines(name):
    path = os.path.join(TEST_TMP, name + ".log")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def start(manifest, command, binary=None, env=None):
    err = open(os.path.join(TEST_TMP, os.path.basename(manifest) + ".stderr"), "w")
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.Popen([binary or TENSORINIT, "run", "-f", manifest, "--"] + command, stderr=err,
                            stdout=subprocess.DEVNULL, env=full_env)
    _started.append(proc)
    return proc


def stderr_of(manifest):
    with open(os.path.join(TEST_TMP, os.path.basename(manifest) + ".stderr")) as f:
        return f.read()


def wait_for(what, predicate, proc=None, limit=90):
    """Waits for `predicate` (a file appearing, a log line); the limit only ends a hung test."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None and not predicate():
            return False
        time.sleep(0.01)
    print("  gave up waiting for " + what, flush=True)
    return False


def report(name):
    with open(os.path.join(TEST_TMP, name + ".report.json")) as f:
        return json.load(f)


def check_restart_refused(label, name, model, script, word, why_65="", command=None):
    """Runs `script` (server_script(label, ...): it spoils the staged arena, then exits 1) under
    restart: on-failure: the restart is refused with exit 65 and one error line holding `word`,
    the server started once, the report says why, nothing is left in /dev/shm. `command` runs the
    script (default: python3 SCRIPT)."""
    m = write_manifest(name, model, ["mode: signal", "restart: on-failure", "restart_delay: 10ms"])
    code = start(m, command or ["python3", script]).wait(timeout=90)
    err = stderr_of(m)
    check(label + ": restart refused with exit 65" + why_65, code == 65, (code, err))
    check(label + ": one error line naming the arena (%r)" % word,
          err.count("tensorinit: error:") == 1 and word in err, err)
    check(label + ": one start only", len(log_lines(label)) == 1, log_lines(label))
    report_path = os.path.join(TEST_TMP, name + ".report.json")
    check(label + ": the report says why", os.path.exists(report_path) and not report(name)["ok"],
          report(name) if os.path.exists(report_path) else "no report")
    check(label + ": nothing left in /dev/shm", no_leftovers(name), [n for n in os.listdir("/dev/shm") if name in n])


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout=90)


def no_leftovers(name):
    return not [n for n in os.listdir("/dev/shm") if ("tensorinit-" + name) in n]


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
