"""kubectl-modelarts against the operator's pipeline: the installed console script run as a user runs it
(and once through `kubectl modelarts`, kubectl's plugin discovery on PATH), with KUBECONFIG as kubectl.

One pipeline per module (`pipeline`), applied in two steps so `logs -f` is seen waiting for a job id
and then following a running job to its end. A second namespace holds a service the operator does not
watch, its status written by hand: the flags that pick namespaces and contexts, and a missing Secret.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from modelarts_operator import mnist
from modelarts_operator.api.conditions import now_rfc3339

pytestmark = pytest.mark.slow

VENV_BIN = Path(sys.executable).parent  # pip put the console script beside the interpreter
SCRIPT = VENV_BIN / "kubectl-modelarts"
OTHER_SECRET = "custom-creds"
IMAGES = 20
OUTPUTS: list[str] = []  # everything the plugin printed: no secret may be in it


def plugin(stack, *args: str, kubectl: bool = False, env: dict | None = None, cwd: Path | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real console script (or `kubectl modelarts`, found on PATH) with the stack's KUBECONFIG."""
    command = ["kubectl", "modelarts", *args] if kubectl else [str(SCRIPT), *args]
    environment = dict(stack.env(), PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", **(env or {}))
    result = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=cwd, timeout=timeout)
    OUTPUTS.extend((result.stdout, result.stderr))
    return result


def other_namespace(stack) -> str:
    return f"{stack.namespace}-other"


@pytest.fixture(scope="module")
def pipeline(stack):
    """The local-stack pipeline with small training, run once; what the plugin said on the way."""
    ns, docs = stack.namespace, stack.local_stack(**stack.small_training)
    later = [d for d in docs if d["kind"] in ("MnistDataset", "ModelArtsAlgorithm")]
    stack.apply(*[d for d in docs if d not in later])
    stack.wait_condition("trainingjob", "mnist-train", "False", "WaitingForDependency")
    stack.wait_condition("modelartsservice", "mnist-service", "False", "WaitingForDependency")
    seen = {"status": plugin(stack, "status", "-n", ns), "logs": plugin(stack, "logs", "mnist-train", "-n", ns)}

    err_file = stack.folder / "follow.stderr"
    with open(err_file, "w") as err:
        follower = subprocess.Popen([str(SCRIPT), "logs", "mnist-train", "-f", "--interval", "0.5", "-n", ns],
                                    stdout=subprocess.PIPE, stderr=err, text=True, env=stack.env())
    try:
        stack.wait_for(lambda: "waiting for" in err_file.read_text(), 30, "logs -f to wait for the job id")
        stack.apply(*later)
        out, _ = follower.communicate(timeout=420)
        seen["follow"] = subprocess.CompletedProcess(follower.args, follower.returncode, out, err_file.read_text())
        OUTPUTS.extend((out, err_file.read_text()))
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    for kind, name in (("mnistdataset", "mnist"), ("modelartsalgorithm", "mnist-tensorflow"),
                       ("trainingjob", "mnist-train"), ("modelartsservice", "mnist-service")):
        stack.wait_ready(kind, name, timeout=240)
    yield seen
    stack.kubectl("delete", "namespace", other_namespace(stack), "--wait=false", check=False)


@pytest.fixture(scope="module")
def elsewhere(stack, pipeline):
    """A second namespace with a Ready-looking service (status written by hand; no operator watches it)
    that points at the pipeline's endpoint and names a Secret that does not exist yet."""
    ns = other_namespace(stack)
    stack.kubectl("create", "namespace", ns)
    service = {"apiVersion": "modelarts.mlops.dev/v1alpha1", "kind": "ModelArtsService",
               "metadata": {"name": "borrowed", "namespace": ns},
               "spec": {"trainingJobRef": {"name": "not-here"}, "credentialsSecret": OTHER_SECRET}}
    stack.kubectl("apply", "-f", "-", input=yaml.safe_dump(service))
    endpoint = stack.get("modelartsservice", "mnist-service")["status"]["endpoint"]
    status = {"status": {"phase": "running", "endpoint": endpoint, "conditions": [
        {"type": "Ready", "status": "True", "reason": "Running", "message": "", "lastTransitionTime": now_rfc3339()}]}}
    stack.kubectl("patch", "modelartsservice", "borrowed", "-n", ns, "--subresource=status", "--type=merge",
                  "-p", json.dumps(status))
    stack.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "modelarts.mlops.dev/v1alpha1", "kind": "ModelArtsService",
        "metadata": {"name": "deploying", "namespace": ns}, "spec": {"trainingJobRef": {"name": "not-here"}}}))
    return ns


