"""A LocalCloud for the cloud-client tests, and our clients pointed at it through a rotatable Secret."""

from __future__ import annotations

import pytest

from modelarts_operator.cloud import ModelArtsApi, ObsStore
from support import FAST_RETRIES, SecretData, local_cloud  # noqa: F401 - a fixture


@pytest.fixture
def secret(local_cloud) -> SecretData:  # noqa: F811 - the fixture imported above
    local_cloud.set_faults(None)
    return SecretData(local_cloud.credentials())


@pytest.fixture
def api(secret) -> ModelArtsApi:
    return ModelArtsApi(secret.provider(), FAST_RETRIES)


@pytest.fixture
def store(secret) -> ObsStore:
    return ObsStore(secret.provider(), FAST_RETRIES)
