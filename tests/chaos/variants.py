"""Per-instance sources, manifests, file changes and server records for runner.py."""
import base64
import hashlib
import json
import os
import random
import shutil
import sys

from models import FIXTURE_KEY, FIXTURE_PASSPHRASE, FLIP, parse_bytes_expected

INVERT = bytes(255 - b for b in range(256))  # what the fault server's `replace` writes
UNITS = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def parse_size(text):
    for unit, mult in UNITS.items():
        if text.endswith(unit):
            return int(text[:-len(unit)]) * mult
    return int(text)


def weight_files(model):
    return [f for f in model.files if not f.endswith(".json")]


def whole_sha(data):
    return hashlib.sha256(data).hexdigest()


def prepare_source(run, inst):
    ctx, spec, sc = run.ctx, inst.spec, run.sc
    model = ctx.models.get(tuple(spec["model"]))
    inst.store_model = model
    if spec["mutate"] or spec.get("path_fault"):
        model = ctx.models.copy(model, os.path.join(run.dir, f"model-{inst.index}"))
    inst.model = model
    inst.versions = [dict(model.expected)]
    inst.file_versions = {}
    for f in model.files:
        with open(os.path.join(model.root, f), "rb") as fh:
            data = fh.read()
        inst.file_versions[f] = {whole_sha(data)}
        if spec["source"] == "fault":
            inst.file_versions[f].add(whole_sha(data.translate(INVERT)))
    if spec.get("path_fault"):
        inst.broken = break_path(model, spec["path_fault"])
    inst.record = os.path.join(run.dir, f"server-{inst.index}.jsonl")
    inst.extra_env = {}
    inst.secrets = []
    inst.cache_dir = os.path.join(run.dir, "cache") if spec["cache"] else ""
    rng = random.Random(sc["seed"] * 7 + inst.index)
    secret = spec.get("secret") or {}
    token = "chaosSECRET" + "%016x" % rng.getrandbits(64)
    if model.kind in ("fixture-key", "fixture-passphrase"):
        inst.secrets += [FIXTURE_KEY, base64.b64encode(bytes.fromhex(FIXTURE_KEY)).decode(), FIXTURE_PASSPHRASE]
        if secret.get("fail"):
            wrong = "0" + FIXTURE_KEY[1:] if FIXTURE_KEY[0] != "0" else "1" + FIXTURE_KEY[1:]
            inst.extra_env["CHAOS_TZ_KEY"] = wrong
            inst.extra_env["CHAOS_TZ_PASSPHRASE"] = FIXTURE_PASSPHRASE.upper()
            inst.secrets += [wrong, FIXTURE_PASSPHRASE.upper()]
    src = spec["source"]
    files = weight_files(model)
    listed = "" if "model.safetensors.index.json" in model.files else f", files: [{', '.join(files)}]"
    tail = f", retries: {spec['retries']}, stall_timeout: {spec['stall_timeout']}{listed}"
    if src in ("image", "volume"):
        inst.source_entry = f'{{type: {src}, path: "{model.path}"}}'
        return
    prefix = "nope-" + str(sc["seed"]) if secret.get("fail") else None
    if src == "s3":
        ctx.services.moto_endpoint()
        url = ctx.services.s3_publish(model, "m/" + model.key)
        if prefix:
            url = f"s3://chaos/{prefix}/"
        key_id, key_secret = ctx.services.s3_creds
        if secret.get("fail") and rng.random() < 0.5:
            url = ctx.services.s3_publish(model, "m/" + model.key)
            key_secret = token  # a wrong secret: 77, never printed
        inst.secrets.append(key_secret)
        inst.extra_env.update(AWS_ACCESS_KEY_ID=key_id, CHAOS_S3_SECRET=key_secret)
        inst.source_entry = (f'{{type: s3, url: "{url}", endpoint: {ctx.services.s3_endpoint}, region: us-east-1, '
                             f'secret_access_key: "${{CHAOS_S3_SECRET}}"{tail}}}')
        return
    if src == "http":
        base = ctx.services.nginx()
        path = "m/" + model.key
        ctx.services.publish(model, path)
    else:
        base = ctx.services.fault_server()
        path = fault_prefix(run, inst)
        if path not in getattr(run, "fault_dirs", []):  # replicas share one
            shutil.rmtree(os.path.join(ctx.services.www, path), ignore_errors=True)
            shutil.copytree(model.root, os.path.join(ctx.services.www, path))
            run.fault_dirs = getattr(run, "fault_dirs", []) + [path]
            for line in ["clear", "set if_match honour", "set etag strong"] + spec["fault_set"]:
                ctx.services.fault_command(line)
        for rule in spec["faults"]:
            ctx.services.fault_command("fault " + rule)
    url = f"{base}/{prefix or path}/"
    if secret:
        inst.secrets.append(token)
        if secret["where"] in ("userinfo", "both"):
            url = url.replace("http://", f"http://chaos:{token}@", 1)
        if secret["where"] in ("query", "both"):
            url += f"?X-Amz-Signature={token}"
    inst.source_entry = f'{{type: http, url: "{url}"{tail}}}'


def fault_prefix(run, inst):
    return f"f{run.sc['seed']}" + ("" if run.sc.get("separate_shm") else f"-{inst.index}")


