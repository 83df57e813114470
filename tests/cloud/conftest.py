"""A LocalCloud for the cloud-client tests, and our clients pointed at it through a rotatable Secret."""

from __future__ import annotations

import pytest

from modelarts_operator.cloud import ModelArtsApi, ObsStore
from modelarts_operator.localcloud import LocalCloud
from support import FAST_RETRIES, SecretData


@pytest.fixture(scope="module")
def local_cloud():
    with LocalCloud(max_running_jobs=1) as cloud:
        yield cloud


@pytest.fixture
def secret(local_cloud) -> SecretData:
    local_cloud.set_faults(None)
    return SecretData(local_cloud.credentials())


@pytest.fixture
def api(secret) -> ModelArtsApi:
    return ModelArtsApi(secret.provider(), FAST_RETRIES)


@pytest.fixture
def store(secret) -> ObsStore:
    return ObsStore(secret.provider(), FAST_RETRIES)
