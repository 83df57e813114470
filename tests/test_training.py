"""The boot file, run as a training job runs it: accuracy, progress lines, and the package it writes."""

from __future__ import annotations

import json
import re

import pytest

from modelarts_operator.local.serving.package import validate_model_package
from support import run_boot_file

pytestmark = pytest.mark.slow

EPOCH_LINE = re.compile(r"^epoch=(\d+)/(\d+) accuracy=(\d\.\d{4}) loss=(\d+\.\d{4}) seconds=(\d+\.\d)$", re.M)


def test_subset_training_reaches_95_percent(trained_run):
    out, stdout = trained_run
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["metrics"]["accuracy"] >= 0.95, stdout
    assert 0.9 <= config["metrics"]["f1"] <= 1
    assert config["model_type"] == "TensorFlow"
    assert "ignoring unknown arguments: --unknown_flag=1" in stdout
    assert "data train=10000 test=10000" in stdout


def test_one_parsable_progress_line_per_epoch(trained_run):
    _, stdout = trained_run
    epochs = EPOCH_LINE.findall(stdout)
    assert [(e[0], e[1]) for e in epochs] == [("1", "1")]
    assert 0 < float(epochs[0][2]) <= 1


def test_writes_a_valid_model_package(model_package):
    assert validate_model_package(model_package) == []
    assert {"saved_model.pb", "variables", "config.json", "customize_service.py", "image_preprocessing.py"} <= {
        p.name for p in model_package.iterdir()
    }


def test_saved_model_has_the_tutorial_signature(model_package):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(model_package))
    for name in ("predict_images", "serving_default"):
        signature = loaded.signatures[name]
        inputs = signature.structured_input_signature[1]
        assert list(inputs) == ["images"]
        assert inputs["images"].shape.as_list() == [None, 784]
        assert inputs["images"].dtype == tf.float32
        scores = signature(images=tf.zeros([3, 784]))["scores"].numpy()
        assert scores.shape == (3, 10)
        assert abs(scores.sum(axis=1) - 1).max() < 1e-4


def test_bad_hyperparameters_and_missing_data_fail_clearly(tmp_path, mnist_dir):
    result = run_boot_file(mnist_dir, tmp_path / "out", "--epochs=0")
    assert result.returncode == 2
    assert "--epochs must be at least 1" in result.stderr
    result = run_boot_file(tmp_path / "empty", tmp_path / "out")
    assert result.returncode == 1
    assert "no train-images-idx3-ubyte or train-images-idx3-ubyte.gz below" in result.stderr
    assert not (tmp_path / "out" / "model").exists()
