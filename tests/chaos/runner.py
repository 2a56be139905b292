"""Runs one scenario against the real binary: a private /dev/shm (a tmpfs of the scenario's size,
bind-mounted over /dev/shm in a mount namespace of each instance, so instances of one scenario
share it), instances started as `tensorinit load|run`, optionally PID 1 of their own pid namespace,
and the perturbations (signals, file changes, a filler) fired on events: the process exec'd, the
arena's file appeared in the shm dir, the server started. Returns what happened, for oracle.py."""
import os
import shutil
import signal
import subprocess
import threading
import time

from models import FIXTURE_KEY, FIXTURE_PASSPHRASE
import variants

HANG_SECONDS = float(os.environ.get("CHAOS_HANG_SECONDS", 120))
UNSHARE_KILLED = "unshare: sigprocmask unblock failed: Invalid argument\n"
PATH_HANG_SECONDS = min(30, HANG_SECONDS)
SIGNALS = {"TERM": signal.SIGTERM, "KILL": signal.SIGKILL, "HUP": signal.SIGHUP}


class Instance:
    def __init__(self, spec, index):
        self.spec, self.index = spec, index
        self.proc = None
        self.pid = None            # tensorinit's pid as seen from here
        self.exited = threading.Event()
        self.signal_sent = None    # (name, seconds after start) once delivered
        self.signal_comm = None    # /proc comm of the process the signal was sent to, just before
        self.mutated = None
        self.table_after_exit = None
        self.peers_running = False
        self.table_text = ""
        self.secrets = []
        self.plan_output = ""
        self.versions = []         # allowed expected dicts (index 0: as first written)
        self.file_versions = {}    # file name -> set of whole-file sha256 a cache may hold


