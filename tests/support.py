"""Helpers shared by test modules (pytest's conftest is not importable in importlib mode)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelarts_operator.cloud import CloudCredentials
from modelarts_operator.cloud.retry import RetryPolicy

ROOT = Path(__file__).resolve().parents[1]
BOOT_FILE = ROOT / "model_code" / "train_mnist_tf.py"


def run_boot_file(data_url, train_url, *hyperparameters: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, str(BOOT_FILE), f"--data_url={data_url}", f"--train_url={train_url}", *hyperparameters],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


# Short backoff: the local cloud answers in milliseconds, and 20%-fault runs retry a lot.
FAST_RETRIES = RetryPolicy(attempts=8, base_delay_s=0.05, max_delay_s=0.5, deadline_s=30)


class SecretData(dict):
    """Stands in for a Kubernetes Secret's data: the provider re-reads it on every call."""

    def provider(self):
        return lambda: CloudCredentials.from_mapping(self)


def first_test_image(mnist_dir: Path) -> tuple[bytes, int]:
    """The first MNIST test image as PNG bytes, and its label."""
    import io

    from PIL import Image

    from modelarts_operator import mnist

    pixels = mnist.read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz").to_numpy()[0]
    label = int(mnist.read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz").to_numpy()[0])
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue(), label


def wait_for(condition: Callable[[], Any], timeout: float = 60, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll until `condition()` is truthy and return its value; AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="module")
def local_cloud() -> Iterator[Any]:
    """A LocalCloud (OBS and ModelArts on loopback) per test module; import it into a conftest to use it."""
    from modelarts_operator.local.cloud import LocalCloud  # the [local] extra: only where a test needs it

    with LocalCloud(max_running_jobs=1) as cloud:
        yield cloud


# Training code as ConfigMap files (no TensorFlow): each job takes about a second in the local cloud.
QUICK = """\
import argparse, os
parser = argparse.ArgumentParser()
parser.add_argument("--train_url")
args, unknown = parser.parse_known_args()
os.makedirs(args.train_url, exist_ok=True)
with open(os.path.join(args.train_url, "result.txt"), "w") as f:
    f.write("ok\\n")
print("quick training done", unknown)
"""
FAILING = 'import sys\nprint("about to fail on purpose", flush=True)\nsys.exit(3)\n'
SLEEPING = 'import time\nprint("sleeping", flush=True)\ntime.sleep(600)\n'
