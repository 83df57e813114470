"""Shared fixtures: the real MNIST files, and one model package trained once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelarts_operator import mnist
from support import run_boot_file


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
