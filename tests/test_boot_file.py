"""The builtin boot file's command line: no abbreviations, no second channel from a hyperparameter."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

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


# --- the cluster a distributed job describes (no TensorFlow: the parsing is plain Python) ----------

def modelarts_environment(count="2", index="0", hosts="10.0.0.1,10.0.0.2", **more) -> dict[str, str]:
    return {"VC_WORKER_NUM": count, "VC_TASK_INDEX": index, "VC_WORKER_HOSTS": hosts, **more}


ONE_WORKER_TF_CONFIG = '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}'


@pytest.mark.parametrize("environ", [{}, {"VC_WORKER_NUM": "1"}, {"VC_WORKER_NUM": "1", "VC_TASK_INDEX": "x"},
                                     {"TF_CONFIG": ONE_WORKER_TF_CONFIG}])
def test_one_worker_or_no_variables_trains_alone(boot_file, environ):
    assert boot_file.cluster_from_environment(environ) is None


def test_modelarts_variables_make_the_tf_config(boot_file):
    cluster = boot_file.cluster_from_environment(
        modelarts_environment("3", "1", "job-worker-0.job, 127.0.0.1:41000 ,[::1]:7"))
    hosts = ["job-worker-0.job:2222", "127.0.0.1:41000", "[::1]:7"]
    assert cluster.tf_config == {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": 1}}
    assert (cluster.position, cluster.is_chief) == (1, False)
    assert cluster.describe() == ("cluster worker=1/3 task=worker:1 chief=no "
                                  "hosts=job-worker-0.job:2222,127.0.0.1:41000,[::1]:7 from=VC_WORKER_HOSTS")


def test_a_host_without_port_gets_the_port_variable(boot_file):
    cluster = boot_file.cluster_from_environment(modelarts_environment(MNIST_WORKER_PORT="3333"))
    assert cluster.hosts == ["10.0.0.1:3333", "10.0.0.2:3333"]
    assert cluster.is_chief


def test_a_tf_config_set_from_outside_is_used_as_it_is(boot_file):
    config = {"cluster": {"chief": ["c:1"], "worker": ["w:2", "w:3"]}, "task": {"type": "worker", "index": 1}}
    cluster = boot_file.cluster_from_environment({"TF_CONFIG": json.dumps(config), **modelarts_environment()})
    assert (cluster.tf_config, cluster.source, cluster.hosts) == (config, "TF_CONFIG", ["c:1", "w:2", "w:3"])
    assert (cluster.position, cluster.is_chief) == (2, False)
    config["task"] = {"type": "chief", "index": 0}
    assert boot_file.cluster_from_environment({"TF_CONFIG": json.dumps(config)}).is_chief


@pytest.mark.parametrize("environ, message", [
    (modelarts_environment(count="two"), "VC_WORKER_NUM='two' is not a whole number"),
    (modelarts_environment(count="-2"), "VC_WORKER_NUM='-2' is not a whole number"),
    (modelarts_environment(count="0"), "VC_WORKER_NUM=0: a job has at least one worker"),
    (modelarts_environment(index=""), "VC_TASK_INDEX is not set (VC_WORKER_NUM=2: it must be 0 to 1)"),
    (modelarts_environment(index="2"), "VC_TASK_INDEX=2 must be 0 to 1 (VC_WORKER_NUM=2)"),
    (modelarts_environment(index="١"), "VC_TASK_INDEX='١' is not a whole number"),
    (modelarts_environment(hosts="a"), "VC_WORKER_HOSTS='a' must list 2 addresses (VC_WORKER_NUM=2)"),
    (modelarts_environment(hosts="a,,b"), "VC_WORKER_HOSTS='a,,b' must list 2 addresses"),
    (modelarts_environment(hosts="a,"), "VC_WORKER_HOSTS='a,' must list 2 addresses"),
    (modelarts_environment(hosts="a:99999,b"), "VC_WORKER_HOSTS entry 'a:99999' is no host[:port]"),
    (modelarts_environment(hosts="a b,c"), "VC_WORKER_HOSTS entry 'a b' is no host[:port]"),
    (modelarts_environment(hosts="::1,b"), "entry '::1' is no host[:port] (IPv6 addresses in brackets)"),
    (modelarts_environment(MNIST_WORKER_PORT="70000"), "MNIST_WORKER_PORT=70000 is no port"),
    ({"TF_CONFIG": "{worker"}, "TF_CONFIG is not JSON"),
    ({"TF_CONFIG": "[]"}, 'TF_CONFIG needs "cluster" and "task" objects'),
    ({"TF_CONFIG": '{"cluster": {"worker": "a:1,b:2"}, "task": {"type": "worker", "index": 0}}'},
     'TF_CONFIG cluster "worker" must be a list of "host:port" strings'),
    ({"TF_CONFIG": '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}'},
     'TF_CONFIG task {"type": "worker", "index": 2} is no chief or worker of its cluster'),
    ({"TF_CONFIG": '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": true}}'},
     "is no chief or worker of its cluster"),
    ({"TF_CONFIG": '{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "ps", "index": 0}}'},
     'TF_CONFIG task {"type": "ps", "index": 0} is no chief or worker of its cluster'),
])
def test_a_malformed_cluster_is_refused_naming_the_variable(boot_file, environ, message):
    with pytest.raises(boot_file.ClusterError) as refused:
        boot_file.cluster_from_environment(environ)
    assert message in str(refused.value)


@pytest.mark.parametrize("text, seconds", [("", 600.0), ("20", 20.0), ("0.5", 0.5), ("0", None), ("-1", None),
                                           ("inf", None), ("nan", None), ("soon", None)])
def test_the_cluster_timeout(boot_file, text, seconds):
    environ = {"MNIST_CLUSTER_TIMEOUT_S": text}
    if seconds is None:
        with pytest.raises(boot_file.ClusterError, match="MNIST_CLUSTER_TIMEOUT_S=.* must be a positive"):
            boot_file.cluster_timeout_s(environ)
    else:
        assert boot_file.cluster_timeout_s(environ) == seconds


@pytest.mark.parametrize("images", [10000, 10001, 59999, 60000, 64 * 157 + 1, 7])
@pytest.mark.parametrize("workers", [2, 3, 4, 16])
@pytest.mark.parametrize("batch_size", [64, 1, 10])
def test_every_worker_runs_the_steps_of_one_with_the_global_batch(boot_file, images, workers, batch_size):
    worker_images, worker_batch, steps = boot_file.shard_plan(images, workers, batch_size)
    assert 0 <= images - worker_images * workers < workers  # at most N-1 images dropped
    assert worker_batch == max(1, batch_size // workers)
    assert steps == -(-worker_images // worker_batch)
    if batch_size % workers == 0 and images % workers == 0:
        assert steps == -(-(images // workers) // (batch_size // workers))
        assert worker_batch * workers == batch_size


def test_a_malformed_variable_ends_the_run_before_training(tmp_path):
    environ = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    environ.update(modelarts_environment(index="7"))
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "model_code" / "train_mnist_tf.py"),
                             f"--data_url={tmp_path}", f"--train_url={tmp_path / 'out'}"],
                            capture_output=True, text=True, env=environ, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "error: VC_TASK_INDEX=7 must be 0 to 1 (VC_WORKER_NUM=2)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
