"""The deployment manifests render, follow least privilege, and the image needs no TensorFlow."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest
import yaml

from modelarts_operator.api import health
from modelarts_operator.api.conditions import TERMINAL_REASONS, Reason
from modelarts_operator.api.kinds import KINDS
from modelarts_operator.controller.registry import BY_KIND

ROOT = Path(__file__).resolve().parents[1]


def render(path: str) -> list[dict]:
    result = subprocess.run(["kubectl", "kustomize", str(ROOT / path)], capture_output=True, text=True, check=True)
    return list(yaml.safe_load_all(result.stdout))


def test_operator_kustomization_renders_everything():
    kinds = sorted(d["kind"] for d in render("manifests"))
    assert kinds == sorted(["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment",
                            "PodDisruptionBudget"] + ["CustomResourceDefinition"] * 6)  # 4 kinds, 2 of Kopf's peering


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


def test_deployment_runs_two_peered_replicas():
    """Two replicas, one active (docs/high-availability.md): peering on, each named after its pod, RBAC
    for the peering objects, the peering CRDs shipped, one replica kept through a node drain."""
    documents = render("manifests")
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 2
    assert "--standalone" not in container["args"] and "--peering=modelarts-operator" in container["args"]
    pod_id = next(e for e in container["env"] if e["name"] == "POD_ID")
    assert pod_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    crds = {d["metadata"]["name"] for d in documents if d["kind"] == "CustomResourceDefinition"}
    assert {"kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"} <= crds
    role = next(d for d in documents if d["kind"] == "ClusterRole")
    peering_rule = next(r for r in role["rules"] if "kopf.dev" in r["apiGroups"])
    assert set(peering_rule["resources"]) == {"kopfpeerings", "clusterkopfpeerings"}
    assert {"get", "list", "watch", "patch", "create"} == set(peering_rule["verbs"])
    budget = next(d for d in documents if d["kind"] == "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]


def test_samples_and_local_overlay_render():
    samples = render("manifests/samples")
    assert sorted(d["kind"] for d in samples) == sorted(k.kind for k in KINDS)
    local = {d["kind"]: d for d in render("manifests/overlays/local-stack")}
    assert local["MnistDataset"]["spec"]["source"]["type"] == "Obs"
    assert local["TrainingJob"]["spec"]["hyperparameters"] == {"epochs": "1", "train_limit": "10000"}


def test_metrics_are_exposed_and_their_monitoring_is_optional():
    """/metrics on port 9090 (docs/metrics.md): the flag, a named container port, the scrape annotations; the
    Service and ServiceMonitor in manifests/monitoring/, outside manifests/ (which must apply without the
    Prometheus Operator's CRDs), pointing at the same pods and port."""
    base = render("manifests")
    assert not [d for d in base if d["apiVersion"].startswith("monitoring.coreos.com/")]
    deployment = next(d for d in base if d["kind"] == "Deployment")
    template = deployment["spec"]["template"]
    container = template["spec"]["containers"][0]
    assert "--metrics-port=9090" in container["args"]
    args = container["args"]
    assert args.index("--metrics-port=9090") == args.index("--liveness=http://0.0.0.0:8080/healthz") + 1
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == 9090
    annotations = template["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                           "prometheus.io/path": "/metrics"}

    monitoring = {d["kind"]: d for d in render("manifests/monitoring")}
    assert sorted(monitoring) == ["Service", "ServiceMonitor"]
    service, monitor = monitoring["Service"], monitoring["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    namespace = deployment["metadata"]["namespace"]
    assert service["metadata"]["namespace"] == monitor["metadata"]["namespace"] == namespace
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics",
                                         "protocol": "TCP"}]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]


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


# --- the Argo CD health checks (manifests/argocd/, docs/argocd.md) ----------------------------------------
# Argo CD's own Lua engine runs every case in tools/argocd-health/ (`make argocd-health`,
# tests/test_argocd_health.py); lupa (C Lua 5.4, looser than Argo CD's gopher-lua 5.1) is the quick check here.

ARGOCD = ROOT / "manifests" / "argocd"


def scripts() -> dict[str, str]:
    return {kind.kind: (ARGOCD / health.script_path(kind.kind)).read_text() for kind in KINDS}


def health_cases() -> list[tuple[str, dict, Path]]:
    """(kind, expected healthStatus, object file) of every health_test.yaml case."""
    cases = []
    for kind in KINDS:
        folder = (ARGOCD / health.script_path(kind.kind)).parent
        for case in yaml.safe_load((folder / "health_test.yaml").read_text())["tests"]:
            cases.append((kind.kind, case["healthStatus"], folder / case["inputPath"]))
    return cases


