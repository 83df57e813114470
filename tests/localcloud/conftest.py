"""Fixtures: one LocalCloud for the session, the real SDK and OBS clients pointed at it."""

from __future__ import annotations

import pytest
from localcloud.cloudkit import Harness

from modelarts_operator.localcloud import LocalCloud


@pytest.fixture(scope="session")
def cloud():
    with LocalCloud(max_running_jobs=1) as cloud:
        yield cloud


@pytest.fixture
def lc(cloud) -> Harness:
    cloud.set_faults(None)
    yield Harness(cloud)
    cloud.set_faults(None)

