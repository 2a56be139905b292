"""The SigV4 signer and S3 addressing (tests/tools/sigv4_sign.cpp over src/io/sigv4, s3_location)
against botocore, for keys that trip signers: spaces, = + , : ( ) ~, unicode, '%', '?', '#',
empty and dot segments, nested prefixes; with and without a session token; path-style and
virtual-hosted. Two comparisons per key, both at one fixed time:
  1. botocore's own S3 client prepares GetObject (captured before sending): the URL must be the one
     tensorinit builds, and the Authorization header must be byte-identical;
  2. botocore's S3SigV4Auth signs a bare AWSRequest carrying extra headers (If-Match with quotes,
     runs of spaces, duplicates): canonical request and Authorization must be identical.
botocore is required (pip package `botocore`): without it this test fails, it does not skip."""

import datetime
import json
import os
import subprocess
import sys
from unittest import mock

try:
    import botocore.auth
    import botocore.session
    from botocore.awsrequest import AWSRequest, AWSResponse
    from botocore.config import Config
    from botocore.credentials import Credentials
    from botocore.utils import percent_encode
except ImportError as e:
    print(f"FAIL botocore is required for this test (pip install botocore): {e}", flush=True)
    sys.exit(1)

SIGN = os.environ.get("TENSORINIT_SIGV4_SIGN") or os.path.join(
    os.path.dirname(os.environ.get("TENSORINIT", "")), "tests", "tensorinit_sigv4_sign")
NOW = datetime.datetime(2024, 2, 29, 13, 37, 42)  # a leap day, so the date is not a trivial one
AMZ_NOW = NOW.strftime("%Y%m%dT%H%M%SZ")
UNSIGNED_BY_BOTOCORE = {"user-agent", "expect", "transfer-encoding", "x-amzn-trace-id"}
SIGNER_OWNED = {"authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"}

KEYS = [
    "model.safetensors",
    "my model/model 00001-of-00002.safetensors",
    "k=v/a+b,c:d(e)f.safetensors",
    "~user/tilde~file~.bin",
    "modèle/重み.safetensors",
    "emoji/🤗 weights.bin",
    "deep/nested/prefix/a/b/c/d/e.bin",
    "a//b///c",
    "semi;colon@at!bang$dollar&amp'quote*star.bin",
    "percent%20literal%.bin",
    "query?x=1#frag.bin",
    "dot/./seg/../x",
    " leading and trailing ",
]
# (region, endpoint or None, path_style or None for the default rule)
PLACES = [("us-east-1", "http://127.0.0.1:9000", None), ("eu-central-1", None, None),
          ("us-east-1", None, True), ("us-west-2", "https://minio.example:9443", False)]
CREDENTIALS = [("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None),
               ("ASIATEMP", "tmp+secret/with=chars", "FwoGZXIvYXdzEBYaDH//token+with/slashes==")]
failures = 0
checks = 0


def check(name, ok, detail=""):
    global failures, checks
    checks += 1
    if not ok:
        failures += 1
        print(f"FAIL {name}: {detail}", flush=True)


def tensorinit_sign(credentials, region, args, headers):
    key_id, secret, token = credentials
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret)
    if token:
        env["AWS_SESSION_TOKEN"] = token
    cmd = [SIGN, "--time", AMZ_NOW, "--region", region] + args
    for name, value in headers:
        cmd += ["--header", f"{name}:{value}"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd}: exit {done.returncode}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def botocore_client(credentials, region, endpoint, path_style):
    """A botocore S3 client whose requests are captured, signed, just before they would be sent."""
    key_id, secret, token = credentials
    client = botocore.session.get_session().create_client(
        "s3", region_name=region, endpoint_url=endpoint, aws_access_key_id=key_id,
        aws_secret_access_key=secret, aws_session_token=token,
        config=Config(s3={"addressing_style": "path" if path_style else "virtual",
                          "us_east_1_regional_endpoint": "regional"}))
    client.captured = []

    def before_send(request, **_):
        client.captured.append(request)
        return AWSResponse(request.url, 200, {}, None)

    client.meta.events.register("before-send", before_send)
    return client


