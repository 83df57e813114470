"""OBS through esdk-obs-python: URLs, buckets, idempotent uploads, listing, downloads, prefix deletes."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from modelarts_operator.cloud.credentials import CloudCredentials, CredentialsProvider
from modelarts_operator.cloud.errors import CloudError, ErrorKind, from_obs_response, none_if_gone
from modelarts_operator.cloud.retry import DEFAULT_POLICY, RetryPolicy, endpoint_slot, with_retries

log = logging.getLogger(__name__)

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IP_LIKE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
MULTIPART_THRESHOLD = 64 * 1024 * 1024  # above this, upload in parts (resumable, parallel; parts >= 5 MiB)
PART_SIZE = 16 * 1024 * 1024
SHA256_META = "sha256"  # user metadata holding the content hash: how a re-run knows to skip a file
LIST_PAGE = 1000


@dataclass(frozen=True)
class ObsUrl:
    """`obs://bucket/path/`. `key` has no leading slash; a folder's key ends with "/"."""

    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, url: str) -> ObsUrl:
        parsed = urlparse(url)
        if parsed.scheme != "obs" or not parsed.netloc:
            raise ValueError(f"{url!r} is not an OBS URL: write obs://<bucket>/<path>")
        bucket = parsed.netloc
        if not BUCKET_NAME.match(bucket) or ".." in bucket or IP_LIKE.match(bucket):
            raise ValueError(
                f"{url!r}: bucket name {bucket!r} must be 3-63 lowercase letters, digits, dots or hyphens, "
                "start and end with a letter or digit, and not look like an IP address"
            )
        if parsed.query or parsed.fragment:
            raise ValueError(f"{url!r}: an OBS URL has no query or fragment")
        key = parsed.path.lstrip("/")
        if "//" in key:
            raise ValueError(f"{url!r}: empty path segment")
        return cls(bucket, key)

    @classmethod
    def from_api_path(cls, path: str) -> ObsUrl:
        """ModelArts writes OBS locations as `/bucket/path/`."""
        return cls.parse("obs://" + path.lstrip("/"))

    def folder(self) -> ObsUrl:
        return self if not self.key or self.key.endswith("/") else ObsUrl(self.bucket, self.key + "/")

    def join(self, *parts: str) -> ObsUrl:
        return ObsUrl(self.bucket, self.folder().key + "/".join(p.strip("/") for p in parts))

    @property
    def api_path(self) -> str:
        return f"/{self.bucket}/{self.key}"

    def __str__(self) -> str:
        return f"obs://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class ObsObject:
    key: str
    size: int
    etag: str


@dataclass
class UploadReport:
    uploaded: list[str]
    skipped: list[str]
    bytes_sent: int


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


