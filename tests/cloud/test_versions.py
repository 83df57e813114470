"""Output version folders: numbering, and ownership when several jobs share one output folder."""

from __future__ import annotations

import threading

from modelarts_operator.cloud.obs import ObsUrl
from modelarts_operator.cloud.versions import CLAIM_PREFIX, find_version, next_version, reserve_version

OUTPUT = ObsUrl.parse("obs://versions-test/out/")


def test_next_version():
    assert next_version([]) == "V0001"
    assert next_version(["V0001", "V0003", "notes", "V12", "V00001", "v0009"]) == "V0004"


def test_jobs_reserving_at_once_get_distinct_versions(store):
    """Eight owners race for versions of one folder at the same moment: each gets its own."""
    store.ensure_bucket(OUTPUT.bucket)
    owners = [f"uid-{i}" for i in range(8)]
    got: dict[str, str] = {}
    start = threading.Barrier(len(owners))

    def reserve(owner: str) -> None:
        start.wait()
        got[owner] = reserve_version(store, OUTPUT, owner)

    threads = [threading.Thread(target=reserve, args=(owner,)) for owner in owners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(got.values())) == len(owners), got
    # each folder holds exactly one claim: its owner's
    for owner, version in got.items():
        keys = [o.key for o in store.list(OUTPUT.join(version).folder())]
        assert keys == [OUTPUT.join(version, CLAIM_PREFIX + owner).key], keys
        assert find_version(store, OUTPUT, owner) == version


def test_a_reservation_survives_a_crash_and_skips_used_folders(store):
    """The same owner asking again (the operator restarted) gets its version back; a folder written
    without claims (an older run) is never reused."""
    output = OUTPUT.join("again").folder()
    store.ensure_bucket(output.bucket)
    store.upload_bytes(b"old model", output.join("V0001", "model", "saved_model.pb"))
    first = reserve_version(store, output, "uid-a")
    assert first == "V0002"
    assert reserve_version(store, output, "uid-a") == first
    assert reserve_version(store, output, "uid-b") == "V0003"
    assert find_version(store, output, "uid-c") is None
    assert find_version(store, ObsUrl.parse("obs://no-such-bucket-here/out/"), "uid-a") is None
