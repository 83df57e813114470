"""Fixtures: a LocalCloud per module, the real SDK and OBS clients pointed at it."""

from __future__ import annotations

import pytest
from localcloud.cloudkit import Harness

from support import local_cloud  # noqa: F401 - a fixture


@pytest.fixture
def lc(local_cloud) -> Harness:  # noqa: F811 - the fixture imported above
    local_cloud.set_faults(None)
    yield Harness(local_cloud)
    local_cloud.set_faults(None)

