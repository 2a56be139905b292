#!/usr/bin/env python3
"""Remote s3 sources against moto_server on loopback with authentication enforced: objects are
created by the test (boto3), loaded by tensorinit byte-exact, through the write-through cache;
wrong credentials give exit 77 with a clear line and no secret in it.

moto enforces SigV4 for every request after the first INITIAL_NO_AUTH_ACTION_COUNT ones, which the
test spends creating an IAM user with an access key and an allow-all policy. moto's own signature
check rejects valid requests for keys with `= + , : ( )` or non-ASCII (measured.md): those keys
are covered by the botocore cross-check of the signer (test_sigv4_botocore.py); here keys use
spaces and `~`, which moto checks correctly.
"""
import os
import shutil
import subprocess
import sys

import boto3

sys.path.insert(0, os.path.join(os.environ["TESTS_DIR"], "tools"))
import testkit  # noqa: E402
from moto_s3 import moto_env, moto_user, start_moto  # noqa: E402
from testkit import check  # noqa: E402

TENSORINIT = os.environ["TENSORINIT"]
TESTS_DIR = os.environ["TESTS_DIR"]
TMP = os.environ["TEST_TMP"]


def run(args, env=None):
    return subprocess.run([TENSORINIT] + args, capture_output=True, text=True, env=env, timeout=300)


def manifest(name, url, endpoint, cache="", extra=""):
    path = os.path.join(TMP, name + ".yaml")
    with open(path, "w") as f:
        f.write(f"""version: 1
model:
  name: {name}
{f'  cache: {cache}' if cache else ''}
  sources:
    - type: s3
      url: "{url}"
      endpoint: {endpoint}
      region: us-east-1
      retries: 1
      stall_timeout: 5s
stage: {{chunk_size: 2MiB, readers: 4}}
report: ''
{extra}""")
    return path


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    model = os.path.join(TMP, "model")
    subprocess.run([TENSORINIT, "synth", "--size", "24MiB", "--shards", "2", "--seed", "5", model], check=True,
                   capture_output=True)
    server, endpoint = start_moto(TMP)
    try:
        creds = moto_user(endpoint, "loader")
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint, **creds)
        s3.create_bucket(Bucket="models")
        prefixes = ["tiny/v1/", "with space/and~tilde/"]
        for prefix in prefixes:
            for name in sorted(os.listdir(model)):
                s3.upload_file(os.path.join(model, name), "models", prefix + name)
        try:  # the check is on: an unsigned-garbage request must be refused
            boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="AKIANOPE",
                         aws_secret_access_key="nope").list_objects_v2(Bucket="models")
            check("moto enforces authentication", False, "a bogus key was accepted")
        except Exception:
            check("moto enforces authentication", True)

        env = moto_env(creds)
        for i, prefix in enumerate(prefixes):
            name = f"s3-load-{i}"
            m = manifest(name, f"s3://models/{prefix}", endpoint, cache=os.path.join(TMP, "cache"))
            r = run(["load", "-f", m, "--keep"], env)
            check(f"s3 load of '{prefix}' (index.json, 2 shards)", r.returncode == 0, r.stderr[-600:])
            table = f"/dev/shm/tensorinit-{name}.json"
            v = subprocess.run([sys.executable, os.path.join(TESTS_DIR, "tools", "verify_table.py"), "--table", table],
                               env=dict(os.environ, TENSORINIT_MODEL_DIR=model), capture_output=True, text=True)
            check(f"s3 '{prefix}': arena byte-exact", v.returncode == 0, v.stdout + v.stderr)
            for f in os.listdir(f"/dev/shm"):
                if f.startswith(f"tensorinit-{name}"):
                    os.unlink(os.path.join("/dev/shm", f))
            cached = os.path.join(TMP, "cache", name)
            same = all(open(os.path.join(model, f), "rb").read() == open(os.path.join(cached, f), "rb").read()
                       for f in os.listdir(model))
            check(f"s3 '{prefix}': the cache holds the model byte-exact", same)
            p = run(["plan", "-f", m], env)
            check(f"s3 '{prefix}': the next plan picks the cache", "chosen: volume" in p.stdout, p.stdout + p.stderr)

        # Explicit files list, no index.json, credentials from the manifest.
        m = manifest("s3-files", "s3://models/tiny/v1", endpoint, extra="")
        with open(m) as f:
            text = f.read().replace("      retries: 1\n", "      retries: 1\n      files: [model-00002-of-00002.safetensors]\n"
                                    f"      access_key_id: {creds['aws_access_key_id']}\n      secret_access_key: ${{S3_SECRET}}\n")
        with open(m, "w") as f:
            f.write(text)
        r = run(["load", "-f", m], dict(os.environ, S3_SECRET=creds["aws_secret_access_key"]))
        check("s3: files list and manifest credentials", r.returncode == 0, r.stderr[-600:])

        # Wrong secret: 77, one clear line, no secret in it.
        bad = dict(env, AWS_SECRET_ACCESS_KEY="wrong-secret-value-123")
        m = manifest("s3-denied", "s3://models/tiny/v1/", endpoint)
        r = run(["load", "-f", m], bad)
        check("s3: wrong credentials exit 77", r.returncode == 77, f"exit {r.returncode}: {r.stderr[-400:]}")
        check("s3: the error names the object", "s3://models/tiny/v1/" in r.stderr or "/models/tiny/v1/" in r.stderr, r.stderr)
        check("s3: no secret in the error", "wrong-secret-value-123" not in r.stderr and creds["aws_secret_access_key"] not in r.stderr)
        noenv = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        r = run(["load", "-f", m], noenv)
        check("s3: no credentials at all exit 77", r.returncode == 77 and "AWS_ACCESS_KEY_ID" in r.stderr, r.stderr)
        m = manifest("s3-missing", "s3://models/absent/", endpoint)
        r = run(["load", "-f", m], env)
        check("s3: a missing prefix is no usable source (66)", r.returncode == 66, f"exit {r.returncode}: {r.stderr}")
    finally:
        server.kill()
        server.wait()
    print(f"{testkit.failures} failed")
    return 1 if testkit.failures else 0


if __name__ == "__main__":
    sys.exit(main())
