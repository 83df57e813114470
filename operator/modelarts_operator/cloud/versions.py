"""The version folders (V0001, V0002, ...) that training runs write under one output folder, and their
ownership: several TrainingJobs may share an output folder, and each must get a version of its own.

A job reserves a version by writing a claim object `<output>/Vnnnn/.claim-<owner>` and then listing
that folder's claims: it owns the version only when its claim is the only one. OBS lists what was
written before (read-after-write consistency), so of two claimants at least the later one sees the
other and steps back to try the next number: two owners of one version are impossible. The claim
stays in the folder, so a job that crashed after reserving finds its version again by its owner id,
and deletes nothing but that folder.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable

from modelarts_operator.cloud.errors import CloudError, ErrorKind
from modelarts_operator.cloud.obs import ObsObject, ObsStore, ObsUrl

VERSION_FOLDER = re.compile(r"V[0-9]{4}")
CLAIM_PREFIX = ".claim-"
RESERVE_ATTEMPTS = 8


def next_version(existing_folders: Iterable[str]) -> str:
    """The next after the highest version present (other names ignored)."""
    numbers = [int(name[1:]) for name in existing_folders if VERSION_FOLDER.fullmatch(name)]
    return f"V{max(numbers, default=0) + 1:04d}"


def _relative(output: ObsUrl, objects: Iterable[ObsObject]) -> list[str]:
    return [obj.key[len(output.key):] for obj in objects]


def claimed_version(relative_keys: Iterable[str], owner: str) -> str | None:
    """The version folder holding `owner`'s claim, if any."""
    for key in relative_keys:
        folder, _, name = key.partition("/")
        if name == CLAIM_PREFIX + owner and VERSION_FOLDER.fullmatch(folder):
            return folder
    return None


def find_version(store: ObsStore, output: ObsUrl, owner: str) -> str | None:
    """The version `owner` reserved under `output` (None when it reserved none, or the bucket is gone)."""
    output = output.folder()
    if not store.bucket_exists(output.bucket):
        return None
    return claimed_version(_relative(output, store.list(output)), owner)


def reserve_version(store: ObsStore, output: ObsUrl, owner: str, pause_s: float = 0.2) -> str:
    """Reserve the next version folder under `output` for `owner` (its own earlier reservation if any)."""
    output = output.folder()
    for _ in range(RESERVE_ATTEMPTS):
        keys = _relative(output, store.list(output))
        mine = claimed_version(keys, owner)
        if mine:
            return mine
        version = next_version(key.split("/", 1)[0] for key in keys)
        folder = output.join(version).folder()
        claim = folder.join(CLAIM_PREFIX + owner)
        store.upload_bytes(owner.encode(), claim)
        claims = [key for key in _relative(folder, store.list(folder)) if key.startswith(CLAIM_PREFIX)]
        if claims == [CLAIM_PREFIX + owner]:
            return version
        store.delete_object(claim)  # another job claimed it too: step back, try again after a random pause
        time.sleep(random.uniform(0, pause_s))
    raise CloudError("reserveVersion", ErrorKind.TRANSIENT,
                     f"could not reserve a version folder under {output} after {RESERVE_ATTEMPTS} attempts "
                     "(other jobs keep claiming the same numbers)")
