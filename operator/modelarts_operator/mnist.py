"""The MNIST data set as the ModelArts tutorial ships it ("Mnist-Data-Set"): read, verify, fetch.

IDX format: a 4-byte magic (two zero bytes, a type code, the number of dimensions), then one
big-endian uint32 per dimension, then the data. MNIST uses type 0x08 (unsigned byte) only.
Checksums are of the decompressed content, so raw and `.gz` copies verify alike.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import shutil
import struct
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelarts_operator.api.v1alpha1 import TUTORIAL_ZIP_URL

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08


@dataclass(frozen=True)
class MnistFile:
    name: str  # without ".gz"
    dims: tuple[int, ...]
    sha256: str  # of the decompressed file


MNIST_FILES: dict[str, MnistFile] = {
    f.name: f
    for f in (
        MnistFile(
            "train-images-idx3-ubyte",
            (60000, 28, 28),
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        MnistFile(
            "train-labels-idx1-ubyte",
            (60000,),
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        MnistFile(
            "t10k-images-idx3-ubyte",
            (10000, 28, 28),
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        MnistFile(
            "t10k-labels-idx1-ubyte",
            (10000,),
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    )
}

# The tutorial's own archive (TUTORIAL_ZIP_URL, an API default) first, then the standard mirrors
# (same files, gzip-compressed).
MIRROR_URLS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
DOWNLOAD_TIMEOUT_S = 60


class MnistError(ValueError):
    """A file is not a valid MNIST IDX file, or the data set cannot be fetched."""


@dataclass(frozen=True)
class IdxArray:
    """A parsed IDX file: its dimensions and the raw ubyte payload."""

    dims: tuple[int, ...]
    data: bytes

    @property
    def count(self) -> int:
        return self.dims[0]

    def to_numpy(self):
        import numpy as np  # lazy: the operator image has no numpy need

        return np.frombuffer(self.data, dtype=np.uint8).reshape(self.dims)


def decompress(content: bytes, name: str = "<bytes>") -> bytes:
    """Return the IDX bytes of a raw or gzip-compressed file."""
    if not content.startswith(GZIP_MAGIC):
        return content
    try:
        return gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as exc:
        raise MnistError(f"{name}: corrupt gzip data ({exc})") from exc


def parse_idx(content: bytes, name: str = "<bytes>") -> IdxArray:
    """Parse IDX bytes (raw or .gz), checking the magic number, dimensions and exact length."""
    raw = decompress(content, name)
    if len(raw) < 4:
        raise MnistError(f"{name}: too short for an IDX header ({len(raw)} bytes)")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != UBYTE or not 1 <= ndim <= 3:
        raise MnistError(
            f"{name}: bad magic number 0x{raw[:4].hex()} (want 0x000008 followed by 1-3 dimensions)"
        )
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise MnistError(f"{name}: truncated header: {ndim} dimensions need {header_len} bytes, have {len(raw)}")
    dims = struct.unpack(f">{ndim}I", raw[4:header_len])
    payload_len = 1
    for d in dims:
        payload_len *= d
    if len(raw) - header_len < payload_len:
        raise MnistError(
            f"{name}: truncated: dimensions {dims} need {payload_len} data bytes, have {len(raw) - header_len}"
        )
    if len(raw) - header_len > payload_len:
        raise MnistError(
            f"{name}: {len(raw) - header_len - payload_len} unexpected bytes after the data of dimensions {dims}"
        )
    return IdxArray(dims=tuple(dims), data=raw[header_len:])


def canonical_name(filename: str) -> str:
    """`train-images-idx3-ubyte.gz` -> `train-images-idx3-ubyte`; unknown names raise."""
    base = filename[:-3] if filename.endswith(".gz") else filename
    if base not in MNIST_FILES:
        raise MnistError(f"{filename}: not one of the MNIST files {sorted(MNIST_FILES)}")
    return base


def verify(name: str, content: bytes) -> IdxArray:
    """Check a file (raw or .gz) against the known dimensions and SHA-256 of its decompressed content."""
    spec = MNIST_FILES[canonical_name(name)]
    raw = decompress(content, name)
    digest = hashlib.sha256(raw).hexdigest()
    array = parse_idx(raw, name)
    if array.dims != spec.dims:
        raise MnistError(f"{name}: dimensions {array.dims}, expected {spec.dims}")
    if digest != spec.sha256:
        raise MnistError(f"{name}: SHA-256 {digest} does not match the published {spec.sha256}")
    return array


def read_idx(path: str | os.PathLike) -> IdxArray:
    """Read and parse an IDX file, raw or .gz; verified too when it is one of the MNIST files."""
    path = Path(path)
    content = path.read_bytes()
    try:
        canonical_name(path.name)
    except MnistError:
        return parse_idx(content, path.name)
    return verify(path.name, content)


# --- fetching -----------------------------------------------------------------------------------


def default_local_dirs() -> list[Path]:
    """Where a copy may already be: $MNIST_DIR, then `../shared/datasets/mnist` beside the project."""
    dirs = []
    if os.environ.get("MNIST_DIR"):
        dirs.append(Path(os.environ["MNIST_DIR"]))
    project_root = Path(__file__).resolve().parents[2]
    for root in (project_root, Path.cwd()):
        candidate = root.parent / "shared" / "datasets" / "mnist"
        if candidate not in dirs:
            dirs.append(candidate)
    return dirs


def _find_in_folder(folder: Path, name: str) -> bytes | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate.read_bytes()
    return None


def _download(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "modelarts-operator"})
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
        return response.read()


def _from_zip(archive: bytes) -> dict[str, bytes]:
    """The tutorial's zip holds each file raw and as .gz, possibly in a folder: take any copy."""
    found: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        for member in zf.namelist():
            base = Path(member).name
            try:
                name = canonical_name(base)
            except MnistError:
                continue
            found.setdefault(name, zf.read(member))
    return found


