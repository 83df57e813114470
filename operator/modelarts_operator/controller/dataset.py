"""MnistDataset: fetch and verify the four MNIST files, upload them to the target OBS folder."""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from modelarts_operator import mnist
from modelarts_operator.api.conditions import Reason, ready, synced
from modelarts_operator.api.kinds import MNIST_DATASET
from modelarts_operator.api.v1alpha1 import DatasetFile, MnistDatasetSpec, MnistDatasetStatus
from modelarts_operator.cloud import CloudError, ErrorKind, ObsStore, ObsUrl
from modelarts_operator.cloud.errors import OBS_CODES
from modelarts_operator.cloud.obs import sha256_file
from modelarts_operator.controller.base import KindController
from modelarts_operator.controller.context import Context, Outcome, Resource
from modelarts_operator.controller.errors import ResourceProblem

log = logging.getLogger(__name__)
_fetch_lock = threading.Lock()


@dataclass(frozen=True)
class LocalFile:
    path: Path
    size: int
    sha256: str


# Per source and process: every form of the four files, verified and hashed once. Without this each
# poll would re-download (Obs), re-verify, re-decompress and re-hash 120 MB to find nothing changed.
_prepared: dict[str, dict[str, LocalFile]] = {}


def _local_files(spec: MnistDatasetSpec, ctx: Context, obs: ObsStore) -> dict[str, LocalFile]:
    """Object name -> local file, for the objects the layout asks for."""
    source = spec.source
    key = hashlib.sha256(f"{source.type}|{source.url}|{source.obs_path}".encode()).hexdigest()[:12]
    cache = ctx.settings.work_dir / "mnist" / key
    with _fetch_lock:  # two datasets with one source fetch once
        prepared = _prepared.get(key)
        if prepared is None or not all(f.path.is_file() for f in prepared.values()):
            gz_files = _fetch(source, cache, ctx, obs)
            raw_files = mnist.copy_raw(gz_files, cache / "raw")
            prepared = {}
            for name in mnist.MNIST_FILES:
                for object_name, path in ((f"{name}.gz", gz_files[name]), (name, raw_files[name])):
                    prepared[object_name] = LocalFile(path, path.stat().st_size, sha256_file(path))
            _prepared[key] = prepared
    return {name: prepared[name] for name in target_files(spec)}


def _fetch(source, cache: Path, ctx: Context, obs: ObsStore) -> dict[str, Path]:
    """The four verified .gz files in a local cache, from the spec's source."""
    try:
        if source.type == "Download":
            return mnist.fetch_mnist(cache, local_dirs=[], zip_urls=[source.url])
        if source.type == "Local":
            return mnist.fetch_mnist(cache, local_dirs=ctx.settings.mnist_local_dirs, zip_urls=(), mirror_urls=())
        return mnist.fetch_mnist(cache, local_dirs=[_download_from_obs(obs, source.obs_path, cache / "from-obs")],
                                 zip_urls=(), mirror_urls=())
    except mnist.MnistError as exc:
        raise ResourceProblem(str(exc), Reason.SOURCE_UNAVAILABLE) from None


def _download_from_obs(obs: ObsStore, folder_url: str, staging: Path) -> Path:
    """Copy whichever form of each file the folder has (.gz preferred) into staging; fetch_mnist verifies."""
    folder = ObsUrl.parse(folder_url)
    try:
        present = {o.key[len(folder.key):] for o in obs.list(folder)}
    except CloudError as exc:
        if exc.kind is ErrorKind.NOT_FOUND:
            raise ResourceProblem(f"source folder {folder} does not exist (no bucket {folder.bucket})",
                                  Reason.SOURCE_UNAVAILABLE) from None
        raise
    missing = [name for name in mnist.MNIST_FILES if name not in present and f"{name}.gz" not in present]
    if missing:
        raise ResourceProblem(f"source folder {folder} lacks {', '.join(missing)} (raw or .gz)",
                              Reason.SOURCE_UNAVAILABLE)
    staging.mkdir(parents=True, exist_ok=True)
    for name in mnist.MNIST_FILES:
        for candidate in (f"{name}.gz", name):
            if candidate in present:
                (staging / candidate).write_bytes(obs.read(folder.join(candidate)))
                break
    return staging


def _forms(layout: str) -> tuple[bool, bool]:
    return layout in ("Raw", "Both"), layout in ("Gz", "Both")


