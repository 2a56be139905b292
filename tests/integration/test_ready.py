"""handoff.ready against real processes: a server known ready by http, tcp and the socket; the
report's seconds.ready and timeline, the ready file (written at ready, gone at exit); a `ready`
from a process that is not the server ignored; a server never ready: exit 69, stopped with the
grace. Every wait is on a file or a process (supervision_lib.wait_for)."""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from supervision_lib import (TEST_TMP, alive, check, finish, free_port, fresh_tmp, log_lines, no_leftovers,  # noqa: E402
                             report, server_script, start, stderr_of, stop, synth, wait_for, write_manifest)

fresh_tmp()
model = synth()

# An HTTP server that answers 503 until it has its weights (it waits on the socket), then 200.
HTTP = """
import http.server, threading
weights = {}
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if weights else 503); self.end_headers()
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
LOG(event="listening")
weights["w"] = tc.wait_and_open()
LOG(event="weights")
signal.sigwait({signal.SIGTERM}) if False else time.sleep(3600)
"""


def ready_run(name, ready_yaml, script, args=()):
    m = write_manifest(name, model, ["mode: signal", "start: early", "ready: " + ready_yaml])
    proc = start(m, ["python3", script] + list(args))
    ready_file = os.path.join(TEST_TMP, "ready")
    got = wait_for(name + " ready file", lambda: os.path.exists(ready_file), proc)
    return m, proc, ready_file, got


def check_ready_report(name, proc, ready_file):
    r = report(name)
    events = [e["event"] for e in r.get("timeline", [])]
    check(name + ": report ok with seconds.ready", r["ok"] and r["seconds"].get("ready", 0) > 0, r["seconds"])
    check(name + ": timeline has manifest, plan, stage, server_spawned, weights_ready, server_ready",
          all(e in events for e in ("manifest", "plan", "stage", "server_spawned", "weights_ready", "server_ready")),
          events)
    at = {e["event"]: e["at"] for e in r["timeline"]}
    check(name + ": ready at or after the weights and the spawn, seconds.ready is its time",
          at["manifest"] <= at["plan"] <= at["stage"] <= at["weights_ready"] <= at["server_ready"]
          and at["server_spawned"] <= at["server_ready"]
          and abs(r["seconds"]["ready"] - at["server_ready"]) < 1e-6, at)
    check(name + ": one stderr line says where the seconds went", stderr_of(os.path.join(TEST_TMP, name + ".yaml"))
          .count("tensorinit: ready ") == 1, stderr_of(os.path.join(TEST_TMP, name + ".yaml")))
    code = stop(proc)
    check(name + ": SIGTERM ends it with the server's code", code == 143, code)
    check(name + ": the ready file is gone at exit", not os.path.exists(ready_file))
    check(name + ": nothing left in /dev/shm", no_leftovers(name))


# 1. http
port = free_port()
script = server_script("http", HTTP)
m, proc, ready_file, got = ready_run("ready-http", "{http: 'http://127.0.0.1:%d/health', timeout: 60s}" % port,
                                     script, [str(port)])
check("http: the ready file appears", got, stderr_of(m))
if got:
    check("http: ready only once the server answered 200 (it had its weights)",
          [x["event"] for x in log_lines("http")][-1] == "weights", log_lines("http"))
    check_ready_report("ready-http", proc, ready_file)
else:
    stop(proc)

# 2. tcp: the server listens only once it has its weights.
port = free_port()
script = server_script("tcp", """
w = tc.wait_and_open()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
LOG(event="listening")
time.sleep(3600)
""")
m, proc, ready_file, got = ready_run("ready-tcp", "{tcp: '127.0.0.1:%d', timeout: 60s}" % port, script, [str(port)])
check("tcp: the ready file appears after the server listened", got and log_lines("tcp"), stderr_of(m))
check_ready_report("ready-tcp", proc, ready_file) if got else stop(proc)

# 3. socket: the server says so; a `ready` from this test process (not the server) is ignored.
go = os.path.join(TEST_TMP, "go")
script = server_script("sock", """
w = tc.wait_and_open()
LOG(event="weights")
while not os.path.exists(%r): time.sleep(0.01)
tc.notify_ready()
LOG(event="said ready")
time.sleep(3600)
""" % go)
m = write_manifest("ready-sock", model, ["mode: signal", "start: early", "ready: {socket: true, timeout: 60s}"])
proc = start(m, ["python3", script])
ready_file = os.path.join(TEST_TMP, "ready")
sock = "/dev/shm/tensorinit-ready-sock.sock"
got = wait_for("the server's weights", lambda: log_lines("sock"), proc)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "examples", "clients", "python"))
import tensorinit_client as tc  # noqa: E402
check("socket: a stranger's ready is delivered", got and tc.notify_ready(sock))
wait_for("the warning", lambda: "not the server" in stderr_of(m), proc)
check("socket: ... and ignored with a warning", not os.path.exists(ready_file) and "not the server" in stderr_of(m),
      stderr_of(m))
open(go, "w").close()
got = wait_for("socket ready file", lambda: os.path.exists(ready_file), proc)
check("socket: the server's ready counts", got, stderr_of(m))
check_ready_report("ready-sock", proc, ready_file) if got else stop(proc)

# 4. Never ready: exit 69, the server stopped (SIGTERM, and SIGKILL after the grace for one that
# ignores it), one error line, nothing left.
port = free_port()
for name, body in (("never", "LOG(event='up')\ntime.sleep(3600)\n"),
                   ("stubborn", "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nLOG(event='up')\ntime.sleep(3600)\n")):
    script = server_script(name, body)
    m = write_manifest("ready-" + name, model, ["mode: signal", "grace: 300ms",
                                                "ready: {http: 'http://127.0.0.1:%d/', timeout: 1500ms}" % port])
    proc = start(m, ["python3", script])
    code = proc.wait(timeout=90)
    err = stderr_of(m)
    pid = log_lines(name)[0]["pid"] if log_lines(name) else 0
    check(name + ": not ready in time: exit 69", code == 69, (code, err))
    check(name + ": one error line naming handoff.ready.timeout",
          err.count("tensorinit: error:") == 1 and "handoff.ready.timeout" in err, err)
    check(name + ": the server is gone", pid and not alive(pid), pid)
    r = report("ready-" + name)
    check(name + ": report has no seconds.ready", "ready" not in r["seconds"], r["seconds"])
    check(name + ": nothing left in /dev/shm, no ready file",
          no_leftovers("ready-" + name) and not os.path.exists(os.path.join(TEST_TMP, "ready")))
finish()
