"""Random scenarios, each a plain dict drawn from random.Random(seed) alone (so `--replay SEED`
rebuilds it exactly). Classes (`--only`):
  load        one instance, a random model, format, target, chunk size, readers, direct_io,
              verify and handoff (load --keep, none, exec, signal early/after-load), maybe PID 1;
              sometimes a server command that is missing or not executable (126/127, nothing left)
  remote      the same from http (nginx) or s3 (moto_server), maybe through model.cache
  faults      http from the fault server: resets, short bodies, stalls, drops, 5xx/429/403/404,
              ignored ranges, files replaced mid-load, weak or missing ETags, ignored If-Match
  signals     SIGTERM, SIGKILL or SIGHUP at a random moment (from start, once the arena's
              temporary file appears, or once the server started)
  mutate      a local file truncated, rewritten in place or swapped (rename over) mid-load
  shm         a small tmpfs at /dev/shm (too small, or just enough), or one filling up mid-load
  concurrent  2-3 instances sharing one /dev/shm, same or different model names, several as
              PID 1 in their own pid namespaces; servers hold their weights until all are done
  paths       a weight file replaced by a FIFO, a symlink loop, a dangling symlink, a link to
              /dev/zero, a directory, an empty file, a sparse file declaring a 1 TiB tensor, a
              header with a name that is not UTF-8, or an index.json of bytes that are not UTF-8:
              a clean refusal, never a hang or exit 70
  replicas    2-3 instances of one model name, each with a shm dir of its own (containers on one
              node) but one model.cache volume, from http, s3 or the fault server, some killed
  secrets     planted secrets in URLs (userinfo, query), S3 keys and tensorizer keys, with runs
              that fail on purpose so the messages name those URLs
"""
import random

CLASSES = ["load", "remote", "faults", "signals", "mutate", "shm", "concurrent", "secrets"]
LATE_CLASSES = ["paths", "replicas"]
LATE_SHARE = 0.08
PATH_FAULTS = ["fifo", "loop", "dangling", "devzero", "directory", "huge", "nonutf8", "empty"]
WEIGHTS = {"load": 3, "remote": 2, "faults": 3, "signals": 4, "mutate": 3, "shm": 2, "concurrent": 3, "secrets": 1}
COMMANDS = ["load", "none", "exec", "signal-early", "signal-after"]
SAFETENSORS_KINDS = ("custom", "synth")


def random_model_spec(rng, allow=("custom", "synth", "tensorizer", "fixture", "packed"), big=False):
    """A model out of a bounded set (models are cached by spec, so a long run reuses them)."""
    kind = rng.choice(allow)
    if kind == "custom":
        return ("custom", rng.randrange(160 if big else 120))
    if kind == "fixture":
        return ("fixture", rng.choice(["plain", "key", "passphrase", "f16"]))
    if kind == "packed":
        return ("packed", rng.randrange(40))
    size = rng.choice([16, 64, 256, 1024] + ([2048, 4096] if big else []))
    return (kind, size, rng.choice(["bf16", "f16", "f32"]), rng.choice([1, 1, 2, 3] if kind == "synth" else [1, 1, 2]),
            rng.randrange(3))


def random_instance(rng, name, allow=("custom", "synth", "tensorizer", "fixture", "packed"), source=None, big=False):
    spec = random_model_spec(rng, allow, big)
    target = rng.choice(["host", "host", "host", "auto", "pagecache"])
    inst = {
        "name": name, "model": list(spec), "source": source or rng.choice(["image", "volume"]),
        "cmd": rng.choice(COMMANDS), "pid1": rng.random() < 0.3, "target": target,
        "chunk": rng.choice(["4KiB", "8KiB", "16KiB", "64KiB", "256KiB", "1MiB", "4MiB"]),
        "readers": rng.choice(["auto", 1, 1, 2, 3, 4, 8]),
        "direct_io": rng.choice(["auto", "on", "off"]),
        "verify": rng.choice(["none", "size", "size", "checksums"]),
        "memory_limit": rng.choice([None, "4MiB", "64MiB"]),
        "cache": False, "hold": False, "signal": None, "mutate": None, "faults": [], "fault_set": [],
        "secret": None, "retries": 3, "stall_timeout": "1s", "start_delay_ms": 0,
    }
    if inst["memory_limit"] == "4MiB" and inst["chunk"] == "4MiB":
        inst["memory_limit"] = None
    return inst


