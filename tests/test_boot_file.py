"""The builtin boot file's command line: no abbreviations, no second channel from a hyperparameter."""

from __future__ import annotations

import importlib.util

import pytest

from modelarts_operator.local import PROJECT_ROOT


@pytest.fixture(scope="module")
def boot_file():
    spec = importlib.util.spec_from_file_location("train_mnist_tf", PROJECT_ROOT / "model_code" / "train_mnist_tf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_abbreviations_do_not_replace_a_channel(boot_file, capsys):
    args = boot_file.parse_args(["--data_url=/in", "--train_url=/out", "--train_u=/host", "--data=/elsewhere"])
    assert (args.data_url, args.train_url) == ("/in", "/out")
    assert "ignoring unknown arguments: --train_u=/host --data=/elsewhere" in capsys.readouterr().out


@pytest.mark.parametrize("extra", [["--train_url=/host"], ["--data_url", "/other"]])
def test_a_channel_given_twice_is_refused(boot_file, extra, capsys):
    with pytest.raises(SystemExit) as exited:
        boot_file.parse_args(["--data_url=/in", "--train_url=/out", *extra])
    assert exited.value.code == 2
    assert "given more than once: a hyperparameter may not be named like a channel" in capsys.readouterr().err