def botocore_get_object(client, bucket, key):
    """The GetObject request botocore would send: its URL and the headers it signed (botocore adds
    amz-sdk-* headers after signing, so only those named in SignedHeaders are the signed request)."""
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        try:
            client.get_object(Bucket=bucket, Key=key, Range="bytes=0-16777215")
        except Exception:  # the empty fake response does not parse; the request is what matters
            pass
    request = client.captured.pop()
    headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
    signed = headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    passed = [(k, v) for k, v in headers.items() if k.lower() in signed and k.lower() not in SIGNER_OWNED | {"host"}]
    return request.url, headers["Authorization"], passed


def compare_with_client():
    bucket = "tensorinit-models"
    for region, endpoint, path_style in PLACES:
        # The style tensorinit resolves (its default rule differs from botocore's "auto"), given to both.
        resolved = path_style if path_style is not None else endpoint is not None
        for credentials in CREDENTIALS:
            client = botocore_client(credentials, region, endpoint, resolved)
            for key in KEYS:
                name = (f"client {region} {endpoint or 'aws'} path_style={path_style} "
                        f"token={bool(credentials[2])} key={key!r}")
                url, authorization, passed = botocore_get_object(client, bucket, key)
                args = ["--s3", f"s3://{bucket}/", "--key", key]
                args += ["--endpoint", endpoint] if endpoint else []
                args += ["--path-style", "true" if path_style else "false"] if path_style is not None else []
                ours = tensorinit_sign(credentials, region, args, passed)
                check(name + " url", ours["url"] == url, f"tensorinit {ours['url']} botocore {url}")
                check(name + " authorization", ours["authorization"] == authorization,
                      f"\n  tensorinit {ours['authorization']}\n  botocore   {authorization}\n"
                      f"  canonical request (tensorinit):\n{ours['canonical_request']}")


class Recording(botocore.auth.S3SigV4Auth):
    """S3SigV4Auth that keeps the canonical request it signed."""

    def canonical_request(self, request):
        self.recorded = super().canonical_request(request)
        return self.recorded


def compare_with_auth():
    extra = [("If-Match", '"9b2cf535f27731c974343645a3985328-12"'), ("Range", "bytes=16777216-33554431"),
             ("X-Custom", "  runs   of   spaces  "), ("x-custom", "second value")]
    for credentials in CREDENTIALS:
        for key in KEYS:
            url = "http://127.0.0.1:9000/bucket/" + percent_encode(key, safe="/~")
            request = AWSRequest(method="GET", url=url)
            for name, value in extra:  # HTTPHeaders appends on assignment: duplicates stay separate
                request.headers[name] = value
            auth = Recording(Credentials(*credentials), "s3", "us-east-1")
            with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
                auth.add_auth(request)
            ours = tensorinit_sign(credentials, "us-east-1", ["--url", url], extra)
            label = f"auth token={bool(credentials[2])} key={key!r}"
            check(label + " canonical request", ours["canonical_request"] == auth.recorded,
                  f"\n--- tensorinit\n{ours['canonical_request']}\n--- botocore\n{auth.recorded}")
            check(label + " authorization", ours["authorization"] == request.headers["Authorization"],
                  f"{ours['authorization']} != {request.headers['Authorization']}")


def main():
    if not os.access(SIGN, os.X_OK):
        print(f"FAIL tensorinit_sigv4_sign not found at {SIGN} (set TENSORINIT_SIGV4_SIGN)", flush=True)
        return 1
    compare_with_client()
    compare_with_auth()
    expected = len(PLACES) * len(CREDENTIALS) * len(KEYS) * 2 + len(CREDENTIALS) * len(KEYS) * 2
    if checks != expected:
        print(f"FAIL ran {checks} checks, expected {expected}", flush=True)
        return 1
    print(f"{checks - failures}/{checks} comparisons with botocore {botocore.__version__} identical", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
