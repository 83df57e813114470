"""The deployment manifests render, follow least privilege, and the image needs no TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest
import yaml

from modelarts_operator.api.conditions import TERMINAL_REASONS
from modelarts_operator.api.kinds import KINDS

ROOT = Path(__file__).resolve().parents[1]


def render(path: str) -> list[dict]:
    result = subprocess.run(["kubectl", "kustomize", str(ROOT / path)], capture_output=True, text=True, check=True)
    return list(yaml.safe_load_all(result.stdout))


def test_operator_kustomization_renders_everything():
    kinds = sorted(d["kind"] for d in render("manifests"))
    assert kinds == sorted(["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"]
                           + ["CustomResourceDefinition"] * 4)


def test_rbac_has_no_wildcards_and_covers_the_resources():
    role = next(d for d in render("manifests") if d["kind"] == "ClusterRole")
    for rule in role["rules"]:
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key], rule
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    for kind in KINDS:
        assert ("modelarts.mlops.dev", kind.plural) in granted
        assert ("modelarts.mlops.dev", f"{kind.plural}/status") in granted
    secrets_rule = next(r for r in role["rules"] if "secrets" in r["resources"])
    assert secrets_rule["resources"] == ["secrets"]
    assert secrets_rule["verbs"] == ["get", "patch"]  # read, and the in-use finalizer; never list or delete


def test_deployment_is_hardened():
    deployment = next(d for d in render("manifests") if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/work", "/tmp"} <= mounts  # writable places on a read-only root


def test_samples_and_local_overlay_render():
    samples = render("manifests/samples")
    assert sorted(d["kind"] for d in samples) == sorted(k.kind for k in KINDS)
    local = {d["kind"]: d for d in render("manifests/overlays/local-stack")}
    assert local["MnistDataset"]["spec"]["source"]["type"] == "Obs"
    assert local["TrainingJob"]["spec"]["hyperparameters"] == {"epochs": "1", "train_limit": "10000"}


def test_operator_distribution_has_no_heavy_dependencies():
    core = [r for r in requires("modelarts-operator") if "extra ==" not in r]
    assert not any(name in " ".join(core).lower() for name in ("tensorflow", "moto", "numpy", "pillow"))


def test_operator_imports_without_tensorflow_or_emulators():
    """What the image runs must import with the [local] extra's packages unavailable."""
    code = (
        "import sys\n"
        "for name in ('tensorflow', 'keras', 'moto', 'numpy', 'PIL', 'celpy'):\n"
        "    sys.modules[name] = None\n"
        "import modelarts_operator.controller.main, modelarts_operator.controller.handlers\n"
        "import modelarts_operator.cloud.predict, modelarts_operator.api.crdgen\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def health_check():
    lupa = pytest.importorskip("lupa")  # in the [test] extra; skipped only outside `make test`'s venv
    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)
    script = (ROOT / "manifests" / "argocd" / "health.lua").read_text()
    check = runtime.eval(f"function(obj) {script} end")

    def run(obj: dict) -> tuple[str, str]:
        result = check(to_lua(runtime, obj))
        return result["status"], result["message"]

    return run


def to_lua(runtime, value):
    if isinstance(value, dict):
        return runtime.table_from({k: to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([to_lua(runtime, v) for v in value])
    return value


def resource(generation=1, observed=1, ready=None, deleting=False) -> dict:
    obj = {"metadata": {"generation": generation}, "status": {"observedGeneration": observed}}
    if deleting:
        obj["metadata"]["deletionTimestamp"] = "2026-11-26T00:00:00Z"
    if ready:
        obj["status"]["conditions"] = [{"type": "Ready", "status": ready[0], "reason": ready[1], "message": "m"}]
    return obj


def test_argocd_health_check(health_check):
    assert health_check(resource(ready=("True", "Running")))[0] == "Healthy"
    assert health_check(resource(ready=("False", "Failed"))) == ("Degraded", "Failed: m")
    assert health_check(resource(ready=("False", "Running")))[0] == "Progressing"
    assert health_check(resource(generation=2, observed=1, ready=("True", "Running")))[0] == "Progressing"
    assert health_check(resource(ready=("True", "Running"), deleting=True))[0] == "Progressing"
    assert health_check({"metadata": {"generation": 1}})[0] == "Progressing"


def test_argocd_terminal_reasons_match_the_operator():
    script = (ROOT / "manifests" / "argocd" / "health.lua").read_text()
    listed = {part.split("=")[0].strip() for part in script.split("local terminal = {")[1].split("}")[0].split(",")}
    assert listed == set(TERMINAL_REASONS)
