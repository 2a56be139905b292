"""Against the real tensorinit: the readiness socket in signal mode (server started early), and
the table of exec mode with stage.target: pagecache, each compared with safetensors' own loading."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

CHECK = textwrap.dedent("""
    import os, sys
    import tensorinit_client as tc
    import torch
    from safetensors import safe_open
    weights = tc.wait_and_open(timeout=120)
    names = weights.names()
    target = "pagecache" if "arenas" not in weights.table else weights.table["arenas"][0]["device"]
    differ = 0
    for path in sorted(os.listdir(os.environ["TENSORINIT_MODEL_DIR"])):
        if not path.endswith(".safetensors"):
            continue
        with safe_open(os.path.join(os.environ["TENSORINIT_MODEL_DIR"], path), framework="pt") as f:
            for name in f.keys():
                names.remove(name)
                differ += not torch.equal(weights.torch(name), f.get_tensor(name))
    print("checked target=%s socket=%s left=%d differ=%d" % (target, bool(os.environ.get("TENSORINIT_SOCKET")), len(names), differ))
    sys.exit(1 if differ or names else 0)
""")


@pytest.fixture
def model_dir(tmp_path, tensorinit_binary):
    out = tmp_path / "model"
    subprocess.run([tensorinit_binary, "synth", "--size", "3MiB", "--shards", "2", "--dtype", "bf16", str(out)],
                   check=True, capture_output=True)
    return out


@pytest.fixture(autouse=True)
def no_leftovers():
    """Exec mode outside a container: tensorinit execs the command, so nothing is left to remove
    the arena and table afterwards; this test removes them."""
    yield
    for name in os.listdir("/dev/shm"):
        if name.startswith(("tensorinit-pytest-client-%d" % os.getpid(), ".tensorinit-pytest-client-%d" % os.getpid())):
            os.unlink(os.path.join("/dev/shm", name))


def run(tensorinit_binary, tmp_path, model_dir, stage_and_handoff):
    manifest = tmp_path / "m.yaml"
    manifest.write_text("version: 1\nmodel:\n  name: pytest-client-%d\n  sources:\n    - {type: image, path: \"%s\"}\n%s"
                        % (os.getpid(), model_dir, stage_and_handoff))
    script = tmp_path / "check.py"
    script.write_text(CHECK)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return subprocess.run([tensorinit_binary, "run", "-f", str(manifest), "--", sys.executable, str(script)],
                          capture_output=True, text=True, timeout=300, env=env)


def test_signal_mode_early_start_through_the_socket(tensorinit_binary, tmp_path, model_dir):
    r = run(tensorinit_binary, tmp_path, model_dir,
            "stage: {target: host}\nhandoff: {mode: signal, start: early}\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "checked target=host socket=True left=0 differ=0" in r.stdout


def test_exec_mode_pagecache_table(tensorinit_binary, tmp_path, model_dir):
    r = run(tensorinit_binary, tmp_path, model_dir, "stage: {target: pagecache}\nhandoff: {mode: exec}\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "checked target=pagecache socket=False left=0 differ=0" in r.stdout
