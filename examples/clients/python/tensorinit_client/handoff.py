"""How a server learns that the weights are staged: the readiness socket of signal mode, the
table file of exec mode, or the signal (docs/init.md).

Socket protocol: connect to $TENSORINIT_SOCKET; tensorinit answers once staging is over with one
header line and closes:
    "ready <n>\\n" followed by n bytes of the tensor table (JSON)
    "error <code> <message>\\n"
Extra "key=value" tokens after the known header fields are reserved; they are ignored here.
A client may also write the line "ready\n": the server tells tensorinit it is ready to serve
(handoff.ready: {socket: true}); only the server and its descendants are believed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from typing import Any, Dict, Optional

Table = Dict[str, Any]

__all__ = ["TensorinitError", "wait_ready", "read_table", "ReadySignal", "Table", "notify_ready"]


class TensorinitError(RuntimeError):
    """Staging failed or tensorinit is stopping; `code` is tensorinit's exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__("tensorinit: %s (code %d)" % (message, code))
        self.code = code


def parse_answer(data: bytes) -> Table:
    """The table from one socket answer; TensorinitError for an error answer or a malformed one."""
    header, _, rest = data.partition(b"\n")
    fields = header.decode("utf-8", "replace").split(" ")
    try:
        if fields[0] == "ready" and len(fields) >= 2:
            size = int(fields[1])
            if len(rest) < size:
                raise TensorinitError(70, "short answer on the socket: %d of %d bytes" % (len(rest), size))
            table = json.loads(rest[:size])
            if not isinstance(table, dict):
                raise TensorinitError(70, "the table on the socket is not a JSON object")
            return table
        if fields[0] == "error" and len(fields) >= 2:
            code = int(fields[1])
            raise TensorinitError(code, " ".join(fields[2:]))
    except ValueError as e:  # int() of a non-number, JSON that does not parse
        raise TensorinitError(70, "malformed answer on the socket: %s" % e) from None
    raise TensorinitError(70, "unexpected answer on the socket: %r" % header[:80])


def wait_ready(socket_path: Optional[str] = None, timeout: Optional[float] = None) -> Table:
    """Blocks until tensorinit has staged the weights; returns the tensor table (a dict).

    Raises TensorinitError when staging failed, TimeoutError after `timeout` seconds."""
    path = socket_path or os.environ["TENSORINIT_SOCKET"]
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            break
        except (FileNotFoundError, ConnectionRefusedError):  # not listening yet
            sock.close()
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("no tensorinit socket at %s" % path) from None
            time.sleep(0.01)
    with sock:
        chunks = []
        try:
            while True:
                if deadline is not None:
                    sock.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            raise TimeoutError("weights not ready within %s s" % timeout) from None
    return parse_answer(b"".join(chunks))


def notify_ready(socket_path: Optional[str] = None) -> bool:
    """Tells tensorinit the server is ready to serve (handoff.ready: {socket: true}): the report's
    seconds.ready and the ready file come from this call. False when there is no socket to tell
    (exec mode, or not under tensorinit)."""
    path = socket_path or os.environ.get("TENSORINIT_SOCKET")
    if not path:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            return False
        sock.sendall(b"ready\n")
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(1 << 16):  # tensorinit's answer (the table): not needed here
            pass
    return True


def read_table(path: Optional[str] = None) -> Table:
    """The tensor table written by tensorinit ($TENSORINIT_TABLE), e.g. in exec mode."""
    with open(path or os.environ["TENSORINIT_TABLE"], "rb") as f:
        table = json.load(f)
    if not isinstance(table, dict):
        raise TensorinitError(65, "%s is not a tensor table" % (path or os.environ["TENSORINIT_TABLE"]))
    return table


class ReadySignal:
    """For servers that prefer the signal: create it first thing (before slow imports), so the
    handler is in place when tensorinit sends `handoff.signal` (tensorinit waits until the
    server catches the signal before sending it)."""

    def __init__(self, signum: int = signal.SIGUSR1) -> None:
        self._event = threading.Event()
        signal.signal(signum, lambda *_: self._event.set())

    def wait(self, timeout: Optional[float] = None) -> bool:
        return self._event.wait(timeout)