@pytest.fixture(scope="module")
def health_check():
    lupa = pytest.importorskip("lupa")  # in the [test] extra; skipped only outside `make test`'s venv
    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)
    checks = {kind: runtime.eval(f"function(obj) {script} end") for kind, script in scripts().items()}

    def run(obj: dict, kind: str = "TrainingJob") -> tuple[str, str]:
        result = checks[kind](to_lua(runtime, obj))
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


def test_argocd_health_checks_are_not_stale():
    """The per-kind scripts and argocd-cm.yaml are what api/health.py generates from conditions.py."""
    for name, content in health.expected_files().items():
        assert (ARGOCD / name).read_text() == content, f"manifests/argocd/{name} is stale: run `make crds`"
    present = {p.relative_to(ARGOCD).as_posix() for p in ARGOCD.rglob("health.lua")}
    assert present == {health.script_path(kind.kind) for kind in KINDS}


@pytest.mark.parametrize("case", health_cases(), ids=lambda c: f"{c[0]}/{c[2].stem}")
def test_argocd_health_check_cases(health_check, case):
    """Every case of Argo CD's health_test.yaml files (captured objects), in lupa."""
    kind, expected, path = case
    obj = yaml.safe_load(path.read_text())
    assert (obj["apiVersion"].split("/")[0], obj["kind"]) == (health.GROUP, kind)
    assert health_check(obj, kind) == (expected["status"], expected["message"])


@pytest.mark.parametrize("kind", [kind.kind for kind in KINDS])
def test_argocd_health_check(health_check, kind):
    def run(obj: dict) -> tuple[str, str]:
        return health_check(obj, kind)

    assert run(resource(ready=("True", "Running")))[0] == "Healthy"
    assert run(resource(ready=("False", "Failed"))) == ("Degraded", "Failed: m")
    assert run(resource(ready=("False", "Running")))[0] == "Progressing"
    assert run(resource(ready=("False", "CredentialsMissing"))) == ("Progressing", "CredentialsMissing: m")
    assert run(resource(ready=("False", "SomeReasonOfANewerOperator")))[0] == "Progressing"
    assert run(resource(ready=("Unknown", "Failed")))[0] == "Progressing"
    assert run(resource(generation=2, observed=1, ready=("True", "Running")))[0] == "Progressing"
    assert run(resource(ready=("True", "Running"), deleting=True))[0] == "Progressing"
    assert run({"metadata": {"generation": 1}})[0] == "Progressing"
    assert run({"metadata": {"generation": 1}, "status": {"observedGeneration": 1}}) == (
        "Progressing", "waiting for the operator")


def test_argocd_degraded_reasons_are_the_terminal_ones():
    for script in scripts().values():
        table = script.split("local degraded = {")[1].split("}")[0]
        listed = {part.split("=")[0].strip() for part in table.split(",") if part.strip()}
        assert listed == set(TERMINAL_REASONS)


def test_argocd_cases_cover_every_state_and_terminal_reason():
    """Each kind's cases: no status, stale generation, being deleted, Ready=True, progress, and Degraded for
    every terminal reason the kind can set (its controller's, InvalidSpec, and DependencyFailed for a kind
    with references)."""
    by_kind: dict[str, dict[str, str]] = {}
    for kind, expected, path in health_cases():
        by_kind.setdefault(kind, {})[path.stem] = expected["status"]
    for kind in KINDS:
        cases = by_kind[kind.kind]
        assert cases["no-status"] == cases["stale-generation"] == cases["being-deleted"] == "Progressing"
        assert "Healthy" in cases.values()
        terminal = {r for r in BY_KIND[kind.kind].reasons if r.terminal} | {Reason.INVALID_SPEC}
        if "Ref\"" in json.dumps(kind.spec.model_json_schema(by_alias=True)):
            terminal.add(Reason.DEPENDENCY_FAILED)
        for reason in terminal:
            file = re.sub(r"(?<!^)(?=[A-Z])", "-", reason.value).lower()  # MaxRuntimeExceeded: max-runtime-exceeded
            assert cases.get(file) == "Degraded", f"{kind.kind}: no Degraded case testdata/{file}.yaml"


def test_argocd_component_patches_argocd_cm(tmp_path):
    """manifests/argocd as a kustomize Component adds the four keys to an Argo CD install's argocd-cm."""
    (tmp_path / "cm.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm", "labels": {"app.kubernetes.io/part-of": "argocd"}},
        "data": {"url": "https://argocd.example.com"}}))
    component = Path(os.path.relpath(ARGOCD, tmp_path)).as_posix()
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(
        {"namespace": "argocd", "resources": ["cm.yaml"], "components": [component]}))
    [cm] = render(str(tmp_path))
    assert cm["metadata"]["namespace"] == "argocd"
    assert cm["data"] == {"url": "https://argocd.example.com",
                          **{health.config_map_key(kind): script for kind, script in scripts().items()}}
