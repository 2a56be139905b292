"""A signal-mode test server whose handler comes late: it waits for the readiness socket's answer
(the weights are staged, the ready signal is due), sleeps DELAY seconds (tensorinit's check sees
no handler for that long; no outcome hangs on it), then installs a handler for SIGNAL and waits
for it. Exit 0: the signal came; 3: not within 60 s (the bound of a failure, not a timing);
4: the socket did not answer `ready`.

    late_handler.py SIGNAL [DELAY]
"""
import os
import signal
import socket
import sys
import threading
import time

sig = getattr(signal, sys.argv[1])
delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["TENSORINIT_SOCKET"])
answer = b""
while chunk := s.recv(65536):
    answer += chunk
if not answer.startswith(b"ready "):
    sys.exit(4)
time.sleep(delay)
got = threading.Event()
signal.signal(sig, lambda *_: got.set())
sys.exit(0 if got.wait(60) else 3)
