"""Local OBS: moto's S3 server behind a thin gate, and the emulator's own transfers.

The server runs in a child process (`python -m modelarts_operator.local.cloud.obs_server`): moto keeps
buckets in process-wide backends with globally unique bucket names, so a process of its own gives
every LocalCloud its own OBS, and stopping it discards exactly that state.

`esdk-obs-python` speaks S3 (signature v2/v4, path style) to moto. Moto checks no credentials, so
a WSGI gate in front of it does the part of OBS access control the workflow relies on: a request
must name the configured access key (signatures are not verified); anonymous requests may only
read the public bucket; nobody may write to the public bucket once it is seeded.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config
from moto.moto_server.werkzeug_app import MotoRequestHandler

from modelarts_operator import mnist

log = logging.getLogger(__name__)

PUBLIC_BUCKET = "modelarts-cnnorth1-market-dataset"
MNIST_PREFIX = "dataset-market/Mnist-Data-Set/"
_V2_AUTH = re.compile(r"^(?:AWS|OBS) (?P<ak>[^:\s]+):")
_V4_AUTH = re.compile(r"^AWS4-HMAC-SHA256 Credential=(?P<ak>[^/\s]+)/")
_WRITE_METHODS = {"PUT", "POST", "DELETE"}
READ_ONLY_TAG = "localcloud-read-only"


def _s3_error(start_response, status: str, code: str, message: str) -> list[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


class _Gate:
    """WSGI middleware: access key check and read-only buckets, then moto."""

    def __init__(self, app, access_key: str) -> None:
        self.app = app
        self.access_key = access_key
        self.read_only: set[str] = set()

    @staticmethod
    def _access_key(environ) -> str | None:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        match = _V2_AUTH.match(auth) or _V4_AUTH.match(auth)
        if match:
            return match["ak"]
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if "AWSAccessKeyId" in query:
            return query["AWSAccessKeyId"][0]
        if "X-Amz-Credential" in query:
            return query["X-Amz-Credential"][0].split("/")[0]
        return None

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path.startswith("/moto-api"):
            return _s3_error(start_response, "403 Forbidden", "AccessDenied", "Access Denied")
        bucket = path.lstrip("/").split("/", 1)[0]
        method = environ.get("REQUEST_METHOD", "GET")
        access_key = self._access_key(environ)
        if access_key is None:
            if bucket not in self.read_only or method in _WRITE_METHODS:
                return _s3_error(start_response, "403 Forbidden", "AccessDenied", "Anonymous access is not allowed")
        elif access_key != self.access_key:
            return _s3_error(
                start_response, "403 Forbidden", "InvalidAccessKeyId",
                "The access key Id you provided does not exist in our records.",
            )
        if bucket in self.read_only and method in _WRITE_METHODS:
            return _s3_error(start_response, "403 Forbidden", "AccessDenied", f"Bucket {bucket} is read-only")
        if method == "PUT" and bucket == PUBLIC_BUCKET and "tagging" in parse_qs(environ.get("QUERY_STRING", ""), True):
            self.read_only.add(bucket)  # the seeding is done: from now on nobody writes here
        return self.app(environ, start_response)


class _QuietHandler(MotoRequestHandler):
    def log_request(self, code="-", size="-") -> None:  # one line per S3 request is noise
        pass


def parse_obs_url(url: str) -> tuple[str, str]:
    """`/bucket/dir/`, `obs://bucket/dir/`, `s3://...` or `https://bucket.obs.<host>/dir` -> (bucket, "dir/")."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("an OBS path is required")
    url = url.strip()
    if url.startswith(("obs://", "s3://")):
        rest = url.split("://", 1)[1]
    elif url.startswith(("http://", "https://")):
        parts = urlsplit(url)
        host_bucket = parts.hostname.split(".obs.")[0] if parts.hostname and ".obs." in parts.hostname else None
        if host_bucket is None:
            raise ValueError(f"{url}: not an OBS URL (expected https://<bucket>.obs.<endpoint>/<path>)")
        rest = host_bucket + parts.path
    elif url.startswith("/"):
        rest = url[1:]
    else:
        raise ValueError(f"{url}: an OBS path looks like /bucket/path/ or obs://bucket/path/")
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ValueError(f"{url}: no bucket name")
    return bucket, key


