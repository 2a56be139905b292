"""moto_server on loopback with authentication enforced, for the s3 tests (test_remote_s3.py,
test_caches.py) and the chaos harness. moto enforces SigV4 for every request after the first
INITIAL_NO_AUTH_ACTION_COUNT ones, which moto_user spends creating an IAM user with an access key
and an allow-all policy."""
import json
import os
import socket
import subprocess
import time

from testkit import free_port


def start_moto(log_dir):
    """Starts moto_server (its log in LOG_DIR/moto.log); returns (process, endpoint URL)."""
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="4", MOTO_PORT=str(port))
    log = open(os.path.join(log_dir, "moto.log"), "w")
    server = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log, env=env)
    # moto_server imports for seconds; on a loaded 2-core machine, for much longer. Wait until it
    # listens or exits, with a limit far above either.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and server.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("moto_server did not start; see " + os.path.join(log_dir, "moto.log"))


def moto_user(endpoint, name):
    """An IAM user with an allow-all policy on moto (its first, unauthenticated actions): its access key
    as boto3 client keywords."""
    import boto3  # noqa: PLC0415: only where an s3 test runs
    admin = dict(aws_access_key_id="AKIAADMIN", aws_secret_access_key="admin", region_name="us-east-1",
                 endpoint_url=endpoint)
    iam = boto3.client("iam", **admin)
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return dict(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])


def moto_env(creds):
    """This environment with moto_user's key as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, and no
    AWS_SESSION_TOKEN (an ambient one would be paired with the key, and refused)."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID=creds["aws_access_key_id"],
               AWS_SECRET_ACCESS_KEY=creds["aws_secret_access_key"])
    env.pop("AWS_SESSION_TOKEN", None)
    return env