@pytest.fixture(scope="module")
def digits(mnist_dir, tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """The first MNIST test images as PNG files, and their labels by file name."""
    folder = tmp_path_factory.mktemp("digits")
    pixels = mnist.read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz").to_numpy()[:IMAGES]
    labels = mnist.read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz").to_numpy()[:IMAGES]
    truth = {}
    for i, (image, label) in enumerate(zip(pixels, labels)):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        (folder / f"digit-{i:02}.png").write_bytes(buffer.getvalue())
        truth[f"digit-{i:02}.png"] = int(label)
    return folder, truth


# --- status ------------------------------------------------------------------------------------------


def test_status_before_the_inputs_exist_shows_the_references_not_found(pipeline):
    early = pipeline["status"]
    assert early.returncode == 0, early.stderr
    lines = early.stdout.splitlines()
    assert lines[0].startswith("ModelArtsService/mnist-service  Ready=False"), early.stdout
    assert lines[1].startswith("│   ")  # its message
    assert re.search(r"└── TrainingJob/mnist-train  Ready=False WaitingForDependency", early.stdout), early.stdout
    assert "├── MnistDataset/mnist  (not found)" in early.stdout
    assert "└── ModelArtsAlgorithm/mnist-tensorflow  (not found)" in early.stdout


def test_status_shows_the_pipeline_as_one_tree_with_the_endpoint(stack, pipeline):
    endpoint = stack.get("modelartsservice", "mnist-service")["status"]["endpoint"]
    job = stack.get("trainingjob", "mnist-train")["status"]
    shown = plugin(stack, "status", "-n", stack.namespace)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        f"ModelArtsService/mnist-service  Ready=True Running  phase=running  endpoint={endpoint}",
        f"└── TrainingJob/mnist-train  Ready=True Completed  phase=Completed  version={job['version']}  "
        f"accuracy={job['metrics']['accuracy']}",
        f"    ├── MnistDataset/mnist  Ready=True Uploaded  obsUrl=obs://{stack.bucket}/dataset-mnist/  files=8",
        "    └── ModelArtsAlgorithm/mnist-tensorflow  Ready=True Created  algorithmId="
        + stack.get("modelartsalgorithm", "mnist-tensorflow")["status"]["algorithmId"],
    ]
    rooted = plugin(stack, "status", "mnist-service", "-o", "json", "-n", stack.namespace)
    (tree,) = json.loads(rooted.stdout)
    assert (tree["name"], tree["ready"], tree["facts"]["endpoint"]) == ("mnist-service", "True", endpoint)
    missing = plugin(stack, "status", "nope", "-n", stack.namespace)
    assert missing.returncode == 1
    assert f'error: modelartsservice "nope" not found in namespace "{stack.namespace}"' in missing.stderr


# --- logs ----------------------------------------------------------------------------------------------


def test_logs_without_a_job_yet_says_so(pipeline):
    early = pipeline["logs"]
    assert early.returncode == 1
    assert 'trainingjob "mnist-train" has no ModelArts job yet (Ready=False WaitingForDependency' in early.stderr
    assert "-f waits for it" in early.stderr


def test_logs_follow_waits_for_the_job_then_prints_it_once_to_its_end(stack, pipeline):
    follow = pipeline["follow"]
    assert follow.returncode == 0, follow.stderr
    assert 'waiting for trainingjob "mnist-train" to start a ModelArts job' in follow.stderr
    assert follow.stderr.rstrip().endswith("ended: Completed"), follow.stderr
    assert "epoch=1/1" in follow.stdout
    full = stack.api.training_job_log(stack.get("trainingjob", "mnist-train")["status"]["jobId"])
    assert follow.stdout == full  # each piece printed once, none left out


