"""The promise, checked after a scenario (contract.md, "The promise"):

  exit 0 or the server signalled  =>  every tensor in the table byte for byte the source as it was
                                      indexed (for a file changed mid-load: wholly the old or wholly
                                      the new version, never a mix)
  otherwise                       =>  a documented exit code, exactly one `tensorinit: error:`
                                      line, no server handed the weights, nothing left in the shm
                                      dir or the cache that a later start would trust
  always                          =>  planted secrets in no output, report, table or plan; a clean
                                      load afterwards, in the same shm dir and cache, is byte-exact
  same model name, two instances  =>  the second refuses with 69 naming the holder (the shared
                                      decision), or starts after the first one let go

Findings are ("violation", text) or ("note", text): notes (exit 70, junk left after SIGKILL) are
reported but do not fail a run. Scheduling changes outcomes; every outcome the promise allows passes.
"""
import json
import os
import re

from models import DTYPES, elems
import variants

DOCUMENTED = {64, 65, 66, 69, 70, 74, 77, 78, 126, 127}
SIGNO = {"TERM": 15, "KILL": 9, "HUP": 1}
STOP_SECONDS = 7  # a SIGTERM'd instance ends within grace (3s) and then some; generous on a busy machine


def norm(version):
    return {k: [v[0], list(v[1]), v[2]] for k, v in version.items()}


def matching_version(hashes, versions):
    """Index of the version `hashes` equals in full, else None."""
    for i, v in enumerate(versions):
        if hashes == norm(v):
            return i
    return None


def describe_mismatch(hashes, versions):
    v = norm(versions[0])
    missing, extra = sorted(set(v) - set(hashes)), sorted(set(hashes) - set(v))
    if missing or extra:
        return f"tensor names differ (missing {missing[:3]}, extra {extra[:3]})"
    per = []
    for name, got in hashes.items():
        which = [i for i, ver in enumerate(versions) if norm(ver).get(name) == got]
        per.append((name, which))
    bad = [n for n, w in per if not w]
    if bad:
        return f"{len(bad)} of {len(per)} tensors match no version of the source, e.g. '{bad[0]}'"
    return "a mix of versions: " + ", ".join(f"{n}: v{w}" for n, w in per[:4])