def when(rng):
    return {"when": rng.choice(["start", "partial", "partial", "server"]), "delay_ms": rng.choice(
        [0, 0, 0, 1, 2, 3, 5, 10, 20, 50, 100])}


def generate(seed, only=None):
    rng = random.Random(seed)
    # Classes added later are drawn from a second generator, so the seeds of earlier runs keep
    # their scenarios (a recorded replay line stays valid).
    late = [c for c in LATE_CLASSES if not only or c in only]
    if late and (random.Random(seed ^ 0x5EED).random() < LATE_SHARE or not set(only or CLASSES) & set(CLASSES)):
        cls = random.Random(seed ^ 0xC1A55).choice(late)
        sc = {"seed": seed, "cls": cls, "shm_size": "64MiB", "fill": None, "instances": []}
        GENERATORS[cls](rng, sc)
        return sc
    classes = [c for c in CLASSES if not only or c in only]
    cls = rng.choices(classes, [WEIGHTS[c] for c in classes])[0]
    sc = {"seed": seed, "cls": cls, "shm_size": "64MiB", "fill": None, "instances": []}
    GENERATORS[cls](rng, sc)
    return sc


def _load(rng, sc):
    inst = random_instance(rng, "m0", big=True)
    # A server command that cannot run (drawn apart: earlier seeds keep their scenarios).
    side = random.Random(sc["seed"] ^ 0xBAD)
    if side.random() < 0.12:
        inst["bad_command"] = side.choice(["missing", "noexec"])
    sc["instances"].append(inst)


def _remote(rng, sc):
    inst = random_instance(rng, "m0", source=rng.choice(["http", "http", "s3"]), big=True)
    inst["cache"] = rng.random() < 0.5
    sc["instances"].append(inst)


def _faults(rng, sc):
    inst = random_instance(rng, "m0", source="fault")
    inst["cache"] = rng.random() < 0.4
    inst["readers"] = rng.choice([1, 2, 4, "auto"])
    inst["retries"] = rng.choice([0, 1, 3, 5])
    rules = []
    for _ in range(rng.randint(1, 3)):
        mode = rng.choice(["reset", "short", "stall", "drop", "status", "status", "ignore_range", "replace",
                           "redirect"])
        rule = f"* {mode} skip={rng.randint(0, 6)} times={rng.choice([1, 1, 2, 3, 0])}"
        if mode in ("reset", "short", "stall"):
            rule += f" after={rng.choice([0, 1, 100, 4096, 65536])}"
        if mode == "stall":
            rule += " seconds=" + rng.choice(["0.2", "1.5", "3"])
        if mode == "status":
            rule += f" status={rng.choice([500, 502, 503, 429, 403, 404, 401, 400])}"
            if rng.random() < 0.3:
                rule += " retry_after=0"
        if mode == "replace":
            rule = rule.replace("times=0", "times=1")
        if mode == "redirect":
            rule += " to=" + rng.choice(["alt", "main"]) + " times=1"
        rules.append(rule)
    inst["faults"] = rules
    inst["fault_set"] = [f"set if_match {rng.choice(['honour', 'honour', 'ignore'])}",
                         f"set etag {rng.choice(['strong', 'strong', 'weak', 'none'])}"]
    sc["instances"].append(inst)


def _signals(rng, sc):
    inst = random_instance(rng, "m0", source=rng.choice(["image", "image", "volume", "fault"]), big=True)
    if rng.random() < 0.6:
        inst["readers"], inst["chunk"] = 1, rng.choice(["4KiB", "16KiB", "64KiB"])
    if inst["source"] == "fault" and rng.random() < 0.5:  # a stalled plan or load: SIGTERM must still stop it
        inst["faults"] = [f"* stall skip={rng.randint(0, 4)} times=1 after=0 seconds={rng.choice([0.5, 8])}"]
        inst["stall_timeout"] = "10s"
    inst["signal"] = dict(when(rng), sig=rng.choice(["TERM", "TERM", "KILL", "HUP"]))
    sc["instances"].append(inst)


def _mutate(rng, sc):
    inst = random_instance(rng, "m0", allow=SAFETENSORS_KINDS, big=True)
    inst["target"] = "host"
    if rng.random() < 0.8:
        inst["readers"], inst["chunk"] = rng.choice([1, 2]), rng.choice(["4KiB", "4KiB", "16KiB", "64KiB"])
    inst["mutate"] = dict(when=rng.choice(["start", "partial", "partial"]), delay_ms=rng.choice([0, 0, 1, 2, 5, 10]),
                          kind=rng.choice(["truncate", "rewrite", "rewrite", "swap"]), file=rng.randrange(8))
    inst["direct_io"] = rng.choice(["on", "off", "auto"])
    sc["instances"].append(inst)


