"""What the Python tests share: checks printed one a line and counted for the exit status, and a
free loopback port. Reads no environment, so the harnesses outside integration/ (chaos) use it
too: put tests/tools on sys.path and import it."""
import socket
import sys

failures = 0  # read it as testkit.failures: a name imported from here would not see it change


def check(name, ok, detail=""):
    global failures
    print(("ok - " if ok else "not ok - ") + name + ("" if ok else ": " + str(detail)), flush=True)
    failures += 0 if ok else 1


def finish():
    """Prints the count of failed checks and exits 1 when there was any."""
    print("%d failed" % failures, flush=True)
    sys.exit(1 if failures else 0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
