#!/usr/bin/env python3
"""Start-up caches (manifest `caches:`) against real processes: a server that lists what it found
in its cache directory and adds a file; tensorinit restores before it starts and saves after its
clean exit, to a volume and to s3 (moto_server, authentication enforced). Covers the first start
(missing), restored, unchanged, three replicas saving at once (one whole archive), a save killed
midway (the old archive stays, no torn one is used), corrupt, hostile and oversized archives
(refused: the server starts with an empty directory, exit 0), and no secret in any output.
"""
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.join(os.environ["TESTS_DIR"], "tools"))
import testkit  # noqa: E402
from moto_s3 import moto_env, moto_user, start_moto  # noqa: E402
from testkit import check  # noqa: E402

TENSORINIT = os.environ["TENSORINIT"]
TMP = os.environ["TEST_TMP"]
SERVER = os.path.join(TMP, "server.sh")


def manifest(name, cache_dir, sources, save="on-exit", max_size="64MiB", write=""):
    """A signal-mode manifest (tensorinit stays to save) whose server lists the cache into
    <TMP>/<name>.seen and, when `write` is "file=text", adds that file."""
    path = os.path.join(TMP, name + ".yaml")
    srcs = "\n".join("      - " + s for s in sources)
    wname, _, wtext = write.partition("=")
    with open(path, "w") as f:
        f.write(f"""version: 1
model:
  name: {name}
  sources: [{{type: image, path: "{os.path.join(TMP, 'model')}"}}]
handoff:
  mode: signal
  start: after-load
  command: [/bin/sh, {SERVER}, {cache_dir}, {os.path.join(TMP, name + '.seen')}, "{wname}", "{wtext}"]
caches:
  - name: inductor
    path: {cache_dir}
    save: {save}
    max_size: {max_size}
    sources:
{srcs}
report: {os.path.join(TMP, name + '.report.json')}
""")
    return path


def run(m, env=None):
    return subprocess.run([TENSORINIT, "run", "-f", m], capture_output=True, text=True, env=env, timeout=600)


def report(name):
    with open(os.path.join(TMP, name + ".report.json")) as f:
        return json.load(f)["caches"][0]


def seen(name):
    with open(os.path.join(TMP, name + ".seen")) as f:
        return f.read().split()