def write_manifest(run, inst):
    spec = inst.spec
    mode = {"load": "none", "none": "none", "exec": "exec"}.get(spec["cmd"], "signal")
    server = [sys.executable, os.path.join(run.ctx.tests_dir, "chaos", "server.py"), inst.record,
              "signal" if spec["cmd"] == "signal-early" else "exec"] + ([run.hold] if spec["hold"] else [])
    # after-load starts the server once the weights are ready: no signal then (README)
    if spec.get("bad_command") == "missing":
        server = [os.path.join(run.dir, "no-such-server")]
    elif spec.get("bad_command") == "noexec":
        server = [os.path.join(run.dir, "not-executable")]
        with open(server[0], "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(server[0], 0o644)
    stage = (f"{{target: {spec['target']}, chunk_size: {spec['chunk']}, readers: {spec['readers']}, "
             f"direct_io: {spec['direct_io']}" + (f", memory_limit: {spec['memory_limit']}" if spec["memory_limit"]
                                                  else "") + "}")
    lines = ["version: 1", "model:", f"  name: {run.model_name(inst)}", f"  verify: {spec['verify']}"]
    if inst.cache_dir:
        lines.append(f"  cache: {inst.cache_dir}")
    lines += inst.model.model_lines
    lines += ["  sources:", f"    - {inst.source_entry}", f"stage: {stage}", "handoff:", f"  mode: {mode}",
              f"  command: {json.dumps(server)}", "  grace: 3s"]
    if mode == "signal":
        lines.append("  start: " + ("early" if spec["cmd"] == "signal-early" else "after-load"))
    inst.report = os.path.join(run.dir, f"report-{inst.index}.json")
    lines.append(f"report: {inst.report}")
    path = os.path.join(run.dir, f"manifest-{inst.index}.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def mutate(run, inst, m):
    """Changes one weight file of the private copy; returns what was done. A rewrite or swap adds
    the model as it is afterwards to the versions a table may match (never a mix of two)."""
    files = weight_files(inst.model)
    name = files[m["file"] % len(files)]
    path = os.path.join(inst.model.root, name)
    with open(path, "rb") as f:
        old = f.read()
    if m["kind"] == "truncate":
        os.truncate(path, len(old) // 2)
        return f"truncated {name} to {len(old) // 2}"
    n = int.from_bytes(old[:8], "little")
    new = old[:8 + n] + old[8 + n:].translate(FLIP)
    inst.versions.append({**inst.versions[0], **parse_bytes_expected({name: new})})
    if m["kind"] == "rewrite":  # 4 KiB pieces in a shuffled order, racing the readers
        pieces = list(range(0, len(new), 4096))
        random.Random(len(new)).shuffle(pieces)
        fd = os.open(path, os.O_WRONLY)
        try:
            for at in pieces:
                os.pwrite(fd, new[at:at + 4096], at)
        finally:
            os.close(fd)
        return f"rewrote {name} in place"
    with open(path + ".swap", "wb") as f:
        f.write(new)
    os.replace(path + ".swap", path)
    return f"swapped {name}"


def break_path(model, fault):
    """Replaces the model's first weight file by something that is not one; returns what."""
    name = weight_files(model)[0]
    path = os.path.join(model.root, name)
    if fault == "badindex":  # not JSON, not UTF-8: the parser's message quotes those bytes
        with open(os.path.join(model.root, "model.safetensors.index.json"), "wb") as f:
            f.write(b"\x84\x85 not an index")
        return "model.safetensors.index.json: bytes that are not UTF-8"
    os.unlink(path)
    if fault == "fifo":
        os.mkfifo(path)
    elif fault == "loop":
        os.symlink(name + ".b", path)
        os.symlink(name, path + ".b")
    elif fault == "dangling":
        os.symlink(path + ".missing", path)
    elif fault == "devzero":
        os.symlink("/dev/zero", path)
    elif fault == "directory":
        os.mkdir(path)
    elif fault == "empty":
        open(path, "wb").close()
    elif fault == "huge":  # a sparse file whose header declares one F32 tensor of 1 TiB
        header = json.dumps({"w": {"dtype": "F32", "shape": [1 << 38], "data_offsets": [0, 1 << 40]}}).encode()
        header += b" " * (-len(header) % 8)
        with open(path, "wb") as f:
            f.write(len(header).to_bytes(8, "little") + header)
            f.truncate(8 + len(header) + (1 << 40))
    elif fault == "nonutf8":  # a valid file but for a tensor name that is not UTF-8
        header = b'{"w\xff\xfe": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}'
        header += b" " * (-len(header) % 8)
        with open(path, "wb") as f:
            f.write(len(header).to_bytes(8, "little") + header + b"abcd")
    return f"{name}: {fault}"


def remove_path(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def restore_source(run, inst):
    """Puts the sources back as first written (a new file, renamed over) and clears fault rules."""
    if inst.spec["mutate"] or inst.spec.get("path_fault"):
        for f in os.listdir(inst.model.root):
            if f not in inst.model.files:  # what break_path added
                remove_path(os.path.join(inst.model.root, f))
        for f in inst.model.files:
            src, dst = os.path.join(inst.store_model.root, f), os.path.join(inst.model.root, f)
            if not os.path.isfile(dst) or os.path.islink(dst):
                remove_path(dst)
            shutil.copyfile(src, dst + ".restore")
            os.replace(dst + ".restore", dst)
    if inst.spec["source"] == "fault":
        for line in ["clear", "set if_match honour", "set etag strong"]:
            run.ctx.services.fault_command(line)
        path = fault_prefix(run, inst)
        for f in inst.model.files:
            dst = os.path.join(run.ctx.services.www, path, f)
            shutil.copyfile(os.path.join(inst.model.root, f), dst + ".restore")
            os.replace(dst + ".restore", dst)


def cleanup_sources(run):
    for path in getattr(run, "fault_dirs", []):
        shutil.rmtree(os.path.join(run.ctx.services.www, path), ignore_errors=True)


def read_records(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append({"event": "garbled", "line": line})
    except OSError:
        pass
    return out


def server_verified(inst):
    return any(e.get("event") in ("verified", "error") for e in read_records(inst.record))