def _shm(rng, sc):
    inst = random_instance(rng, "m0", big=True)
    inst["target"] = "host"
    if rng.random() < 0.5:
        sc["shm_size"] = rng.choice(["64KiB", "256KiB", "1MiB", "2MiB", "4MiB", "8MiB"])
    else:
        sc["shm_size"] = rng.choice(["6MiB", "8MiB", "12MiB"])
        sc["fill"] = dict(when(rng), bytes=rng.choice(["2MiB", "4MiB", "6MiB", "8MiB"]))
    sc["instances"].append(inst)


def _concurrent(rng, sc):
    n = rng.randint(2, 3)
    same = rng.random() < 0.6
    all_pid1 = rng.random() < 0.5
    for i in range(n):
        inst = random_instance(rng, "m0" if same else f"m{i}", allow=("custom", "synth", "tensorizer", "packed"),
                               big=True)
        inst["target"] = rng.choice(["host", "auto"])
        inst["cmd"] = rng.choice(["none", "exec", "exec", "signal-early", "signal-after", "load"])
        inst["pid1"] = all_pid1 or rng.random() < 0.3
        inst["hold"] = True
        inst["start_delay_ms"] = rng.choice([0, 0, 1, 5, 20])
        if rng.random() < 0.5:
            inst["readers"], inst["chunk"] = 1, rng.choice(["4KiB", "16KiB", "64KiB"])
        sc["instances"].append(inst)
    if rng.random() < 0.25:
        rng.choice(sc["instances"])["signal"] = dict(when(rng), sig=rng.choice(["TERM", "KILL"]))


def _secrets(rng, sc):
    inst = random_instance(rng, "m0", source=rng.choice(["http", "fault", "s3", "image"]))
    if inst["source"] == "image":
        inst["model"] = ["fixture", rng.choice(["key", "passphrase"])]
        inst["target"] = "host"
    inst["secret"] = {"where": rng.choice(["userinfo", "query", "both"]), "fail": rng.random() < 0.5}
    inst["retries"] = 0
    if inst["source"] == "fault" and rng.random() < 0.6:  # credentials must not follow to another origin
        inst["faults"] = [f"* redirect times=1 to=alt skip={rng.randint(0, 3)}"]
    sc["instances"].append(inst)


def _paths(rng, sc):
    inst = random_instance(rng, "m0", allow=SAFETENSORS_KINDS)
    inst["target"] = rng.choice(["host", "host", "pagecache"])
    inst["path_fault"] = rng.choice(PATH_FAULTS)
    if random.Random(sc["seed"] ^ 0x2BD).random() < 0.15:  # drawn apart: earlier seeds keep their scenarios
        inst["path_fault"] = "badindex"
    if inst["path_fault"] == "huge":  # pagecache would really read 1 TiB of holes
        inst["target"] = "host"
    sc["instances"].append(inst)


def _replicas(rng, sc):
    sc["separate_shm"] = True
    source = rng.choice(["fault", "fault", "http", "s3"])
    spec = random_model_spec(rng, ("custom", "synth", "tensorizer", "packed"), big=True)
    for i in range(rng.randint(2, 3)):
        inst = random_instance(rng, "m0", source=source)
        inst.update(model=list(spec), cache=True, pid1=rng.random() < 0.5, start_delay_ms=rng.choice([0, 0, 2, 10]),
                    target=rng.choice(["host", "host", "host", "pagecache"]))
        if rng.random() < 0.6:
            inst["readers"], inst["chunk"] = rng.choice([1, 2]), rng.choice(["4KiB", "16KiB", "64KiB"])
        sc["instances"].append(inst)
    first = sc["instances"][0]
    if source == "fault" and rng.random() < 0.5:  # the server's rules apply to every replica
        first["faults"] = [f"* {rng.choice(['reset', 'short', 'stall'])} skip={rng.randint(0, 8)} times=1 "
                           f"after={rng.choice([0, 4096])} seconds=0.3"]
    if rng.random() < 0.4:
        rng.choice(sc["instances"])["signal"] = dict(when(rng), sig=rng.choice(["KILL", "KILL", "TERM"]))


GENERATORS = {"paths": _paths, "replicas": _replicas, "load": _load, "remote": _remote, "faults": _faults, "signals": _signals, "mutate": _mutate,
              "shm": _shm, "concurrent": _concurrent, "secrets": _secrets}