def arena_bytes(version):
    total = 0
    for dtype, shape, _ in version.values():
        total += -(-elems(shape) * DTYPES.get(dtype, 1) // 256) * 256
    return total


class Oracle:
    def __init__(self, run):
        self.run, self.findings = run, []

    def violation(self, inst, text):
        finding = ("violation", f"instance {inst.index if inst else '-'}: {text}")
        if finding not in self.findings:
            self.findings.append(finding)

    def note(self, inst, text):
        self.findings.append(("note", f"instance {inst.index if inst else '-'}: {text}"))

    def check(self):
        for inst in self.run.instances:
            self.check_instance(inst)
        self.check_leftovers()
        self.check_cache()
        return self.findings

    # --- per instance -------------------------------------------------------------------------
    def check_instance(self, inst):
        spec, rc = inst.spec, inst.proc.returncode
        if inst.hung:
            self.violation(inst, f"hung: still running after {self.run.hang_limit:.0f}s (killed)")
            return
        killed = rc < 0
        code = 128 - rc if killed else rc
        sent = inst.signal_sent[0] if inst.signal_sent else None
        events = inst.events
        verified = [e for e in events if e.get("event") == "verified"]
        errors = [e for e in events if e.get("event") == "error"]
        started = any(e.get("event") == "started" for e in events)
        for e in errors:
            self.violation(inst, f"the server was handed an unreadable table: {e['what']}")
        seen = set()
        for e in verified:
            which = matching_version(e["tensors"], inst.versions)
            if which is None:
                self.violation(inst, f"the server read wrong bytes: {describe_mismatch(e['tensors'], inst.versions)}")
            seen.add(which)
        if len(seen) > 1:
            self.violation(inst, f"the server saw the weights change under it (versions {sorted(seen, key=str)})")
        error_lines = [l for l in inst.err.splitlines() if l.startswith("tensorinit: error:")]
        # HUP stops tensorinit only while no server runs; a running server gets it forwarded and
        # decides (a reload, for many): the stand-in server records it and carries on.
        stop_expected = sent == "TERM" or (sent == "HUP" and not started)
        if stop_expected and not spec["hold"] and inst.exit_at - inst.signal_at > STOP_SECONDS:
            self.violation(inst, f"took {inst.exit_at - inst.signal_at:.1f}s to stop after SIG{sent} "
                                 f"(grace is 3s; stderr: {tail(inst.err, 200)})")
        handed = bool(verified or errors)
        if code == 0 and not killed:
            if spec["cmd"] in ("load", "none"):
                if not inst.peers_running:
                    self.check_snapshot(inst, inst.table_after_exit, "after exit 0")
            elif not handed:
                self.violation(inst, "exit 0 but the server never got the weights")
            if error_lines:
                self.violation(inst, f"exit 0 with an error line: {error_lines[0]}")
        elif not handed:
            self.check_failure(inst, code, killed, sent, error_lines, started)
        if spec["secret"] or inst.secrets:
            self.check_secrets(inst)
        self.check_expectation(inst, code, killed, handed)

    def check_failure(self, inst, code, killed, sent, error_lines, started):
        if killed:
            if sent is None or SIGNO[sent] != code - 128:
                self.violation(inst, f"killed by signal {code - 128} (sent: {sent}); stderr: {tail(inst.err)}")
            return
        allowed = DOCUMENTED | ({128 + SIGNO[sent]} if sent else set())
        if started and inst.spec["cmd"].startswith("signal"):
            allowed |= {143}  # the server's code once it got SIGTERM from tensorinit
        if code not in allowed:
            self.violation(inst, f"exit {code} is not a documented code (signal sent: {sent}); "
                                 f"stderr: {tail(inst.err)}")
        if code == 70:  # documented, but for a broken path the known list calls it a bug
            (self.violation if inst.spec.get("path_fault") else self.note)(
                inst, f"exit 70 (internal error): {error_lines[:1]}")
        if code < 128 and len(error_lines) != 1:
            self.violation(inst, f"exit {code} with {len(error_lines)} 'tensorinit: error:' lines: "
                                 f"{error_lines[:3] or tail(inst.err)}")
        if inst.spec["cmd"] == "exec" and started and code < 128:
            self.violation(inst, f"exit {code}: the server was started although tensorinit failed")

    def check_expectation(self, inst, code, killed, handed):
        """Outcomes that are certain for this scenario (a clean load succeeds; a model that cannot
        fit the shm dir is 74; a second instance of a held name is 69)."""
        sc, spec = self.run.sc, inst.spec
        ok = code == 0 and not killed
        need = arena_bytes(inst.versions[0]) + 16384
        size = variants.parse_size(sc["shm_size"])
        if (spec["target"] == "host" and need > size and self.run.ctx.root and not inst.signal_sent and not handed
                and self.run.config_ok(inst)):
            if code not in (74,) and not (killed or (inst.signal_sent and code >= 128)):
                self.violation(inst, f"arena of {need} bytes in a {size}-byte shm dir: exit {code}, wanted 74")
            return
        if not self.run.clean_expected(inst) or ok or handed:
            return
        if spec["cmd"] == "exec" and code == 0:
            return
        if code == 69 and self.run.same_name_peers(inst):
            if not re.search(r"model\.name", inst.err):
                self.violation(inst, "exit 69 for a held name without the fix ('give each instance its own model.name')")
            return
        self.violation(inst, f"a load that should succeed failed: exit {code}: {tail(inst.err)}")

    def check_snapshot(self, inst, snap, when, versions=None):
        if snap is None:
            self.violation(inst, f"{when}: no table in the shm dir")
            return
        text, hashes = snap
        if isinstance(hashes, str):
            self.violation(inst, f"{when}: the table is unreadable: {hashes}")
            return
        versions = versions or self.run.versions_for_name(inst)
        if matching_version(hashes, versions) is None:
            self.violation(inst, f"{when}: the table's bytes are wrong: {describe_mismatch(hashes, versions)}")

    def check_secrets(self, inst):
        texts = {"stdout": inst.out, "stderr": inst.err}
        for label, path in (("report", inst.report), ("server record", inst.record)):
            try:
                with open(path, errors="replace") as f:
                    texts[label] = f.read()
            except OSError:
                pass
        if inst.table_after_exit:
            texts["table"] = inst.table_after_exit[0]
        texts["plan"] = getattr(inst, "plan_output", "")
        for secret in inst.secrets:
            for label, text in texts.items():
                if secret and secret in text:
                    self.violation(inst, f"secret leaked in the {label}")
        for entry in getattr(self.run, "fault_log", []) if inst.spec["secret"] else []:
            headers = {k.lower(): v for k, v in entry.get("headers", {}).items()}
            if entry.get("port") == "alt" and ("authorization" in headers or
                                               any(s in json.dumps(entry) for s in inst.secrets)):
                self.violation(inst, f"credentials sent to another origin after a redirect: {entry.get('path')}")

    # --- the shm dir and the cache --------------------------------------------------------------
    def check_leftovers(self):
        run = self.run
        for shm, name, peers in run.groups():
            ours = [f for f in run.final_listing[shm] if f"tensorinit-{name}" in f and not f.endswith(".lock")]
            table = f"tensorinit-{name}.json"
            anyone_ok = any(i.proc.returncode == 0 or variants.server_verified(i) for i in peers)
            any_kill = any(i.signal_sent and i.signal_sent[0] == "KILL" or i.hung for i in peers)
            # A signal that reached the server's image (exec done) killed the server, not
            # tensorinit: what it owned stays as any dead server's would (exec mode, not PID 1).
            any_kill = any_kill or any(i.signal_sent and i.signal_comm not in (None, "tensorinit") for i in peers)
            if table in ours:
                self.check_snapshot(peers[0], run.final_tables.get((shm, name)), "left in the shm dir",
                                    [v for i in peers for v in i.versions])
                if not anyone_ok and not any_kill:
                    self.violation(peers[0], f"failed run(s) left a published table {table} (exits "
                                             f"{[i.proc.returncode for i in peers]})")
            junk = [f for f in ours if f != table and not f.endswith(".sock")]
            if junk and not anyone_ok:
                (self.note if any_kill else self.violation)(peers[0], f"left in the shm dir after failing: {junk}")

    def check_cache(self):
        for inst in self.run.instances:
            d = os.path.join(inst.cache_dir, self.run.model_name(inst)) if inst.cache_dir else ""
            if not d or not os.path.isdir(d):
                continue
            for f in os.listdir(d):
                if not f.endswith(".tensorinit.json"):
                    continue
                data_name = f[:-len(".tensorinit.json")]
                try:
                    with open(os.path.join(d, data_name), "rb") as fh:
                        got = variants.whole_sha(fh.read())
                except OSError:
                    self.violation(inst, f"cache: a record for {data_name} but no file")
                    continue
                if got not in inst.file_versions.get(data_name, set()):
                    self.violation(inst, f"cache: {data_name} has a commit record but its bytes are no version "
                                         f"of the source")

    def check_clean(self, inst, result):
        code, err, snap = result
        if code != 0 and not self.run.config_ok(inst):
            if code not in DOCUMENTED or len([l for l in err.splitlines() if l.startswith("tensorinit: error:")]) != 1:
                self.violation(inst, f"the clean load afterwards: exit {code}: {tail(err)}")
            return
        if code != 0:
            self.violation(inst, f"the clean load afterwards failed: exit {code}: {tail(err)}")
            return
        self.check_snapshot(inst, snap, "clean load afterwards", inst.versions[:1])


def tail(text, n=300):
    text = text.strip().replace("\n", " | ")
    return text[-n:] if text else "(empty)"


def dumps(findings):
    return json.dumps(findings, indent=1)
