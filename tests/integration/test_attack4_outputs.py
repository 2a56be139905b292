"""A server that can write the directory of `report` (and of the ready file beside it) swaps that
directory for a symlink to another (/etc, for a root tensorinit) once it runs: tensorinit used to
write report.json and `ready` through the link and, when the server exited, unlink `ready` there.
Now the directory is opened once, before the server starts, and written and unlinked through that
descriptor (util/output_file.hpp). docs/notes/attacker4.md. Waits are on files and processes."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from supervision_lib import (TEST_TMP, check, finish, fresh_tmp, log_lines, no_leftovers,  # noqa: E402
                             server_script, start, stderr_of, synth)

fresh_tmp()
model = synth("4MiB")
run, victim = os.path.join(TEST_TMP, "run"), os.path.join(TEST_TMP, "victim")
os.makedirs(victim)
with open(os.path.join(victim, "ready"), "w") as f:  # stands for a file of the same name in /etc
    f.write("precious\n")

script = server_script("swap_dir", """
RUN, VICTIM = %r, %r
tc.wait_ready()
os.rename(RUN, RUN + ".old")
os.symlink(VICTIM, RUN)
LOG(event="swapped")
tc.notify_ready()
def written():
    if os.path.exists(os.path.join(RUN + ".old", "ready")):
        return "pinned directory"
    with open(os.path.join(VICTIM, "ready")) as f:
        return "victim" if f.read() != "precious\\n" else None
for _ in range(9000):  # the limit only ends a hung test
    where = written()
    if where:
        break
    time.sleep(0.01)
LOG(event="ready written", where=where)
""" % (run, victim))
m = os.path.join(TEST_TMP, "attack4-out.yaml")
with open(m, "w") as f:
    f.write("version: 1\nmodel: {name: attack4-out, sources: [{type: image, path: \"%s\"}]}\n" % model)
    f.write("report: %s/report.json\n" % run)
    f.write("handoff: {mode: signal, start: early, ready: {socket: true, timeout: 60s}}\n")
code = start(m, ["python3", script]).wait(timeout=90)
lines = log_lines("swap_dir")
check("the server swapped the directory and exited 0", code == 0 and len(lines) == 2, (code, lines, stderr_of(m)))
check("ready was written in the directory opened at start", lines[-1].get("where") == "pinned directory", lines)
kept = os.path.exists(os.path.join(victim, "ready")) and open(os.path.join(victim, "ready")).read()
check("the file named `ready` behind the link is untouched (not overwritten, not unlinked)", kept == "precious\n",
      kept)
check("no report behind the link", not os.path.exists(os.path.join(victim, "report.json")), os.listdir(victim))
report_path = os.path.join(run + ".old", "report.json")
ok = os.path.exists(report_path) and json.load(open(report_path))["ok"]
check("the report is in the directory opened at start, ok", ok, os.listdir(run + ".old"))
check("the ready file is gone from it at exit", not os.path.exists(os.path.join(run + ".old", "ready")))
check("nothing left in /dev/shm", no_leftovers("attack4-out"))
finish()
