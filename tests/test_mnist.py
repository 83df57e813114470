"""IDX parsing, checksum verification and the fetch chain (local folder, zip URL, mirrors)."""

from __future__ import annotations

import gzip
import http.server
import io
import shutil
import struct
import threading
import zipfile
from pathlib import Path

import pytest

from modelarts_operator import mnist

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist"
LABELS = "t10k-labels-idx1-ubyte"


def test_reads_every_real_file_raw_and_gz(mnist_dir, tmp_path):
    for name, spec in mnist.MNIST_FILES.items():
        gz = mnist_dir / f"{name}.gz"
        array = mnist.read_idx(gz)
        assert array.dims == spec.dims
        raw = tmp_path / name
        raw.write_bytes(gzip.decompress(gz.read_bytes()))
        assert mnist.read_idx(raw).data == array.data
    labels = mnist.read_idx(mnist_dir / f"{LABELS}.gz").to_numpy()
    assert list(labels[:5]) == [7, 2, 1, 0, 4]


def test_truncated_file_is_rejected(mnist_dir):
    raw = gzip.decompress((mnist_dir / f"{LABELS}.gz").read_bytes())
    with pytest.raises(mnist.MnistError, match="truncated: dimensions \\(10000,\\) need 10000 data bytes, have 9000"):
        mnist.parse_idx(raw[:8 + 9000], LABELS)
    with pytest.raises(mnist.MnistError, match="truncated header"):
        mnist.parse_idx(raw[:6], LABELS)
    with pytest.raises(mnist.MnistError, match="corrupt gzip"):
        mnist.parse_idx((mnist_dir / f"{LABELS}.gz").read_bytes()[:500], LABELS)


def test_wrong_magic_and_trailing_bytes_are_rejected(mnist_dir):
    raw = gzip.decompress((mnist_dir / f"{LABELS}.gz").read_bytes())
    with pytest.raises(mnist.MnistError, match="bad magic number 0x00000d01"):
        mnist.parse_idx(b"\x00\x00\x0d\x01" + raw[4:], LABELS)
    with pytest.raises(mnist.MnistError, match="3 unexpected bytes"):
        mnist.parse_idx(raw + b"abc", LABELS)


def test_checksum_and_dimension_mismatch(mnist_dir):
    raw = bytearray(gzip.decompress((mnist_dir / f"{LABELS}.gz").read_bytes()))
    raw[100] = (raw[100] + 1) % 10
    with pytest.raises(mnist.MnistError, match="SHA-256 .* does not match"):
        mnist.verify(LABELS, bytes(raw))
    small = struct.pack(">HBBI", 0, 8, 1, 3) + b"\x01\x02\x03"
    assert mnist.parse_idx(small).dims == (3,)
    with pytest.raises(mnist.MnistError, match="dimensions \\(3,\\), expected \\(10000,\\)"):
        mnist.verify(LABELS, small)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_folder(tmp_path):
    """A real HTTP server on loopback serving a folder, standing in for the public URLs."""
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **kw: _QuietHandler(*a, directory=str(root), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetch_prefers_local_folder(tmp_path):
    files = mnist.fetch_mnist(tmp_path / "dest", local_dirs=[SHARED], zip_urls=(), mirror_urls=())
    assert sorted(files) == sorted(mnist.MNIST_FILES)
    for name, path in files.items():
        assert path.name == f"{name}.gz"
        mnist.verify(path.name, path.read_bytes())


def test_fetch_downloads_from_the_tutorial_zip(tmp_path, http_folder, mnist_dir):
    root, url = http_folder
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:  # the tutorial's archive: both forms, in a folder
        for name in mnist.MNIST_FILES:
            gz = (mnist_dir / f"{name}.gz").read_bytes()
            zf.writestr(f"Mnist-Data-Set/{name}.gz", gz)
            zf.writestr(f"Mnist-Data-Set/{name}", gzip.decompress(gz))
    (root / "Mnist-Data-Set.zip").write_bytes(buffer.getvalue())
    files = mnist.fetch_mnist(tmp_path / "dest", local_dirs=[], zip_urls=[f"{url}/Mnist-Data-Set.zip"], mirror_urls=())
    assert all(mnist.read_idx(p).count in (60000, 10000) for p in files.values())


def test_fetch_falls_back_to_a_mirror_and_skips_bad_copies(tmp_path, http_folder, mnist_dir):
    root, url = http_folder
    (root / "bad").mkdir()
    (root / "good").mkdir()
    for name in mnist.MNIST_FILES:
        shutil.copy(mnist_dir / f"{name}.gz", root / "good" / f"{name}.gz")
        (root / "bad" / f"{name}.gz").write_bytes(gzip.compress(b"not idx"))
    files = mnist.fetch_mnist(
        tmp_path / "dest", local_dirs=[], zip_urls=[f"{url}/missing.zip"], mirror_urls=[f"{url}/bad/", f"{url}/good/"]
    )
    assert sorted(files) == sorted(mnist.MNIST_FILES)


def test_fetch_failure_names_every_source(tmp_path, http_folder):
    _, url = http_folder
    with pytest.raises(mnist.MnistError) as caught:
        mnist.fetch_mnist(
            tmp_path / "dest", local_dirs=[tmp_path / "nowhere"], zip_urls=[f"{url}/missing.zip"], mirror_urls=[f"{url}/m/"]
        )
    message = str(caught.value)
    assert "could not fetch MNIST file(s)" in message
    assert f"{tmp_path / 'nowhere'}: no such folder" in message
    assert f"{url}/missing.zip: HTTP Error 404" in message
    assert f"{url}/m/train-images-idx3-ubyte.gz: HTTP Error 404" in message


def test_fetch_reuses_files_already_in_dest(tmp_path, mnist_dir):
    dest = tmp_path / "dest"
    shutil.copytree(mnist_dir, dest)
    files = mnist.fetch_mnist(dest, local_dirs=[], zip_urls=(), mirror_urls=())
    assert sorted(files) == sorted(mnist.MNIST_FILES)
