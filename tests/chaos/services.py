"""Remote sources for the chaos harness, started once per run and only when a scenario needs them:
nginx (tests/tools/nginx.sh), the fault server (tests/tools/fault_server.py, rules over stdin)
and moto_server (S3 with authentication enforced: tests/tools/moto_s3.py).
Every one listens on 127.0.0.1 only and serves WORK/www."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from moto_s3 import moto_user, start_moto  # noqa: E402


class Services:
    def __init__(self, work, tests_dir):
        self.work, self.tests_dir = work, tests_dir
        self.www = os.path.join(work, "www")
        os.makedirs(self.www, exist_ok=True)
        self.nginx_port = None
        self.fault = None
        self.fault_port = None
        self.moto = None
        self.s3 = None
        self.s3_creds = None
        self.uploaded = set()
        self.available = {"nginx": shutil.which("nginx") or os.path.exists("/usr/sbin/nginx"),
                          "moto": shutil.which("moto_server") is not None and _has_boto3()}

    def publish(self, model, prefix):
        """Copies the model's files under www/PREFIX (once per prefix); returns the directory."""
        dest = os.path.join(self.www, prefix)
        if not os.path.isdir(dest):
            tmp = dest + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(model.root, tmp)
            os.rename(tmp, dest)
        return dest

    def nginx(self):
        if self.nginx_port is None:
            out = subprocess.run(["bash", os.path.join(self.tests_dir, "tools", "nginx.sh"), "start", self.www,
                                  os.path.join(self.work, "nginx")], capture_output=True, text=True, check=True,
                                 timeout=60)
            self.nginx_port = int(out.stdout.split()[0])
        return f"http://127.0.0.1:{self.nginx_port}"

    def fault_server(self):
        if self.fault is None:
            self.fault = subprocess.Popen([sys.executable, os.path.join(self.tests_dir, "tools", "fault_server.py"),
                                           self.www, "--stdin-control"], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True)
            self.fault_port = int(self.fault.stdout.readline())
            self.fault.stdout.readline()
        return f"http://127.0.0.1:{self.fault_port}"

    def fault_command(self, line):
        self.fault_server()
        self.fault.stdin.write(line + "\n")
        self.fault.stdin.flush()
        answer = self.fault.stdout.readline().strip()
        if line.split()[0] != "log" and answer != "ok":
            raise RuntimeError(f"fault_server: {line!r}: {answer}")
        return answer

    def moto_endpoint(self):
        if self.moto is None:
            import boto3  # noqa: PLC0415: only when an s3 scenario runs
            self.moto, endpoint = start_moto(self.work)
            creds = moto_user(endpoint, "chaos")
            self.s3_creds = (creds["aws_access_key_id"], creds["aws_secret_access_key"])
            self.s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint, **creds)
            self.s3.create_bucket(Bucket="chaos")
            self.s3_endpoint = endpoint
        return self.s3_endpoint

    def s3_publish(self, model, prefix):
        self.moto_endpoint()
        if prefix not in self.uploaded:
            for f in model.files:
                self.s3.upload_file(os.path.join(model.root, f), "chaos", f"{prefix}/{f}")
            self.uploaded.add(prefix)
        return f"s3://chaos/{prefix}/"

    def close(self):
        if self.nginx_port is not None:
            subprocess.run(["bash", os.path.join(self.tests_dir, "tools", "nginx.sh"), "stop",
                            os.path.join(self.work, "nginx")], capture_output=True, timeout=60)
        if self.fault is not None:
            self.fault.stdin.close()
            self.fault.wait(timeout=30)
        if self.moto is not None:
            self.moto.terminate()
            self.moto.wait(timeout=30)


def _has_boto3():
    try:
        import boto3  # noqa: F401, PLC0415
        return True
    except ImportError:
        return False