class ObsStore:
    """OBS operations with retries; credentials are fetched from the provider on every call."""

    def __init__(self, credentials: CredentialsProvider, policy: RetryPolicy = DEFAULT_POLICY):
        self._credentials = credentials
        self._policy = policy
        self._clients: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def _client(self):
        creds: CloudCredentials = self._credentials()
        key = creds.fingerprint()
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                from obs import ObsClient

                for old in self._clients.values():
                    old.close()
                self._clients.clear()
                server = creds.obs_server
                local = urlparse(server).hostname in ("127.0.0.1", "localhost", "::1")
                # Real OBS: virtual-host style with its own signature; the local S3 store: path style.
                client = ObsClient(
                    access_key_id=creds.ak.get_secret_value(),
                    secret_access_key=creds.sk.get_secret_value(),
                    server=server,
                    path_style=local,
                    signature="v4" if local else "obs",
                    region=creds.region,
                )
                self._clients[key] = client
            return client, creds

    def _call(self, operation: str, fn: Callable):
        """Invoke fn(client); esdk returns failures as responses, so turn them into CloudErrors here."""

        def attempt():
            client, creds = self._client()
            with endpoint_slot(creds.obs_server, self._policy.max_concurrent_per_endpoint):
                try:
                    response = fn(client)
                except Exception as exc:  # esdk raises only for client-side trouble (connection, files)
                    raise CloudError(operation, ErrorKind.TRANSIENT, f"{type(exc).__name__}: {exc}") from None
            if response.status is None or not 200 <= response.status < 300:
                raise from_obs_response(operation, response)
            return response

        return with_retries(operation, attempt, self._policy, service="obs")

    # --- buckets -------------------------------------------------------------------------------

    def bucket_exists(self, bucket: str) -> bool:
        return none_if_gone(lambda: self._call("headBucket", lambda c: c.headBucket(bucket))) is not None

    def ensure_bucket(self, bucket: str) -> bool:
        """Create the bucket unless it exists; True when this call created it."""
        if self.bucket_exists(bucket):
            return False
        region = self._credentials().region
        try:
            self._call("createBucket", lambda c: c.createBucket(bucket, location=region))
        except CloudError as exc:
            if exc.code == "BucketAlreadyOwnedByYou":  # a concurrent create won the race: fine
                return False
            raise
        return True

    def delete_bucket(self, bucket: str) -> bool:
        """Delete an empty bucket; False when it was already gone."""
        return none_if_gone(lambda: self._call("deleteBucket", lambda c: c.deleteBucket(bucket))) is not None

    # --- objects -------------------------------------------------------------------------------

    def list(self, url: ObsUrl) -> Iterator[ObsObject]:
        marker = None
        while True:
            response = self._call(
                "listObjects",
                lambda c, m=marker: c.listObjects(url.bucket, prefix=url.key or None, marker=m, max_keys=LIST_PAGE),
            )
            body = response.body
            for item in body.contents or []:
                yield ObsObject(item.key, int(item.size or 0), (item.etag or "").strip('"'))
            if not body.is_truncated:
                return
            marker = body.next_marker or (body.contents[-1].key if body.contents else None)
            if marker is None:
                return

    def stored_sha256(self, url: ObsUrl) -> str | None:
        """The content hash recorded at upload, or None when the object or the record is missing."""
        response = none_if_gone(lambda: self._call("getObjectMetadata",
                                                   lambda c: c.getObjectMetadata(url.bucket, url.key)))
        if response is None:
            return None
        headers = {k.lower(): v for k, v in (response.header or [])}
        return headers.get(SHA256_META) or headers.get(f"x-obs-meta-{SHA256_META}") or headers.get(f"x-amz-meta-{SHA256_META}")

    def upload_file(self, path: str | os.PathLike, url: ObsUrl, digest: str | None = None) -> int:
        """Upload one file unless the stored copy has the same SHA-256; return the bytes sent."""
        path = Path(path)
        digest = digest or sha256_file(path)
        if self.stored_sha256(url) == digest:
            return 0
        size = path.stat().st_size
        metadata = {SHA256_META: digest}
        if size > MULTIPART_THRESHOLD:
            self._call("uploadFile", lambda c: c.uploadFile(
                url.bucket, url.key, str(path), partSize=PART_SIZE, taskNum=2, metadata=metadata))
        else:
            self._call("putFile", lambda c: c.putFile(url.bucket, url.key, str(path), metadata=metadata))
        return size

    def upload_bytes(self, content: bytes, url: ObsUrl) -> int:
        digest = hashlib.sha256(content).hexdigest()
        if self.stored_sha256(url) == digest:
            return 0
        self._call("putContent", lambda c: c.putContent(url.bucket, url.key, content, metadata={SHA256_META: digest}))
        return len(content)

    def upload_folder(self, folder: str | os.PathLike, url: ObsUrl) -> UploadReport:
        """Mirror a local folder under `url` (files only; nothing remote is deleted)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder")
        report = UploadReport([], [], 0)
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            relative = path.relative_to(folder).as_posix()
            sent = self.upload_file(path, url.join(relative))
            (report.uploaded if sent else report.skipped).append(relative)
            report.bytes_sent += sent
        return report

    def read(self, url: ObsUrl) -> bytes:
        response = self._call("getObject", lambda c: c.getObject(url.bucket, url.key, loadStreamInMemory=True))
        return response.body.buffer

    def download_prefix(self, url: ObsUrl, dest: str | os.PathLike) -> list[Path]:
        """Download every object under the folder `url` into dest, keeping relative paths."""
        dest = Path(dest)
        prefix = url.folder()
        written = []
        for obj in self.list(prefix):
            relative = obj.key[len(prefix.key):]
            if not relative or relative.endswith("/"):
                continue
            target = (dest / relative).resolve()
            if dest.resolve() not in target.parents:
                raise CloudError("getObject", ErrorKind.PERMANENT, f"object key {obj.key!r} escapes the target folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            self._call("getObject", lambda c, k=obj.key, t=target: c.getObject(prefix.bucket, k, downloadPath=str(t)))
            written.append(target)
        return written

    def delete_object(self, url: ObsUrl) -> None:
        """Delete one object; OBS answers 204 whether or not it existed (a missing bucket: nothing to do)."""
        none_if_gone(lambda: self._call("deleteObject", lambda c: c.deleteObject(url.bucket, url.key)))

    def delete_prefix(self, url: ObsUrl) -> int:
        """Delete every object under `url`; returns how many. Already-gone objects count as deleted."""
        count = 0
        keys = none_if_gone(lambda: [obj.key for obj in self.list(url)]) or []  # no bucket: nothing to delete
        for key in keys:
            self._call("deleteObject", lambda c, k=key: c.deleteObject(url.bucket, k))
            count += 1
        return count
