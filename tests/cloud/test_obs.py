"""ObsStore on esdk-obs-python against an S3-compatible store (moto's server) on loopback."""

from __future__ import annotations

import os

import pytest
from moto.server import ThreadedMotoServer

from modelarts_operator.cloud.credentials import CloudCredentials
from modelarts_operator.cloud.errors import CloudError, ErrorKind
from modelarts_operator.cloud.obs import MULTIPART_THRESHOLD, PART_SIZE, ObsStore, ObsUrl


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{server._server.server_port}"
    server.stop()


@pytest.fixture
def store(s3_endpoint):
    creds = CloudCredentials.from_mapping({"ak": "AKLOCAL", "sk": "sk-local", "projectId": "p0", "region": "cn-north-4",
                                           "obsEndpoint": s3_endpoint})
    return ObsStore(lambda: creds)


def test_bucket_lifecycle(store):
    assert store.ensure_bucket("life-bucket") is True
    assert store.ensure_bucket("life-bucket") is False
    assert store.bucket_exists("life-bucket")
    assert store.delete_bucket("life-bucket") is True
    assert store.delete_bucket("life-bucket") is False
    assert not store.bucket_exists("life-bucket")


def test_upload_folder_skips_unchanged_content(store, tmp_path):
    src = tmp_path / "code"
    (src / "model").mkdir(parents=True)
    (src / "train.py").write_text("print('train')\n")
    (src / "model" / "config.json").write_text("{}\n")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "x.pyc").write_bytes(b"\0")
    store.ensure_bucket("code-bucket")
    target = ObsUrl.parse("obs://code-bucket/mnist-tensorflow-code/")
    first = store.upload_folder(src, target)
    assert sorted(first.uploaded) == ["model/config.json", "train.py"]
    assert first.bytes_sent == len("print('train')\n") + 3
    second = store.upload_folder(src, target)
    assert (second.uploaded, second.bytes_sent) == ([], 0)
    assert sorted(second.skipped) == ["model/config.json", "train.py"]
    (src / "train.py").write_text("print('changed')\n")
    third = store.upload_folder(src, target)
    assert third.uploaded == ["train.py"]
    keys = sorted(o.key for o in store.list(target))
    assert keys == ["mnist-tensorflow-code/model/config.json", "mnist-tensorflow-code/train.py"]
    assert store.read(target.join("train.py")) == b"print('changed')\n"


def test_large_file_goes_multipart_and_round_trips(store, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(MULTIPART_THRESHOLD + 1024))
    store.ensure_bucket("big-bucket")
    url = ObsUrl.parse("obs://big-bucket/data/big.bin")
    assert store.upload_file(big, url) == big.stat().st_size
    etag = next(iter(store.list(url))).etag
    parts = -(-big.stat().st_size // PART_SIZE)
    assert etag.endswith(f"-{parts}")  # a multipart upload's ETag counts its parts
    assert store.upload_file(big, url) == 0  # the recorded SHA-256 matches: nothing sent
    out = store.download_prefix(ObsUrl.parse("obs://big-bucket/data/"), tmp_path / "down")
    assert [p.name for p in out] == ["big.bin"]
    assert out[0].read_bytes() == big.read_bytes()


def test_list_pages_and_delete_prefix(store, tmp_path):
    store.ensure_bucket("many-bucket")
    for i in range(1003):  # more than one listing page
        store.upload_bytes(b"x", ObsUrl("many-bucket", f"p/{i:05d}"))
    store.upload_bytes(b"y", ObsUrl("many-bucket", "keep/a"))
    assert sum(1 for _ in store.list(ObsUrl("many-bucket", "p/"))) == 1003
    assert store.delete_prefix(ObsUrl("many-bucket", "p/")) == 1003
    assert [o.key for o in store.list(ObsUrl("many-bucket", ""))] == ["keep/a"]
    assert store.delete_prefix(ObsUrl("missing-bucket", "p/")) == 0


def test_missing_objects_are_not_found_errors(store):
    store.ensure_bucket("nf-bucket")
    with pytest.raises(CloudError) as caught:
        store.read(ObsUrl("nf-bucket", "nope"))
    assert caught.value.kind is ErrorKind.NOT_FOUND
    assert "NoSuchKey" in str(caught.value)
    assert store.stored_sha256(ObsUrl("nf-bucket", "nope")) is None


def test_unreachable_endpoint_is_transient_and_bounded(tmp_path):
    creds = CloudCredentials.from_mapping({"ak": "a", "sk": "s", "projectId": "p", "region": "cn-north-4",
                                           "obsEndpoint": "http://127.0.0.1:9"})
    from modelarts_operator.cloud.retry import RetryPolicy

    store = ObsStore(lambda: creds, RetryPolicy(attempts=2, base_delay_s=0.01))
    with pytest.raises(CloudError) as caught:
        store.bucket_exists("any-bucket")
    assert caught.value.kind is ErrorKind.TRANSIENT
