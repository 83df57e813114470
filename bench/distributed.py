"""The boot file on one worker and on two (data-parallel, MultiWorkerMirroredStrategy over gRPC on
loopback), one after the other in the same run: full MNIST, the boot file's default hyperparameters.

Each worker is a process with the variables a ModelArts job gives it (VC_WORKER_NUM, VC_TASK_INDEX,
VC_WORKER_HOSTS) and its own train_url; the chief's package is the one evaluated. On 2 cores the two
workers share the cores one worker had alone: the figure shows the cost of the exchange, not a speed-up.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modelarts_operator import mnist
from modelarts_operator.local import free_port

BOOT_FILE = Path(__file__).resolve().parents[1] / "model_code" / "train_mnist_tf.py"
EPOCHS = 6  # the boot file's default
EPOCH = re.compile(r"^epoch=\d+/\d+ .* seconds=([\d.]+)$", re.M)
SHARD = re.compile(r"^shard images=(\d+) batch=(\d+) ", re.M)


def worker_environment(index: int, hosts: list[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG" and not k.startswith(("VC_", "MNIST_"))}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", VC_WORKER_NUM=str(len(hosts)), VC_TASK_INDEX=str(index),
               VC_WORKER_HOSTS=",".join(hosts))
    return env


def train(data_dir: Path, root: Path, workers: int, epochs: int = EPOCHS) -> dict:
    """Wall time from the first process start to the last exit, and the chief's figures."""
    hosts = [f"127.0.0.1:{free_port()}" for _ in range(workers)]
    started = time.perf_counter()
    processes = [
        subprocess.Popen([sys.executable, str(BOOT_FILE), f"--data_url={data_dir}",
                          f"--train_url={root / f'worker-{i}'}", f"--epochs={epochs}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=worker_environment(i, hosts))
        for i in range(workers)
    ]
    outputs = [process.communicate(timeout=3600) for process in processes]
    wall = time.perf_counter() - started
    for index, (process, (stdout, stderr)) in enumerate(zip(processes, outputs)):
        if process.returncode != 0:
            raise RuntimeError(f"worker {index}/{workers} exited {process.returncode}:\n{stdout}\n"
                               f"{stderr[-3000:]}")
    chief_stdout = outputs[0][0]
    metrics = json.loads((root / "worker-0" / "model" / "config.json").read_text())["metrics"]
    shard = SHARD.search(chief_stdout)
    return {
        "workers": workers,
        "wall_s": round(wall, 1),
        "fit_s": round(sum(float(s) for s in EPOCH.findall(chief_stdout)), 1),
        "test_accuracy": metrics["accuracy"],
        "test_f1": metrics["f1"],
        "images_per_worker": int(shard[1]) if shard else 60000,
        "batch_per_worker": int(shard[2]) if shard else 64,
        "packages": sum((root / f"worker-{i}" / "model").is_dir() for i in range(workers)),
    }


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data_dir = tmp / "mnist"
        mnist.fetch_mnist(data_dir, zip_urls=(), mirror_urls=())
        one = train(data_dir, tmp / "one", 1)
        two = train(data_dir, tmp / "two", 2)
    return {
        "epochs": EPOCHS,
        "train_images": 60000,
        "runs": [one, two],
        "wall_ratio_two_to_one": round(two["wall_s"] / one["wall_s"], 2),
        "fit_ratio_two_to_one": round(two["fit_s"] / one["fit_s"], 2),
        "accuracy_difference": round(two["test_accuracy"] - one["test_accuracy"], 4),
    }