class Run:
    def __init__(self, ctx, sc):
        self.ctx, self.sc = ctx, sc
        self.dir = os.path.join(ctx.work, "s", str(sc["seed"]))
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        # One shm dir for all (instances of one machine), or one each (replicas: containers of
        # their own sharing only the cache volume).
        self.shms = [os.path.join(self.dir, f"shm{i}" if sc.get("separate_shm") else "shm")
                     for i in range(len(sc["instances"]))]
        for d in set(self.shms):
            os.makedirs(d)
        self.hold = os.path.join(self.dir, "hold")
        self.instances = [Instance(spec, i) for i, spec in enumerate(sc["instances"])]
        self.t0 = time.monotonic()
        self.notes = []
        self.threads = []
        self.filled = None
        self.mounted = False

    # --- set-up -------------------------------------------------------------------------------
    def mount(self):
        if not self.ctx.root:
            return
        for d in sorted(set(self.shms)):
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.sc['shm_size'].replace('iB', '')},mode=1777",
                            "chaos-shm", d], check=True)
            self.mounted = True

    def shm_dir(self, inst=None):
        """The directory inst's tensorinit sees as /dev/shm (the real one when not root)."""
        return self.shms[inst.index if inst else 0] if self.ctx.root else "/dev/shm"

    def model_name(self, inst):
        return inst.spec["name"] if self.ctx.root else f"chaos{os.getpid()}-{self.sc['seed']}-{inst.spec['name']}"

    def command(self, inst, manifest, load_only=False):
        spec = inst.spec
        if load_only or spec["cmd"] == "load":
            args = [self.ctx.tensorinit, "load", "-f", manifest, "--keep"]
        else:
            args = [self.ctx.tensorinit, "run", "-f", manifest]
        if not self.ctx.root:
            return args
        wrap = ["unshare", "-m", "--propagation", "private"]
        if spec["pid1"] and not load_only:
            wrap += ["-p", "-f", "--mount-proc"]
        return wrap + ["sh", "-c", 'mount --bind "$0" /dev/shm && exec "$@"', self.shms[inst.index]] + args

    def environment(self, inst):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TENSORINIT_"))}
        env["CHAOS_TZ_KEY"] = FIXTURE_KEY
        env["CHAOS_TZ_PASSPHRASE"] = FIXTURE_PASSPHRASE
        env.update(inst.extra_env)
        return env

    def prepare(self):
        self.mount()
        for inst in self.instances:
            variants.prepare_source(self, inst)
            inst.manifest = variants.write_manifest(self, inst)

    # --- running ------------------------------------------------------------------------------
    def start(self, inst):
        spec = inst.spec
        if spec["start_delay_ms"]:
            time.sleep(spec["start_delay_ms"] / 1000)
        # errors="replace": a message with bytes that are not UTF-8 is a finding, not a harness crash
        inst.stdout = open(os.path.join(self.dir, f"stdout-{inst.index}"), "w+", errors="replace")
        inst.stderr = open(os.path.join(self.dir, f"stderr-{inst.index}"), "w+", errors="replace")
        inst.started_at = time.monotonic()
        inst.proc = subprocess.Popen(self.command(inst, inst.manifest), stdout=inst.stdout, stderr=inst.stderr,
                                     stdin=subprocess.DEVNULL, env=self.environment(inst), start_new_session=True)
        threading.Thread(target=self.reap, args=(inst,), daemon=True).start()

    def reap(self, inst):
        inst.proc.wait()
        inst.exit_at = time.monotonic()
        if inst.spec["cmd"] in ("load", "none"):
            inst.table_after_exit = self.snapshot_table(inst)
            # A same-name peer still running may be replacing the name right now: then only the
            # final state (all exited) is judged.
            inst.peers_running = any(not i.exited.is_set() for i in self.same_name_peers(inst))
        inst.exited.set()

    def snapshot_table(self, inst):
        """The table of inst's name as it is now: (text, hashes or error), or None."""
        from server import table_hashes  # noqa: PLC0415
        path = os.path.join(self.shm_dir(inst), f"tensorinit-{self.model_name(inst)}.json")
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            return None
        try:
            return text, table_hashes(path, self.shm_dir(inst))
        except Exception as e:  # noqa: BLE001
            return text, f"{type(e).__name__}: {e}"

    def tensorinit_pid(self, inst):
        """Waits until tensorinit itself runs (after unshare, sh and exec); None if it exited first."""
        while not inst.exited.is_set():
            pid = inst.proc.pid
            if self.ctx.root and inst.spec["pid1"]:
                try:
                    with open(f"/proc/{pid}/task/{pid}/children") as f:
                        kids = f.read().split()
                    pid = int(kids[0]) if kids else None
                except (OSError, ValueError):
                    pid = None
            if pid:
                try:
                    with open(f"/proc/{pid}/comm") as f:
                        if f.read().strip() == "tensorinit":
                            return pid
                except OSError:
                    pass
            time.sleep(0.0005)
        return None

    def await_event(self, inst, when):
        """Blocks until the event `when` happened for inst; False if inst exited first."""
        pid = self.tensorinit_pid(inst)
        if pid is None:
            return False
        inst.pid = pid
        name = self.model_name(inst)
        while not inst.exited.is_set():
            if when == "start":
                return True
            if when == "partial" and any(f"tensorinit-{name}" in f for f in os.listdir(self.shm_dir(inst))):
                return True
            if when == "server" and os.path.exists(inst.record):
                return True
            time.sleep(0.0005)
        return False

    def fire_signal(self, inst):
        s = inst.spec["signal"]
        if not self.await_event(inst, s["when"]):
            return
        time.sleep(s["delay_ms"] / 1000)
        if inst.exited.is_set():
            return
        # Which image gets it: after exec (exec mode, not PID 1) the server owns the arena, and a
        # server killed by the signal before its first line leaves it as any dead server would.
        # Read before the kill: "not tensorinit" is then certain (exec has happened).
        try:
            with open(f"/proc/{inst.pid}/comm") as f:
                inst.signal_comm = f.read().strip()
        except OSError:
            inst.signal_comm = None
        try:
            os.kill(inst.pid, SIGNALS[s["sig"]])
            inst.signal_at = time.monotonic()
            inst.signal_sent = (s["sig"], round(inst.signal_at - inst.started_at, 4))
        except ProcessLookupError:
            return
        # Exec may have happened between that read and the kill (seen once in CI: comm read as
        # tensorinit, the server then killed by the SIGHUP, its table published by design). A
        # signal that reached tensorinit just before exec stays pending through it and is the
        # server's too. Exec is one-way: a server's name read after the kill settles it.
        try:
            with open(f"/proc/{inst.pid}/comm") as f:
                after = f.read().strip()
            if after != "tensorinit":
                inst.signal_comm = after
        except OSError:
            pass

    def fire_mutation(self, inst):
        m = inst.spec["mutate"]
        if not self.await_event(inst, m["when"]):
            return
        time.sleep(m["delay_ms"] / 1000)
        if inst.exited.is_set():
            return
        inst.mutated = variants.mutate(self, inst, m)
        inst.mutated_at = round(time.monotonic() - inst.started_at, 4)

    def fire_fill(self, inst):
        fill = self.sc["fill"]
        if not self.await_event(inst, fill["when"]):
            return
        time.sleep(fill["delay_ms"] / 1000)
        n = variants.parse_size(fill["bytes"])
        path = os.path.join(self.shm_dir(inst), "filler")
        self.filled = 0
        try:
            with open(path, "wb") as f:
                while self.filled < n:
                    f.write(b"\xa5" * 65536)
                    f.flush()
                    self.filled += 65536
        except OSError:
            pass

    def spawn(self, target, inst):
        t = threading.Thread(target=target, args=(inst,), daemon=True)
        t.start()
        self.threads.append(t)

    def release_holds(self):
        """Lets held servers go once every instance has exited or its server has verified."""
        deadline = time.monotonic() + HANG_SECONDS
        while time.monotonic() < deadline:
            if all(i.exited.is_set() or variants.server_verified(i) for i in self.instances):
                break
            time.sleep(0.002)
        with open(self.hold, "w"):
            pass

    def run(self):
        self.prepare()
        for inst in self.instances:
            self.start(inst)
            if inst.spec["signal"]:
                self.spawn(self.fire_signal, inst)
            if inst.spec["mutate"]:
                self.spawn(self.fire_mutation, inst)
        if self.sc["fill"]:
            self.spawn(self.fire_fill, self.instances[0])
        if any(i.spec["hold"] for i in self.instances):
            self.spawn(lambda _: self.release_holds(), None)
        hung = []
        # A broken path is refused at once or never: a shorter limit keeps a hang cheap.
        self.hang_limit = PATH_HANG_SECONDS if any(i.spec.get("path_fault") for i in self.instances) else HANG_SECONDS
        for inst in self.instances:
            left = self.hang_limit - (time.monotonic() - self.t0)
            if not inst.exited.wait(max(left, 0.1)):
                hung.append(inst)
        for inst in hung:
            self.kill(inst)
            inst.exited.wait(30)
        for t in self.threads:
            t.join(10)
        for inst in self.instances:
            inst.stdout.seek(0)
            inst.stderr.seek(0)
            inst.out, inst.err = inst.stdout.read(), inst.stderr.read()
            if UNSHARE_KILLED in inst.err and inst.proc.returncode == 1:
                # util-linux 2.38 unshare --fork, its child killed by SIGKILL, fails to re-raise it
                inst.proc.returncode = -9
                inst.err = inst.err.replace(UNSHARE_KILLED, "")
            inst.events = variants.read_records(inst.record)
            inst.hung = inst in hung
        self.final_listing = {d: self.shm_listing(d) for d in set(self.shm_dir(i) for i in self.instances)}
        self.final_tables = {(self.shm_dir(i), self.model_name(i)): self.snapshot_table(i) for i in self.instances}
        return hung

    def kill(self, inst):
        if inst.pid is None and self.ctx.root and inst.spec["pid1"]:
            try:  # PID 1 of the instance's namespace (SIGKILL from here ends the namespace)
                with open(f"/proc/{inst.proc.pid}/task/{inst.proc.pid}/children") as f:
                    inst.pid = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        for pid in (inst.pid, inst.proc.pid):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for ev in variants.read_records(inst.record):
            pid = ev.get("pid") if ev.get("event") == "started" else None
            try:  # only our own server (a pid namespace's pids mean nothing here)
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if inst.record.encode() in f.read():
                        os.kill(pid, signal.SIGKILL)
            except (OSError, TypeError):
                pass

    # --- questions the oracle asks ------------------------------------------------------------
    def same_name_peers(self, inst):
        """Instances that contend with inst for its name: the same name in the same shm dir."""
        return [i for i in self.instances if i is not inst and self.model_name(i) == self.model_name(inst)
                and self.shm_dir(i) == self.shm_dir(inst)]

    def groups(self):
        """(shm dir, name, instances) for every name in every shm dir."""
        out = {}
        for i in self.instances:
            out.setdefault((self.shm_dir(i), self.model_name(i)), []).append(i)
        return [(d, n, peers) for (d, n), peers in sorted(out.items())]

    def versions_for_name(self, inst):
        return [v for i in self.instances if self.model_name(i) == self.model_name(inst) for v in i.versions]

    def config_ok(self, inst):
        """Whether the manifest itself can work (else a refusal is right, even with no chaos):
        pagecache cannot serve packed or encrypted files, nor a remote source without model.cache;
        encrypted tensorizer chunks (2 MiB in the fixtures) need chunk_size >= their size; a query
        in a URL prefix is not a prefix."""
        spec, kind = inst.spec, inst.model.kind
        if spec["target"] == "pagecache" and (kind in ("packed", "fixture-key", "fixture-passphrase") or (
                spec["source"] not in ("image", "volume") and not spec["cache"])):
            return False
        if kind in ("fixture-key", "fixture-passphrase") and variants.parse_size(spec["chunk"]) < (2 << 20):
            return False
        return not (spec["secret"] and (spec["secret"]["where"] != "userinfo" or spec["secret"]["fail"]))

    def clean_expected(self, inst):
        """Whether nothing in this scenario may make inst fail (then a failure is a finding)."""
        spec = inst.spec
        if (spec["signal"] or spec["mutate"] or spec["faults"] or spec["secret"] or self.sc["fill"] or spec.get("path_fault")
                or (spec.get("bad_command") and spec["cmd"] not in ("load", "none"))):
            return False
        if any(i.spec["signal"] for i in self.instances) and self.same_name_peers(inst):
            return False
        if spec["fault_set"] and spec["fault_set"] != ["set if_match honour", "set etag strong"]:
            return False
        if not self.config_ok(inst):
            return False
        if self.sc.get("separate_shm") and (spec["target"] == "pagecache" or any(
                i.spec["signal"] or i.spec["faults"] for i in self.instances)):
            return False  # pagecache replicas: 69 while another fills the cache (README)
        from oracle import arena_bytes  # noqa: PLC0415
        need = sum(arena_bytes(i.versions[0]) + 65536 for i in self.instances)
        return not self.ctx.root or need <= variants.parse_size(self.sc["shm_size"])

    # --- after --------------------------------------------------------------------------------
    def shm_listing(self, d):
        try:
            return sorted(os.listdir(d))
        except OSError:
            return []

    def clean_load(self, inst):
        """A plain `load --keep` with the sources as first written: (exit code, stderr, snapshot)."""
        variants.restore_source(self, inst)
        env = self.environment(inst)
        r = subprocess.run(self.command(inst, inst.manifest, load_only=True), capture_output=True, text=True,
                           errors="replace", env=env, timeout=HANG_SECONDS)
        return r.returncode, r.stderr, self.snapshot_table(inst)

    def stop_stray_servers(self):
        """Our servers orphaned by a killed tensorinit (one that died before the server could note
        its parent waits out its own deadline): ended here, found by this scenario's record path."""
        marks = [inst.record.encode() for inst in self.instances if hasattr(inst, "record")]
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read()
                if b"chaos/server.py" in cmdline and any(m in cmdline for m in marks):
                    os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass

    def cleanup(self, keep):
        self.stop_stray_servers()
        for inst in self.instances:
            for f in (getattr(inst, "stdout", None), getattr(inst, "stderr", None)):
                if f:
                    f.close()
        if not self.ctx.root:
            for f in os.listdir("/dev/shm"):
                if any(f"tensorinit-{self.model_name(i)}" in f for i in self.instances):
                    try:
                        os.unlink(os.path.join("/dev/shm", f))
                    except OSError:
                        pass
        if self.mounted:
            for d in sorted(set(self.shms)):
                subprocess.run(["umount", "-l", d], check=False)
        variants.cleanup_sources(self)
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