def target_files(spec: MnistDatasetSpec) -> list[str]:
    """Object names this dataset owns under its target folder."""
    raw, gz = _forms(spec.layout)
    return [f"{name}{suffix}" for name in mnist.MNIST_FILES for suffix, wanted in (("", raw), (".gz", gz)) if wanted]


def _unchanged(res: Resource[MnistDatasetSpec, MnistDatasetStatus], obs: ObsStore) -> bool:
    """The recorded files are all in the target folder with their sizes: one LIST, no HEAD per file."""
    status = res.status
    if not status.files or status.observed_generation != res.generation:
        return False
    try:
        present = {o.key: o.size for o in obs.list(ObsUrl.parse(res.spec.target))}
    except CloudError as exc:
        if exc.kind is ErrorKind.NOT_FOUND:  # the bucket went
            return False
        raise
    target = ObsUrl.parse(res.spec.target)
    return all(present.get(target.join(f.name).key) == f.size for f in status.files)


class DatasetController(KindController):
    kind = MNIST_DATASET
    reasons = frozenset({Reason.UPLOADED, Reason.SOURCE_UNAVAILABLE})
    cloud_codes = OBS_CODES

    def reconcile(self, res: Resource[MnistDatasetSpec, MnistDatasetStatus], ctx: Context) -> Outcome:
        spec, status = res.spec, res.status
        cloud = ctx.cloud(res)
        target = ObsUrl.parse(spec.target)
        outcome = Outcome(conditions=[ready(Reason.UPLOADED, f"{status.file_count} verified files in {target}"),
                                      synced()])
        if _unchanged(res, cloud.obs):
            status.bytes_uploaded = 0
            return outcome
        if cloud.obs.ensure_bucket(target.bucket):
            status.message = f"created bucket {target.bucket}"
            ctx.checkpoint(res)
        files = _local_files(spec, ctx, cloud.obs)
        listed, sent = [], 0
        first_sync = not status.files
        if first_sync:
            ctx.begin_create(res, "objects", str(target))  # from here on, deletion has objects to delete
        for index, (object_name, local) in enumerate(files.items(), 1):
            if first_sync:  # show progress: the first upload takes a while
                status.message = f"uploading {object_name} ({index}/{len(files)})"
                ctx.checkpoint(res)
            sent += cloud.obs.upload_file(local.path, target.join(object_name), local.sha256)
            listed.append(DatasetFile(name=object_name, size=local.size, sha256=local.sha256))
        stale = sorted({f.name for f in status.files} - set(files))  # the layout changed: files of the old one
        for object_name in stale:
            cloud.obs.delete_object(target.join(object_name))
        if stale:
            outcome.event("Cleaned", f"deleted {len(stale)} objects of the previous layout from {target}")
        drifted = not first_sync and status.observed_generation == res.generation  # not a spec change
        if sent and drifted:
            outcome.event("Reuploaded", f"{sent} bytes re-uploaded to {target}: objects were missing or changed",
                          warning=True)
        elif sent:
            outcome.event("Uploaded", f"{len(listed)} files, {sent} bytes uploaded to {target}")
        counts = {name: mnist.MNIST_FILES[name].dims[0] for name in mnist.MNIST_FILES}
        status.obs_url, status.files, status.file_count, status.bytes_uploaded = str(target), listed, len(listed), sent
        res.created("objects", str(target))
        status.train_samples = counts["train-images-idx3-ubyte"]
        status.test_samples = counts["t10k-images-idx3-ubyte"]
        outcome.conditions = [ready(Reason.UPLOADED, f"{len(listed)} verified files in {target}"), synced()]
        return outcome

    def finalize(self, res: Resource[MnistDatasetSpec, MnistDatasetStatus], ctx: Context) -> str:
        """Delete the objects this dataset wrote, of its layout and of any earlier one (not the rest of the
        folder or bucket). Nothing recorded and no upload begun: nothing to delete, no cloud call."""
        target = ObsUrl.parse(res.spec.target)
        if not res.status.files and not res.is_pending("objects", str(target)):
            return f"nothing was uploaded to {target}"
        obs = ctx.cloud(res).obs
        names = sorted({*target_files(res.spec), *(f.name for f in res.status.files)})
        for object_name in names:
            obs.delete_object(target.join(object_name))
        return f"deleted {len(names)} objects from {target}"