class LocalObs:
    """The S3 server process plus a boto3 client for the emulator's downloads and uploads."""

    def __init__(self, access_key: str, secret_key: str, region: str) -> None:
        self._access_key = access_key
        self._secret_key = secret_key
        self._region = region
        self._process: subprocess.Popen | None = None
        self.endpoint = ""
        self.client = None

    def start(self, timeout: float = 60) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "modelarts_operator.local.cloud.obs_server"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        )
        # the access key travels on stdin, not the command line other users can read
        self._process.stdin.write(self._access_key + "\n")
        self._process.stdin.close()
        line = self._process.stdout.readline().strip()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the local OBS server did not start (said {line!r})")
        self.endpoint = line.split(" ", 1)[1]
        self.client = boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self._region,
            aws_access_key_id=self._access_key, aws_secret_access_key=self._secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()
        self._process = None

    def create_bucket(self, name: str, acl: str = "private") -> None:
        region = self.client.meta.region_name
        location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        self.client.create_bucket(Bucket=name, ACL=acl, **location)

    # -- the emulator's own transfers (blocking: call them from a worker thread) ---------------

    def download(self, url: str, dest: Path) -> int:
        """Copy every object under the OBS path into dest (keys relative to it); return the count."""
        bucket, prefix = parse_obs_url(url)
        dest.mkdir(parents=True, exist_ok=True)
        count = 0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key == prefix:  # the path named one object
                    relative = key.rsplit("/", 1)[-1]
                elif prefix and not prefix.endswith("/") and not key.startswith(prefix + "/"):
                    continue  # "/b/data" must not take "/b/database/..."
                else:
                    relative = key[len(prefix):].lstrip("/")
                if not relative or key.endswith("/") or ".." in Path(relative).parts:
                    continue  # folder markers, and keys that would escape dest
                target = dest / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                self.client.download_file(bucket, key, str(target))
                count += 1
        return count

    def upload(self, src: Path, url: str) -> int:
        """Copy every file below src to the OBS path; return the count."""
        bucket, prefix = parse_obs_url(url)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        count = 0
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            self.client.upload_file(str(path), bucket, prefix + path.relative_to(src).as_posix())
            count += 1
        return count

    def seed_public_bucket(self, work_dir: Path) -> None:
        """The tutorial's public data set: each MNIST file raw and `.gz`, then the bucket goes read-only."""
        gz_files = mnist.fetch_mnist(work_dir / "gz")
        raw_files = mnist.copy_raw(gz_files, work_dir / "raw")
        self.create_bucket(PUBLIC_BUCKET, acl="public-read")
        public = {"ACL": "public-read"}
        for name in gz_files:
            self.client.upload_file(str(gz_files[name]), PUBLIC_BUCKET, f"{MNIST_PREFIX}{name}.gz", ExtraArgs=public)
            self.client.upload_file(str(raw_files[name]), PUBLIC_BUCKET, f"{MNIST_PREFIX}{name}", ExtraArgs=public)
        shutil.rmtree(work_dir / "raw")
        self.client.put_bucket_tagging(Bucket=PUBLIC_BUCKET, Tagging={"TagSet": [{"Key": READ_ONLY_TAG, "Value": "true"}]})

    # -- persistence ------------------------------------------------------------------------

    def snapshot(self, folder: Path) -> None:
        """Write every bucket except the public one to folder/<bucket>/<key> (replacing its content)."""
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for bucket in self.client.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            if name == PUBLIC_BUCKET:
                continue
            (folder / name).mkdir()
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=name):
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/") or ".." in Path(item["Key"]).parts:
                        continue
                    target = folder / name / item["Key"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self.client.download_file(name, item["Key"], str(target))

    def restore(self, folder: Path) -> None:
        if not folder.is_dir():
            return
        for bucket_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            self.create_bucket(bucket_dir.name)
            self.upload(bucket_dir, f"/{bucket_dir.name}/")