def test_logs_through_kubectl_prints_the_epoch_lines(stack, pipeline):
    listed = subprocess.run(["kubectl", "plugin", "list"], capture_output=True, text=True,
                            env=dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"))
    assert str(SCRIPT) in listed.stdout, listed.stdout + listed.stderr
    shown = plugin(stack, "logs", "mnist-train", "-n", stack.namespace, kubectl=True)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^epoch=1/1 .*", shown.stdout, re.MULTILINE), shown.stdout


# --- predict -------------------------------------------------------------------------------------------


def test_predict_labels_real_mnist_digits(stack, pipeline, digits):
    folder, truth = digits
    shown = plugin(stack, "predict", "mnist-service", *sorted(truth), "-n", stack.namespace, kubectl=True,
                   cwd=folder)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == IMAGES
    predicted = {}
    for line in lines:
        match = re.fullmatch(r"(digit-\d\d\.png): (\d) \((0\.\d{3}|1\.000)\)( \| \d [01]\.\d{3}){2}", line)
        assert match, line
        predicted[match[1]] = int(match[2])
    right = sum(predicted[name] == label for name, label in truth.items())
    assert right >= 0.7 * IMAGES, f"{right}/{IMAGES} right:\n{shown.stdout}"

    as_json = plugin(stack, "predict", "mnist-service", "digit-00.png", "digit-01.png", "-o", "json", "--top", "5",
                     "-n", stack.namespace, cwd=folder)
    documents = json.loads(as_json.stdout)
    assert [d["image"] for d in documents] == ["digit-00.png", "digit-01.png"]
    assert [int(d["predicted_label"]) for d in documents] == [predicted["digit-00.png"], predicted["digit-01.png"]]
    assert all(len(d["scores"]) == 5 for d in documents)


def test_predict_errors_name_the_service_the_image_and_the_server_answer(stack, pipeline, digits, tmp_path):
    folder, _ = digits
    ns = stack.namespace
    unknown = plugin(stack, "predict", "nope", str(folder / "digit-00.png"), "-n", ns)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == f'error: modelartsservice "nope" not found in namespace "{ns}"'

    unreadable = plugin(stack, "predict", "mnist-service", "digit-00.png", "missing.png", "-n", ns, cwd=folder)
    assert unreadable.returncode == 1
    assert unreadable.stdout.startswith("digit-00.png: ")  # the readable one is still answered
    assert "missing.png: error: cannot read the image: No such file or directory" in unreadable.stderr

    (tmp_path / "notes.png").write_text("not a picture")
    refused = plugin(stack, "predict", "mnist-service", "notes.png", "-n", ns, cwd=tmp_path)
    assert refused.returncode == 1
    assert re.search(r"notes\.png: error: predict failed: .*\(HTTP 4\d\d", refused.stderr), refused.stderr
    assert "Traceback" not in refused.stderr


def test_namespace_flag_a_missing_secret_and_a_service_not_ready(stack, elsewhere, digits):
    folder, truth = digits
    no_secret = plugin(stack, "--namespace", elsewhere, "predict", "borrowed", "digit-00.png", cwd=folder)
    assert no_secret.returncode == 1
    assert f'error: Secret "{OTHER_SECRET}" not found in namespace "{elsewhere}"' in no_secret.stderr
    assert 'modelartsservice "borrowed" reads its cloud credentials from it' in no_secret.stderr

    stack.kubectl("apply", "-f", "-", input=yaml.safe_dump(dict(stack.secret(OTHER_SECRET),
                                                                 metadata={"name": OTHER_SECRET, "namespace": elsewhere})))
    works = plugin(stack, "predict", "borrowed", "digit-00.png", "-n", elsewhere, cwd=folder)
    assert works.returncode == 0, works.stderr
    assert works.stdout.startswith("digit-00.png: ")

    waiting = plugin(stack, "predict", "deploying", "digit-00.png", "-n", elsewhere, cwd=folder)
    assert waiting.returncode == 1
    assert 'error: modelartsservice "deploying" is not Ready (no Ready condition yet)' in waiting.stderr


def test_ctrl_c_while_following_exits_cleanly(stack, elsewhere):
    job = dict(stack.training_job("never-started", "no-algorithm"), metadata={"name": "never-started",
                                                                              "namespace": elsewhere})
    stack.kubectl("apply", "-f", "-", input=yaml.safe_dump(job))  # no operator watches it: no job id, ever
    follower = subprocess.Popen([str(SCRIPT), "logs", "never-started", "-f", "--interval", "0.2", "-n", elsewhere],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=stack.env())
    try:
        line = follower.stderr.readline()
        assert line.startswith('waiting for trainingjob "never-started" to start a ModelArts job (no status yet)'), line
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 130
    assert (out, err) == ("", ""), err


# --- contexts and kubeconfigs --------------------------------------------------------------------------


def two_context_kubeconfig(stack, elsewhere: str, path: Path) -> Path:
    """The stack's kubeconfig with two contexts on its cluster: one per namespace, the first current."""
    config = yaml.safe_load(Path(stack.kube.kubeconfig).read_text())
    base = next(c for c in config["contexts"] if c["name"] == config["current-context"])["context"]
    config["contexts"] = [{"name": "pipeline", "context": dict(base, namespace=stack.namespace)},
                          {"name": "elsewhere", "context": dict(base, namespace=elsewhere)}]
    config["current-context"] = "pipeline"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def test_context_and_kubeconfig_pick_the_namespace_like_kubectl(stack, elsewhere, tmp_path):
    config = two_context_kubeconfig(stack, elsewhere, tmp_path / "kubeconfig")
    current = plugin(stack, "status", "--kubeconfig", str(config))
    assert current.returncode == 0 and current.stdout.startswith("ModelArtsService/mnist-service  Ready=True")

    other = plugin(stack, "status", "--context", "elsewhere", env={"KUBECONFIG": str(config)})
    assert other.returncode == 0, other.stderr
    assert other.stdout.splitlines()[0].startswith("ModelArtsService/borrowed  Ready=True Running")
    assert "└── TrainingJob/not-here  (not found)" in other.stdout
    assert "mnist-service" not in other.stdout

    overridden = plugin(stack, "--context", "elsewhere", "--kubeconfig", str(config), "status", "-n", stack.namespace)
    assert "ModelArtsService/mnist-service" in overridden.stdout  # --namespace wins over the context's

    missing = plugin(stack, "status", "--context", "nope", "--kubeconfig", str(config))
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'error: context "nope" does not exist'


def test_no_secret_value_in_any_output(stack, pipeline):
    for text in OUTPUTS:
        assert stack.cloud.sk not in text and stack.cloud.ak not in text

