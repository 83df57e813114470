"""Shared fixtures: the real MNIST files, one model package trained once per test session, and the
Kubernetes backends (`kube_backend` is parametrized over the emulator and the real control plane)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubebackend import BACKENDS, endpoint_of_real

from modelarts_operator import mnist
from support import run_boot_file


def pytest_addoption(parser):
    parser.addoption("--kube-backend", action="append", choices=BACKENDS, default=None,
                     help="run the Kubernetes-facing tests on this backend only (repeatable; default: both)")


def pytest_generate_tests(metafunc):
    """Every test that takes `kube_backend` runs once per backend, grouped by module;
    `@pytest.mark.kube_backends("real")` keeps a test to the backends named."""
    if "kube_backend" in metafunc.fixturenames:
        backends = metafunc.config.getoption("kube_backend") or list(BACKENDS)
        if marker := metafunc.definition.get_closest_marker("kube_backends"):
            backends = [b for b in backends if b in marker.args]
        metafunc.parametrize("kube_backend", backends, scope="module")


@pytest.fixture(scope="session")
def real_kube(tmp_path_factory):
    """etcd, kube-apiserver and kube-controller-manager for the whole session, with the operator's
    ServiceAccount and RBAC from manifests/ installed (its requests are audited for 403s)."""
    from modelarts_operator.local.realkube import RealKube, operator_user

    kube = RealKube(tmp_path_factory.mktemp("real-kube"), audited_users=(operator_user(),))
    with kube:
        kube.install_operator_identity()
        yield endpoint_of_real(kube), kube


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    """The four verified .gz files, fetched from the local copy beside the project."""
    dest = tmp_path_factory.mktemp("mnist")
    mnist.fetch_mnist(dest, zip_urls=(), mirror_urls=())
    return dest


@pytest.fixture(scope="session")
def test_set(mnist_dir):
    """The first 100 test images (uint8 28x28) and their labels."""
    images = mnist.read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz").to_numpy()[:100]
    labels = mnist.read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz").to_numpy()[:100]
    return images, labels


@pytest.fixture(scope="session")
def trained_run(mnist_dir, tmp_path_factory):
    """The boot file trained on a 10k subset for one epoch, as a training job would run it."""
    out = tmp_path_factory.mktemp("train")
    result = run_boot_file(mnist_dir, out, "--epochs=1", "--train_limit=10000", "--unknown_flag=1")
    assert result.returncode == 0, result.stdout + result.stderr
    return out, result.stdout


@pytest.fixture(scope="session")
def model_package(trained_run) -> Path:
    return trained_run[0] / "model"
