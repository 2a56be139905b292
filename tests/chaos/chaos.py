#!/usr/bin/env python3
"""The chaos harness: many random, seeded scenarios against the real tensorinit binary, the promise
checked after each (oracle.py). Every scenario prints its seed; a failure replays with one command.

  chaos.py [--seed S] [--count N] [--time-budget SECONDS] [--only CLASS,...] [--replay SEED ...]
           [--tensorinit PATH] [--work DIR] [--keep] [--summary FILE] [-v]

Scenario i of a run has seed S*100000+i. --replay runs exactly the given scenario seeds (with the
same --only as the run that printed them). Classes: scenario.py. Needs root for the private tmpfs
at /dev/shm and pid namespaces (CI runs as root); otherwise those parts are skipped and the real
/dev/shm is used with names of this run's own. Exit status: 0 when no violation was found, 1
otherwise, 2 on a harness error.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import oracle  # noqa: E402
import runner  # noqa: E402
import scenario  # noqa: E402
from models import ModelStore  # noqa: E402
from services import Services  # noqa: E402

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Context:
    def __init__(self, args):
        self.tensorinit = os.path.abspath(args.tensorinit)
        self.tests_dir = TESTS_DIR
        self.work = os.path.abspath(args.work)
        os.makedirs(self.work, exist_ok=True)
        self.root = os.geteuid() == 0
        self.models = ModelStore(self.work, self.tensorinit, os.path.join(TESTS_DIR, "fixtures"))
        self.services = Services(self.work, TESTS_DIR)
        self.keep = args.keep
        self.hang = runner.HANG_SECONDS
        self.verbose = args.verbose


def adapt(ctx, sc):
    """Drops what this machine cannot run; returns a reason to skip the scenario, or None."""
    for inst in sc["instances"]:
        if not ctx.root:
            if sc["cls"] == "shm":
                return "needs root (a tmpfs at /dev/shm)"
            inst["pid1"] = False
        if inst["source"] == "s3" and not ctx.services.available["moto"]:
            return "needs moto_server and boto3"
        if inst["source"] == "http" and not ctx.services.available["nginx"]:
            return "needs nginx"
    return None


def run_scenario(ctx, sc):
    """(findings, seconds)."""
    t0 = time.monotonic()
    run = runner.Run(ctx, sc)
    sc["_run_instances"] = run.instances
    findings = []
    try:
        run.run()
        if any(i.spec["source"] == "fault" for i in run.instances):
            run.fault_log = json.loads(ctx.services.fault_command("log"))
        for inst in run.instances:
            if inst.spec["secret"]:
                r = subprocess.run([ctx.tensorinit, "plan", "-f", inst.manifest, "--json"], capture_output=True,
                                   text=True, errors="replace", env=run.environment(inst),
                                   timeout=runner.HANG_SECONDS)
                inst.plan_output = r.stdout + r.stderr
        check = oracle.Oracle(run)
        findings = check.check()
        done = set()
        for inst in run.instances:
            name = run.model_name(inst)
            if name in done:
                continue
            done.add(name)
            st = os.statvfs(run.shm_dir(inst))
            if ctx.root and st.f_bavail * st.f_frsize < oracle.arena_bytes(inst.versions[0]) + 65536:
                continue  # no room for a second copy: the clean load would be a 74 by design
            check.check_clean(inst, run.clean_load(inst))
        findings = check.findings
    finally:
        bad = any(kind == "violation" for kind, _ in findings)
        run.cleanup(keep=bad or ctx.keep)
    return findings, time.monotonic() - t0


def summarize_spec(sc):
    parts = []
    for inst in sc["instances"]:
        bits = [inst["name"], "/".join(str(x) for x in inst["model"][:3]), inst["source"], inst["cmd"], inst["target"],
                f"chunk={inst['chunk']}", f"readers={inst['readers']}"]
        if inst["pid1"]:
            bits.append("pid1")
        for key in ("signal", "mutate", "secret", "path_fault", "bad_command"):
            if inst.get(key):
                bits.append(f"{key}={inst[key]}")
        if inst["faults"]:
            bits.append(f"faults={inst['faults']}")
        parts.append(" ".join(bits))
    extra = f" shm={sc['shm_size']}" + (f" fill={sc['fill']}" if sc["fill"] else "")
    return f"[{sc['cls']}{extra}] " + " || ".join(parts)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--count", type=int, default=50)
    p.add_argument("--time-budget", type=float, default=0, help="stop starting scenarios after this many seconds")
    p.add_argument("--only", default="", help="comma-separated classes: " + ",".join(scenario.CLASSES + scenario.LATE_CLASSES))
    p.add_argument("--replay", type=int, nargs="+", metavar="SEED")
    p.add_argument("--tensorinit", default=os.environ.get("TENSORINIT", "build/tensorinit"))
    p.add_argument("--work", default=os.environ.get("CHAOS_WORK", f"/tmp/tensorinit-chaos-{os.getpid()}"))
    p.add_argument("--keep", action="store_true", help="keep every scenario's directory")
    p.add_argument("--summary", help="write the findings as JSON here")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    only = [c for c in args.only.split(",") if c]
    unknown = set(only) - set(scenario.CLASSES) - set(scenario.LATE_CLASSES)
    if unknown:
        p.error(f"unknown classes {sorted(unknown)}")
    ctx = Context(args)
    # SIGTERM (a CI timeout) unwinds like Ctrl-C, so servers stop and mounts go.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    seeds = args.replay or [args.seed * 100000 + i for i in range(args.count)]
    only_flag = f" --only {','.join(only)}" if only else ""
    print(f"chaos: {len(seeds)} scenario(s), tensorinit {ctx.tensorinit}, work {ctx.work}, "
          f"{'root' if ctx.root else 'not root: no tmpfs or pid namespaces'}", flush=True)
    start = time.monotonic()
    ran, skipped, violations, notes, per_class, harness_errors = 0, 0, [], [], {}, []
    try:
        for seed in seeds:
            if args.time_budget and time.monotonic() - start > args.time_budget:
                print(f"chaos: time budget of {args.time_budget:.0f}s spent", flush=True)
                break
            sc = scenario.generate(seed, only)
            reason = adapt(ctx, sc)
            if reason:
                skipped += 1
                print(f"skip seed={seed} [{sc['cls']}]: {reason}", flush=True)
                continue
            try:
                findings, secs = run_scenario(ctx, sc)
            except Exception:  # noqa: BLE001: a harness error is reported as one, with its replay
                print(f"HARNESS ERROR seed={seed}: replay: {replay_cmd(seed, only_flag)}\n{traceback.format_exc()}",
                      flush=True)
                harness_errors.append(seed)
                continue
            ran += 1
            per_class[sc["cls"]] = per_class.get(sc["cls"], 0) + 1
            bad = [f for k, f in findings if k == "violation"]
            status = "VIOLATION" if bad else "ok"
            if bad or args.verbose:
                print(f"{status} seed={seed} ({secs:.2f}s) {summarize_spec(sc)}", flush=True)
            else:
                print(f"ok seed={seed} [{sc['cls']}] {secs:.2f}s", flush=True)
            if args.verbose:
                for inst in sc.get("_run_instances", []):
                    print(f"    instance {inst.index}: exit {inst.proc.returncode}, signal {inst.signal_sent}, "
                          f"mutation {inst.mutated}, server events {[e.get('event') for e in inst.events]}")
            for kind, text in findings:
                print(f"    {kind}: {text}", flush=True)
            if bad:
                print(f"    replay: {replay_cmd(seed, only_flag)}", flush=True)
                violations.append({"seed": seed, "cls": sc["cls"], "findings": bad, "scenario": summarize_spec(sc)})
            notes += [{"seed": seed, "note": f} for k, f in findings if k == "note"]
    finally:
        ctx.services.close()
    elapsed = time.monotonic() - start
    print(f"chaos: {ran} scenarios in {elapsed:.0f}s ({skipped} skipped; per class {per_class}); "
          f"{len(violations)} with violations, {len(notes)} notes, {len(harness_errors)} harness errors", flush=True)
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump({"ran": ran, "seconds": elapsed, "per_class": per_class, "violations": violations,
                       "notes": notes, "harness_errors": harness_errors}, f, indent=1)
    return 2 if harness_errors else 1 if violations else 0


def replay_cmd(seed, only_flag):
    return f"python3 tests/chaos/chaos.py --replay {seed}{only_flag}"


if __name__ == "__main__":
    sys.exit(main())