def _write_gz(dest: Path, name: str, content: bytes) -> Path:
    """Store verified content as `<name>.gz` (deterministic: no timestamp in the header)."""
    target = dest / f"{name}.gz"
    data = content if content.startswith(GZIP_MAGIC) else gzip.compress(content, compresslevel=9, mtime=0)
    with tempfile.NamedTemporaryFile(dir=dest, delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, target)
    return target


def fetch_mnist(
    dest: str | os.PathLike,
    local_dirs: Sequence[str | os.PathLike] | None = None,
    zip_urls: Iterable[str] = (TUTORIAL_ZIP_URL,),
    mirror_urls: Iterable[str] = MIRROR_URLS,
) -> dict[str, Path]:
    """Put the four verified MNIST files into `dest` as `.gz`; return {name: path}.

    Sources are tried in order: files already in `dest`, local folders, the tutorial's zip, then
    each mirror. A file is taken from the first source that has a copy passing `verify`. When
    some file cannot be had, one MnistError names every source tried and why it failed.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    folders = [dest] + [Path(d) for d in (default_local_dirs() if local_dirs is None else local_dirs)]
    wanted = set(MNIST_FILES)
    result: dict[str, Path] = {}
    failures: list[str] = []

    def accept(name: str, content: bytes, source: str) -> None:
        try:
            verify(name, content)
        except MnistError as exc:
            failures.append(f"{source}: {exc}")
            return
        result[name] = _write_gz(dest, name, content)
        log.info("MNIST %s taken from %s", name, source)

    for folder in folders:
        if not folder.is_dir():
            failures.append(f"{folder}: no such folder")
            continue
        for name in sorted(wanted - result.keys()):
            content = _find_in_folder(folder, name)
            if content is None:
                failures.append(f"{folder}: no {name}[.gz]")
            else:
                accept(name, content, str(folder))
    for url in zip_urls:
        if wanted <= result.keys():
            break
        try:
            members = _from_zip(_download(url))
        except (OSError, urllib.error.URLError, zipfile.BadZipFile, ValueError) as exc:
            failures.append(f"{url}: {exc}")
            continue
        for name in sorted(wanted - result.keys()):
            if name in members:
                accept(name, members[name], url)
            else:
                failures.append(f"{url}: archive has no {name}")
    for base in mirror_urls:
        for name in sorted(wanted - result.keys()):
            url = base.rstrip("/") + f"/{name}.gz"
            try:
                accept(name, _download(url), url)
            except (OSError, urllib.error.URLError, ValueError) as exc:
                failures.append(f"{url}: {exc}")
    missing = wanted - result.keys()
    if missing:
        raise MnistError(
            f"could not fetch MNIST file(s) {sorted(missing)}; sources tried:\n  " + "\n  ".join(failures)
        )
    return {name: result[name] for name in MNIST_FILES}


def copy_raw(files: dict[str, Path], dest: str | os.PathLike) -> dict[str, Path]:
    """Write decompressed copies of fetched files (the tutorial's bucket holds both forms)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, path in files.items():
        target = dest / name
        with gzip.open(path, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        out[name] = target
    return out