def archive_of(entries):
    """tar.zst bytes of (name, kind, data) entries, made by Python's tarfile and the zstd CLI."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
                tar.addfile(info)
    return subprocess.run(["zstd", "-q", "-c"], input=buf.getvalue(), capture_output=True, check=True).stdout


def volume_tests():
    vol = os.path.join(TMP, "vol")
    src = [f"{{type: volume, path: {vol}}}"]
    archive = os.path.join(vol, "inductor.tar.zst")

    c1 = os.path.join(TMP, "c1")
    r = run(manifest("first", c1, src, write="kernel.so=v1"))
    check("first start: exit 0", r.returncode == 0, r.stderr[-800:])
    check("first start: says so", "first start" in r.stderr, r.stderr)
    check("first start: the server found an empty directory", seen("first") == [], seen("first"))
    check("first start: saved at the clean exit", os.path.exists(archive) and report("first")["save"]["state"] == "saved",
          report("first"))
    check("first start: no partial left", sorted(os.listdir(vol)) == ["inductor.tar.zst"], os.listdir(vol))

    c2 = os.path.join(TMP, "c2")  # a new container: the directory does not exist yet
    r = run(manifest("second", c2, src))
    check("restored: exit 0", r.returncode == 0, r.stderr[-800:])
    check("restored: the server found the file", seen("second") == ["kernel.so"], seen("second"))
    check("restored: byte for byte", open(os.path.join(c2, "kernel.so")).read() == "v1")
    rep = report("second")
    check("restored: reported with its time", rep["restore"]["state"] == "restored" and rep["restore"]["seconds"] >= 0, rep)
    check("restored and unchanged: not saved again", rep["save"]["state"] == "unchanged", rep)

    # Three replicas at once, each adding its own files: one whole archive, from one of them.
    procs = []
    for i in range(3):
        d = os.path.join(TMP, f"rep{i}")
        os.makedirs(d)
        for k in range(30):
            with open(os.path.join(d, f"k{k}"), "w") as f:
                f.write(f"replica {i} " * 2000)
        procs.append(subprocess.Popen([TENSORINIT, "run", "-f", manifest(f"rep{i}", d, src, write=f"z=r{i}")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    codes = [p.wait(timeout=600) for p in procs]
    check("three replicas: all exit 0", codes == [0, 0, 0], codes)
    check("three replicas: one archive, no partials", sorted(os.listdir(vol)) == ["inductor.tar.zst"], os.listdir(vol))
    c3 = os.path.join(TMP, "c3")
    r = run(manifest("after-replicas", c3, src, save="never"))
    files = sorted(os.listdir(c3))
    contents = {open(os.path.join(c3, f)).read().split(" ")[1] for f in files if f.startswith("k")}
    check("three replicas: the archive is one replica's whole directory",
          len(files) == 31 and len(contents) == 1 and open(os.path.join(c3, "z")).read() == "r" + contents.pop(),
          files)

    # A save killed midway: the archive before it is what the next start restores.
    before = open(archive, "rb").read()
    big = os.path.join(TMP, "big")
    os.makedirs(big)
    with open(os.path.join(big, "blob"), "wb") as f:
        f.write(os.urandom(192 << 20))  # incompressible: seconds of zstd
    p = subprocess.Popen([TENSORINIT, "run", "-f", manifest("killed", big, src, max_size="1GiB")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = None
    while partial is None and p.poll() is None:  # the event: the partial file exists
        partial = next((n for n in os.listdir(vol) if ".partial-" in n), None)
        time.sleep(0.005)
    if partial is not None:
        os.kill(p.pid, signal.SIGKILL)
    p.wait()
    check("killed mid-save: caught while saving", partial is not None, "the save ended before it was seen")
    check("killed mid-save: the archive is the one before", open(archive, "rb").read() == before)
    c4 = os.path.join(TMP, "c4")
    r = run(manifest("after-kill", c4, src, save="never"))
    check("killed mid-save: the next start restores the whole archive before it",
          r.returncode == 0 and len(os.listdir(c4)) == 31, r.stderr[-600:])
    for n in os.listdir(vol):
        if ".partial-" in n:
            os.unlink(os.path.join(vol, n))

    # Refused archives: the server still starts, with an empty directory, and exits 0.
    cases = {
        "corrupt": before[: len(before) // 2] + bytes(64) + before[len(before) // 2 + 64:],
        "torn": before[: len(before) // 2],
        "garbage": b"this is not an archive",
        "dotdot": archive_of([("ok", "file", b"x"), ("../escaped", "file", b"x")]),
        "absolute": archive_of([(os.path.join(TMP, "absolute-escape"), "file", b"x")]),
        "symlink-out": archive_of([("etc", "symlink", "/etc"), ("etc/passwd-2", "file", b"x")]),
        "device": archive_of([("null", "chr", None)]),
        "oversized": archive_of([("big", "file", b"y" * 4096)]),
        "bomb": archive_of([("zeros", "file", bytes(80 << 20))]),  # past the 64 MiB floor at ~10000:1
    }
    for case, data in cases.items():
        with open(archive, "wb") as f:
            f.write(data)
        d = os.path.join(TMP, "refused-" + case)
        r = run(manifest("refused-" + case, d, src, save="never", max_size={"oversized": "2KiB", "bomb": "1GiB"}.get(case, "64MiB")))
        rep = report("refused-" + case)
        check(f"{case} archive: refused, the server starts with an empty directory, exit 0",
              r.returncode == 0 and seen("refused-" + case) == [] and rep["restore"]["state"] == "refused"
              and "refused" in r.stderr, f"exit {r.returncode} {rep} {r.stderr[-400:]}")
    check("hostile archives: nothing escaped", not os.path.exists(os.path.join(TMP, "escaped"))
          and not os.path.exists(os.path.join(TMP, "absolute-escape")) and not os.path.exists("/etc/passwd-2"))

    # An unreachable http source with credentials in its URL: the start goes on, nothing printed.
    d = os.path.join(TMP, "http-secret")
    r = run(manifest("http-secret", d, ['{type: http, url: "http://user:hunter2@127.0.0.1:1/caches/?token=tok3n", '
                                        'retries: 0}'], save="on-exit"))
    outputs = r.stderr + open(os.path.join(TMP, "http-secret.report.json")).read()
    check("http source unreachable: the server starts, restore failed, save has no writable source",
          r.returncode == 0 and report("http-secret")["restore"]["state"] == "failed"
          and report("http-secret")["save"]["state"] == "failed", r.stderr[-600:])
    check("http source: no userinfo or query token printed", "hunter2" not in outputs and "tok3n" not in outputs,
          outputs[-600:])

    # Saving more than max_size is refused (and the start is fine).
    d = os.path.join(TMP, "too-big")
    r = run(manifest("too-big", d, [f"{{type: volume, path: {os.path.join(TMP, 'vol2')}}}"], max_size="1KiB",
                     write="k=" + "x" * 2000))
    check("over max_size: not saved, exit 0", r.returncode == 0 and report("too-big")["save"]["state"] == "refused"
          and not os.path.exists(os.path.join(TMP, "vol2", "inductor.tar.zst")), r.stderr[-400:])


def s3_tests():
    import boto3
    server, endpoint = start_moto(TMP)
    try:
        creds = moto_user(endpoint, "saver")
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint, **creds)
        s3.create_bucket(Bucket="caches")
        env = moto_env(creds)
        src = [f'{{type: s3, url: "s3://caches/team/", endpoint: "{endpoint}", retries: 1}}']
        r = run(manifest("s3-first", os.path.join(TMP, "s3c1"), src, write="kernel.so=s3v1"), env)
        check("s3 first start: saved with a signed PUT", r.returncode == 0 and report("s3-first")["save"]["state"] == "saved",
              r.stderr[-800:])
        names = [o["Key"] for o in s3.list_objects_v2(Bucket="caches").get("Contents", [])]
        check("s3: the archive is the object", names == ["team/inductor.tar.zst"], names)
        r = run(manifest("s3-second", os.path.join(TMP, "s3c2"), src), env)
        check("s3 restored: the server found the file", r.returncode == 0 and seen("s3-second") == ["kernel.so"]
              and open(os.path.join(TMP, "s3c2", "kernel.so")).read() == "s3v1", r.stderr[-800:])
        outputs = r.stderr + open(os.path.join(TMP, "s3-second.report.json")).read()
        check("s3: no secret in stderr or the report", creds["aws_secret_access_key"] not in outputs)
        bad = dict(env, AWS_SECRET_ACCESS_KEY="wrong-secret-123")
        r = run(manifest("s3-denied", os.path.join(TMP, "s3c3"), src), bad)
        check("s3 denied: the server still starts (a cache never fails a start)",
              r.returncode == 0 and seen("s3-denied") == [] and "wrong-secret-123" not in r.stderr
              and report("s3-denied")["restore"]["state"] == "failed", r.stderr[-800:])
    finally:
        server.kill()
        server.wait()


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    subprocess.run([TENSORINIT, "synth", "--size", "1MiB", "--seed", "3", os.path.join(TMP, "model")], check=True,
                   capture_output=True)
    with open(SERVER, "w") as f:
        f.write('ls -A "$1" | sort > "$2"\n[ -n "$3" ] && printf %s "$4" > "$1/$3"\nexit 0\n')
    volume_tests()
    s3_tests()
    print(f"{testkit.failures} failed")
    return 1 if testkit.failures else 0


if __name__ == "__main__":
    sys.exit(main())
