"""The operator as a user runs it: a subprocess against a Kubernetes API and a LocalCloud, driven by kubectl.

One stack per test module and Kubernetes backend (`stack` fixture): an in-process LocalCloud, the
emulator (a LocalKube of its own) or the session's real control plane, the CRDs applied with kubectl,
a namespace with the credentials Secret, and `modelarts-operator run` in a subprocess that a test can
SIGKILL and restart. On the real control plane the operator runs as its ServiceAccount with exactly
manifests/rbac.yaml, and any request RBAC refused fails the test. Tests wait for conditions by polling
kubectl, never by sleeping a fixed time. Test modules cannot import this file (importlib mode):
helpers are methods of the stack.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubebackend import KubeEndpoint

from modelarts_operator.api.conditions import TERMINAL_REASONS, find_condition
from modelarts_operator.cloud import CloudCredentials, ModelArtsApi, ObsStore, ObsUrl
from modelarts_operator.local import free_port
from modelarts_operator.local.cloud import LocalCloud
from modelarts_operator.local.kube.server import LocalKube
from modelarts_operator.local.realkube import operator_user
from support import FAST_RETRIES, wait_for

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
LOCAL_STACK = ROOT / "manifests" / "overlays" / "local-stack"
API_VERSION = "modelarts.mlops.dev/v1alpha1"
SECRET = "modelarts-credentials"
BUCKET = "test-modelarts"
PUBLIC_MNIST = "obs://modelarts-cnnorth1-market-dataset/dataset-market/Mnist-Data-Set/"
SMALL_TRAINING = {"epochs": "1", "train_limit": "2000"}


class OperatorStack:
    """kubectl, the operator process, and our cloud clients, all for one namespace."""

    overlay = LOCAL_STACK
    bucket = BUCKET
    small_training = SMALL_TRAINING

    def __init__(self, cloud: LocalCloud, kube: KubeEndpoint, folder: Path, namespace: str, real_kube=None):
        self.cloud, self.kube, self.folder, self.namespace = cloud, kube, folder, namespace
        self.real_kube = real_kube  # the RealKube on the real backend: its audit log shows refused requests
        self.log_file = folder / "operator.log"
        self.process: subprocess.Popen | None = None
        self.metrics_url: str | None = None  # the running operator's /metrics
        self.starts = 0
        creds = CloudCredentials.from_mapping(cloud.credentials())
        self.api = ModelArtsApi(lambda: creds, FAST_RETRIES)
        self.obs = ObsStore(lambda: creds, FAST_RETRIES)

    # --- kubectl -----------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return dict(os.environ, KUBECONFIG=str(self.kube.kubeconfig), KUBECACHEDIR=str(self.folder / "kubecache"))

    def kubectl_run(self, *args: str, input: str | None = None, check: bool = True,
                    timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True, env=self.env(),
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def kubectl(self, *args: str, **kwargs: Any) -> str:
        return self.kubectl_run(*args, **kwargs).stdout

    def apply(self, *manifests: dict | str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """kubectl apply -f - into the namespace (manifests as dicts or YAML text)."""
        text = "\n---\n".join(m if isinstance(m, str) else yaml.safe_dump(m) for m in manifests)
        return self.kubectl_run("apply", "-n", self.namespace, "-f", "-", input=text, check=check)

    def get(self, kind: str, name: str) -> dict | None:
        result = self.kubectl_run("get", kind, name, "-n", self.namespace, "-o", "json", check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr or "not found" in result.stderr:
                return None
            raise AssertionError(f"kubectl get {kind} {name}: {result.stderr}")
        return json.loads(result.stdout)

    def items(self) -> list[dict]:
        return json.loads(self.kubectl("get", "modelarts", "-n", self.namespace, "-o", "json"))["items"]

    def events(self, name: str | None = None) -> list[dict]:
        items = json.loads(self.kubectl("get", "events", "-n", self.namespace, "-o", "json"))["items"]
        return [e for e in items if name is None or (e.get("involvedObject") or {}).get("name") == name]

    def event_reasons(self, name: str) -> set[str]:
        return {e.get("reason") for e in self.events(name)}

    def delete(self, kind: str, name: str, timeout: float = 120) -> None:
        self.kubectl("delete", kind, name, "-n", self.namespace, "--wait", f"--timeout={timeout:.0f}s",
                     timeout=timeout + 30)

    # --- waiting -------------------------------------------------------------------------------

    def wait_for(self, check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
        """Poll `check()` until truthy; on timeout fail with `what` and the operator log's tail."""
        try:
            return wait_for(check, timeout, interval, what)
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- operator log tail ---\n{self.log_tail()}") from None

    def wait_condition(self, kind: str, name: str, status: str = "True", reason: str | None = None,
                       timeout: float = 60, fail_on_terminal: bool = False) -> dict:
        """The object once its Ready condition has `status` (and `reason`, when given)."""
        last: dict = {}

        def check():
            obj = self.get(kind, name)
            cond = find_condition((obj or {}).get("status"))
            last.update(obj=obj)
            if fail_on_terminal and cond.get("status") == "False" and cond.get("reason") in TERMINAL_REASONS:
                raise AssertionError(f"{kind} {name} is {cond['reason']}: {cond.get('message')}")
            if cond.get("status") == status and (reason is None or cond.get("reason") == reason):
                return obj
            return None

        try:
            return self.wait_for(check, timeout, f"{kind} {name} Ready={status} reason={reason}")
        except AssertionError as exc:
            status_now = json.dumps((last.get("obj") or {}).get("status"), indent=1)[:3000]
            raise AssertionError(f"{exc}\n--- last status of {kind} {name} ---\n{status_now}") from None

    def wait_ready(self, kind: str, name: str, timeout: float = 120) -> dict:
        return self.wait_condition(kind, name, "True", timeout=timeout, fail_on_terminal=True)

    def wait_event(self, name: str, reason: str, timeout: float = 30) -> dict:
        return self.wait_for(lambda: next((e for e in self.events(name) if e.get("reason") == reason), None),
                             timeout, f"event {reason} on {name}")

    def wait_gone(self, kind: str, name: str, timeout: float = 60) -> None:
        self.wait_for(lambda: self.get(kind, name) is None, timeout, f"{kind} {name} to be deleted")

    # --- the operator process --------------------------------------------------------------------

    def start_operator(self, env: dict[str, str] | None = None, wait_live: bool = True) -> subprocess.Popen:
        assert not self.operator_alive(), "the operator is already running"
        self.liveness = f"http://127.0.0.1:{free_port()}/healthz"
        metrics_port = free_port()
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"  # tests/operator/test_e2e.py scrapes it
        out = open(self.log_file, "ab")  # noqa: SIM115 - the child keeps it
        out.write(f"\n===== operator start #{self.starts + 1} =====\n".encode())
        out.flush()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modelarts_operator.cli", "run", "--namespace", self.namespace, "--standalone",
             "--poll-fast", "1", "--poll-slow", "3", "--poll-terminal", "3", "--liveness", self.liveness,
             "--metrics-port", str(metrics_port)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(self.env(), PYTHONUNBUFFERED="1", MODELARTS_OPERATOR_WORK_DIR=str(self.folder / "work"),
                     KUBECONFIG=str(self.kube.operator_kubeconfig or self.kube.kubeconfig), **(env or {})))
        out.close()
        self.starts += 1
        if wait_live:
            self.wait_for(self._live, 90, "the operator's liveness endpoint", interval=0.3)
        return self.process

    def _live(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the operator exited with {self.process.returncode}:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(self.liveness, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def operator_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill_operator(self) -> None:
        """SIGKILL, as a node failure or OOM kill would: no clean-up of any kind."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=30)

    def forbidden(self) -> list[str]:
        """Requests of the operator that RBAC refused (real backend; the emulator has no RBAC)."""
        return self.real_kube.forbidden(operator_user()) if self.real_kube else []

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # --- the cloud -------------------------------------------------------------------------------

    def inventory(self, bucket: str = BUCKET) -> dict[str, Any]:
        objects = [o.key for o in self.obs.list(ObsUrl(bucket, ""))] if self.obs.bucket_exists(bucket) else []
        return {"algorithms": self.api.count("algorithms"), "training_jobs": self.api.count("training_jobs"),
                "models": self.api.count("models"), "services": self.api.count("services"), "objects": objects}

    def object_keys(self, url: str) -> list[str]:
        parsed = ObsUrl.parse(url)
        return [o.key for o in self.obs.list(parsed)] if self.obs.bucket_exists(parsed.bucket) else []

    def read_object(self, url: str) -> bytes:
        return self.obs.read(ObsUrl.parse(url))

    # --- secrets -------------------------------------------------------------------------------

    def secret(self, name: str, **overrides: str) -> dict:
        data = dict(self.cloud.credentials(), **overrides)
        return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "namespace": self.namespace}, "stringData": data}

    def assert_no_secret_values(self, *values: str) -> None:
        """No secret key in the operator's log, any event, any status or message of our resources."""
        places = {
            "operator log": self.log_text(),
            "events": self.kubectl("get", "events", "-n", self.namespace, "-o", "json"),
            "resources": self.kubectl("get", "modelarts", "-n", self.namespace, "-o", "json"),
            "describe": self.kubectl("describe", "modelarts", "-n", self.namespace),
        }
        for value in (self.cloud.sk, *values):
            assert len(value) >= 16, "a short secret would match by accident"
            for place, text in places.items():
                assert value not in text, f"a secret value appears in the {place}"

    # --- manifests -------------------------------------------------------------------------------

    @staticmethod
    def config_map(name: str, files: dict[str, str]) -> dict:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": files}

    @staticmethod
    def algorithm(name: str, config_map: str, boot_file: str = "train.py", **spec: Any) -> dict:
        return {"apiVersion": API_VERSION, "kind": "ModelArtsAlgorithm", "metadata": {"name": name},
                "spec": {"code": {"configMap": config_map, "uploadTo": f"obs://{BUCKET}/code/{name}/"},
                         "bootFile": boot_file, **spec}}

    @staticmethod
    def training_job(name: str, algorithm: str, **spec: Any) -> dict:
        return {"apiVersion": API_VERSION, "kind": "TrainingJob", "metadata": {"name": name},
                "spec": {"algorithmRef": {"name": algorithm}, "inputs": [{"name": "data_url", "obsPath": PUBLIC_MNIST}],
                         "output": {"name": "train_url", "obsPath": f"obs://{BUCKET}/output/{name}/"},
                         "hyperparameters": dict(SMALL_TRAINING), **spec}}

    def local_stack(self, **hyperparameters: str) -> list[dict]:
        """manifests/overlays/local-stack as kubectl kustomize renders it, hyperparameters overridden."""
        documents = list(yaml.safe_load_all(self.kubectl("kustomize", str(LOCAL_STACK))))
        for doc in documents:
            if doc["kind"] == "TrainingJob" and hyperparameters:
                doc["spec"]["hyperparameters"] = dict(hyperparameters)
        return documents


@contextmanager
def kubernetes_api(request, kube_backend: str, folder: Path) -> Iterator[tuple[KubeEndpoint, Any]]:
    """The emulator for this module alone, or the session's real control plane."""
    if kube_backend == "real":
        endpoint, real = request.getfixturevalue("real_kube")
        yield endpoint, real
        return
    with LocalKube(kubeconfig=folder / "kubeconfig") as kube:
        yield KubeEndpoint("emulator", kube.url, kube.kubeconfig), None


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory, kube_backend) -> Iterator[OperatorStack]:
    """Cloud, Kubernetes API, CRDs, namespace, Secret and a running operator, for one test module."""
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    folder = tmp_path_factory.mktemp(f"operator-{module}-{kube_backend}")
    max_jobs = getattr(request.module, "MAX_RUNNING_JOBS", 1)
    with LocalCloud(max_running_jobs=max_jobs) as cloud, kubernetes_api(request, kube_backend, folder) as (kube, real):
        stack = OperatorStack(cloud, kube, folder, f"op-{module}", real)
        try:
            stack.kubectl("apply", "-k", str(CRDS))  # crds/ is a kustomization (its kustomization.yaml breaks -f)
            stack.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")
            stack.kubectl("create", "namespace", stack.namespace)
            stack.apply(stack.secret(SECRET))  # on stdin: no key on a command line
            stack.start_operator()
            yield stack
        finally:
            stack.kill_operator()
            if request.session.testsfailed:
                print(f"\n--- operator log ({stack.log_file}) ---\n{stack.log_tail(80)}")
            if real is not None:
                release_namespace(stack)


def release_namespace(stack: OperatorStack) -> None:
    """On the shared real cluster: the module's namespace goes, with no operator left to finalize it."""
    kinds = "mnistdatasets,modelartsalgorithms,trainingjobs,modelartsservices,secrets"
    listed = stack.kubectl_run("get", kinds, "-n", stack.namespace, "-o", "json", check=False)
    for obj in json.loads(listed.stdout)["items"] if listed.returncode == 0 else []:
        meta = obj["metadata"]
        if meta.get("finalizers"):
            stack.kubectl("patch", obj["kind"].lower(), meta["name"], "-n", stack.namespace, "--type=merge",
                          "-p", '{"metadata":{"finalizers":null}}', check=False)
    stack.kubectl("delete", "namespace", stack.namespace, "--wait=false", check=False)


@pytest.fixture(autouse=True)
def no_forbidden_requests(request):
    """On the real backend, a request the operator's RBAC refused fails the test that caused it."""
    if "stack" not in request.fixturenames:
        yield
        return
    stack = request.getfixturevalue("stack")
    before = len(stack.forbidden())
    yield
    refused = stack.forbidden()[before:]
    assert not refused, f"RBAC (manifests/rbac.yaml) refused the operator: {refused}"
