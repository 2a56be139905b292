"""The readiness socket protocol (docs/init.md), against a stand-in listener: standard library."""

from __future__ import annotations

import json
import os
import socket
import threading

import pytest

import tensorinit_client as tc


def serve_once(path: str, answer: bytes) -> threading.Thread:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def run() -> None:
        conn, _ = listener.accept()
        conn.sendall(answer)
        conn.close()
        listener.close()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_ready_answer_gives_the_table_and_ignores_reserved_tokens(tmp_path):
    table = {"version": 1, "model": "m", "tensors": []}
    body = json.dumps(table).encode()
    path = str(tmp_path / "ready.sock")
    serve_once(path, b"ready %d fds=0 future=1\n" % len(body) + body)
    assert tc.wait_ready(path, timeout=30) == table


def test_error_answer_raises_with_the_exit_code(tmp_path):
    path = str(tmp_path / "ready.sock")
    serve_once(path, b"error 65 model.safetensors: header is not JSON\n")
    with pytest.raises(tc.TensorinitError) as info:
        tc.wait_ready(path, timeout=30)
    assert info.value.code == 65 and "header is not JSON" in str(info.value)


@pytest.mark.parametrize("answer", [b"ready 100\n{}", b"ready x\n", b"error abc oops\n", b"hello\n", b"",
                                    b"ready 2\n[]"])
def test_malformed_answers_are_errors_not_crashes(tmp_path, answer):
    path = str(tmp_path / "ready.sock")
    serve_once(path, answer)
    with pytest.raises(tc.TensorinitError) as info:
        tc.wait_ready(path, timeout=30)
    assert info.value.code == 70


def test_waits_for_the_socket_to_appear(tmp_path):
    path = str(tmp_path / "late.sock")
    body = b"{}"
    started = threading.Event()

    def later() -> None:
        started.wait()
        serve_once(path, b"ready 2\n" + body)
    threading.Thread(target=later, daemon=True).start()
    started.set()
    assert tc.wait_ready(path, timeout=60) == {}


def test_timeout_when_nobody_listens(tmp_path):
    with pytest.raises(TimeoutError):
        tc.wait_ready(str(tmp_path / "absent.sock"), timeout=0.05)


def test_timeout_when_staging_never_ends(tmp_path):
    path = str(tmp_path / "slow.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)  # accepted by the kernel, never answered
    try:
        with pytest.raises(TimeoutError):
            tc.wait_ready(path, timeout=0.2)
    finally:
        listener.close()


def test_wait_and_open_reads_the_table_in_exec_mode(tmp_path, monkeypatch):
    table_path = tmp_path / "table.json"
    table_path.write_text(json.dumps({"version": 1, "model": "m", "tensors": []}))
    monkeypatch.delenv("TENSORINIT_SOCKET", raising=False)
    monkeypatch.setenv("TENSORINIT_TABLE", str(table_path))
    assert tc.wait_and_open().names() == []


def test_ready_signal_is_caught(monkeypatch):
    import signal
    ready = tc.ReadySignal(signal.SIGUSR2)
    os.kill(os.getpid(), signal.SIGUSR2)
    assert ready.wait(30)
