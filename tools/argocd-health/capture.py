"""Captures the testdata of manifests/argocd/resource_customizations/: each kind's objects in each state as the
operator left them, and writes each kind's health_test.yaml (Argo CD's format) with the health they must get.

    .venv/bin/python tools/argocd-health/capture.py [--kube real|emulator] [--out manifests/argocd]

The objects are real runs: the operator's own Runner (what its Kopf handlers call) reconciles them against
the local cloud (OBS and a ModelArts that really runs the training code) and a real kube-apiserver (`make
kube`; `--kube emulator` uses the Kubernetes emulator instead), and each is read back from the API server at
the moment it is in the state named; only metadata.managedFields is left out. The expected status of every
case is stated below, by hand; the expected message is the Ready condition's "<reason>: <message>" or the
check's fixed text for states without one.

Not part of `make test` (it takes about a minute and its output is committed): run it again when the
operator's messages or states change, and review the diff. tools/argocd-health/main.go (Argo CD's engine)
and tests/test_manifests.py (lupa) run the scripts against what it wrote.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import yaml
from kubernetes import client

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the reconcile-level harness of tests/controller/

from controller.conftest import apply_crds  # noqa: E402
from controller.harness import (  # noqa: E402
    FAILING,
    INPUT,
    PACKAGING,
    QUICK,
    SECRET,
    SERVICE_CODE,
    SLEEPING,
    Stack,
    algorithm_spec,
    job_spec,
)

from modelarts_operator.api.common import GROUP, VERSION  # noqa: E402
from modelarts_operator.api.conditions import find_condition  # noqa: E402
from modelarts_operator.api.kinds import ALGORITHM, MNIST_DATASET, SERVICE, TRAINING_JOB, Kind  # noqa: E402
from modelarts_operator.cloud import ObsUrl  # noqa: E402
from modelarts_operator.cloud.resources import AlgorithmSpec, ModelSpec, ServiceSpec  # noqa: E402
from modelarts_operator.controller.adoption import EXTERNAL_MODEL, EXTERNAL_NAME  # noqa: E402
from modelarts_operator.local.cloud import LocalCloud  # noqa: E402
from support import wait_for  # noqa: E402

NAMESPACE = "argocd-health"
WAITING = "waiting for the operator"
DELETING = "being deleted: the operator cleans up the cloud side first"


@dataclass
class Captured:
    name: str  # testdata/<name>.yaml
    obj: dict
    status: str  # Healthy, Progressing, Degraded
    message: str
    comment: str


def stale_message(obj: dict) -> str:
    return (f"the operator has not seen generation {obj['metadata']['generation']} yet (status is of generation "
            f"{obj['status']['observedGeneration']})")


def ready_message(obj: dict) -> str:
    ready = find_condition(obj.get("status"), "Ready")
    return f"{ready['reason']}: {ready['message']}" if ready.get("message") else ready["reason"]


class Capture:
    def __init__(self, stack: Stack):
        self.stack = stack
        self.cases: dict[str, list[Captured]] = {}

    def take(self, kind: Kind, name: str, file: str, status: str, comment: str, message: str | None = None,
             obj: dict | None = None) -> dict:
        obj = obj or self.stack.get(kind, name)
        obj["metadata"].pop("managedFields", None)
        if message is None:
            message = ready_message(obj)
        self.cases.setdefault(kind.kind, []).append(Captured(file, obj, status, message, comment))
        print(f"{kind.kind:20} {file:28} {status:12} {message[:80]}")
        return obj

    def no_status(self, kind: Kind, name: str, spec: dict) -> None:
        self.stack.create(kind, name, spec)
        self.take(kind, name, "no-status", "Progressing", "created, before the operator's first reconcile", WAITING)

    def reason(self, kind: Kind, name: str, reason: str, file: str, status: str, comment: str,
               spec: dict | None = None, timeout: float = 60) -> dict:
        if spec is not None:
            self.stack.create(kind, name, spec)
        self.stack.reconcile_to(kind, name, reason, timeout=timeout)
        return self.take(kind, name, file, status, comment)

    def stale(self, kind: Kind, name: str, patch: dict, comment: str) -> None:
        obj = self.stack.patch_spec(kind, name, patch)
        assert obj["metadata"]["generation"] != obj["status"]["observedGeneration"]
        self.take(kind, name, "stale-generation", "Progressing", comment, stale_message(obj))

    def adopting(self, kind: Kind, name: str, spec: dict, external: dict[str, str]) -> None:
        """Create an object annotated to adopt `external` (annotation -> id or name) in the cloud."""
        self.stack.create(kind, name, spec)
        self.stack.custom.patch_namespaced_custom_object(GROUP, VERSION, self.stack.namespace, kind.plural, name,
                                                         {"metadata": {"annotations": external}})

    def deleting(self, kind: Kind, name: str, comment: str) -> None:
        self.stack.custom.delete_namespaced_custom_object(GROUP, VERSION, self.stack.namespace, kind.plural, name)
        self.take(kind, name, "being-deleted", "Progressing", comment, DELETING)

    def as_given(self, kind: Kind, name: str, spec: dict, change: dict, file: str, status: str, comment: str) -> None:
        """A spec the CRD of today refuses (an older, laxer CRD could have stored it): the runner is given the
        object with `change` merged into its spec, as the tests do; the object written is the one it was given,
        with the status it wrote."""
        self.stack.create(kind, name, spec)
        body = self.stack.get(kind, name)
        body["spec"].update(change)
        self.stack.reconcile_body(kind, body)
        obj = self.stack.get(kind, name)
        obj["spec"] = body["spec"]
        self.take(kind, name, file, status, comment, obj=obj)


def run(capture: Capture) -> None:
    stack = capture.stack
    bucket = "argocd-health"
    stack.obs.ensure_bucket(bucket)

    # --- MnistDataset ------------------------------------------------------------------------------------
    def dataset(name: str, **extra: Any) -> dict:
        return {"source": {"type": "Obs", "obsPath": f"obs:/{LocalCloud.public_dataset_path}"},
                "target": f"obs://{bucket}/{name}/", "layout": "Gz", **extra}

    kind = MNIST_DATASET
    capture.no_status(kind, "mnist", dataset("mnist"))
    capture.reason(kind, "mnist", "Uploaded", "uploaded", "Healthy", "the files are in OBS, verified")
    capture.stale(kind, "mnist", {"layout": "Raw"}, "spec changed (layout Gz -> Raw), not reconciled yet")
    capture.reason(kind, "mnist-no-bucket", "SourceUnavailable", "source-unavailable", "Progressing",
                   "error reason, retried: the source bucket does not exist",
                   dataset("mnist-no-bucket", source={"type": "Obs", "obsPath": "obs://no-such-bucket/mnist/"}))
    capture.reason(kind, "mnist-no-secret", "CredentialsMissing", "credentials-missing", "Progressing",
                   "error reason, retried: the credentials Secret does not exist",
                   dataset("mnist-no-secret", credentialsSecret="no-such-secret"))
    capture.as_given(kind, "mnist-invalid", dataset("mnist-invalid"), {"target": "s3://elsewhere/mnist/"},
                     "invalid-spec", "Degraded", "terminal: a target the CRD of today refuses (an older CRD stored it)")
    capture.deleting(kind, "mnist", "deleted while Ready: the finalizer holds it while the cloud side goes")

    # --- ModelArtsAlgorithm ------------------------------------------------------------------------------
    kind = ALGORITHM
    stack.config_map("algo-quick", {"train.py": QUICK})
    capture.no_status(kind, "algo-quick", algorithm_spec("algo-quick", "algo-quick"))
    capture.reason(kind, "algo-quick", "Created", "created", "Healthy", "code uploaded, algorithm created")
    capture.stale(kind, "algo-quick", {"code": {"uploadTo": "obs://ctl-test/code/moved-here/"}},
                  "spec changed (code.uploadTo), not reconciled yet")
    capture.reason(kind, "algo-no-code", "CodeMissing", "code-missing", "Progressing",
                   "error reason, retried: the ConfigMap with the code does not exist",
                   algorithm_spec("algo-no-code", "no-such-configmap"))
    capture.as_given(kind, "algo-invalid", algorithm_spec("algo-invalid", "algo-quick"), {"bootFile": "train.sh"},
                     "invalid-spec", "Degraded", "terminal: a boot file the CRD of today refuses (an older CRD stored it)")
    capture.deleting(kind, "algo-quick", "deleted while Ready: the finalizer holds it while the cloud side goes")
    code = ObsUrl.parse("obs://ctl-test/console-code/")
    stack.obs.upload_bytes(QUICK.encode(), code.join("train.py"))
    capture.adopting(kind, "algo-adopt-typo", {"code": {"obsPath": str(code)}, "bootFile": "train.py"},
                     {EXTERNAL_NAME: "console-algoritm"})
    capture.reason(kind, "algo-adopt-typo", "AdoptionFailed", "adoption-failed", "Degraded",
                   "terminal: the external-name annotation names no algorithm in ModelArts; nothing is created")
    made = stack.api.create_algorithm(AlgorithmSpec(name="console-algorithm", code_dir=code.api_path,
                                                    boot_file=code.join("train.py").api_path))
    capture.adopting(kind, "algo-adopted", {"code": {"obsPath": str(code)}, "bootFile": "train.py"},
                     {EXTERNAL_NAME: "console-algorithm"})
    stack.reconcile_to(kind, "algo-adopted", "Created")
    stack.api.delete_algorithm(made.id)
    capture.reason(kind, "algo-adopted", "CloudResourceMissing", "cloud-resource-missing", "Degraded",
                   "terminal: an adopted algorithm deleted in ModelArts is not created again")
    for name, files in {"algo-ok": {"train.py": QUICK}, "algo-failing": {"train.py": FAILING},
                        "algo-sleeping": {"train.py": SLEEPING},
                        "algo-packaging": {"train.py": PACKAGING, "service.py": SERVICE_CODE}}.items():
        stack.code_algorithm(name, files)

    # --- TrainingJob (the local cloud runs one job at a time: each one ends before the next starts) -----
    kind = TRAINING_JOB
    capture.no_status(kind, "train", job_spec("train", "algo-ok"))
    capture.reason(kind, "train", "Completed", "completed", "Healthy", "the job finished; its model is in OBS")
    cloud = stack.cloud
    cloud.set_faults(None, error_500=1.0)  # every ModelArts answer a 500: the look at the job fails
    step = stack.reconcile(kind, "train")
    cloud.set_faults(None)
    assert find_condition(step.status, "Synced").get("reason") == "CloudUnavailable", step.status
    capture.take(kind, "train", "completed-cloud-unavailable", "Healthy",
                 "Completed, then a reconcile the cloud answered with 500s: Synced=False, Ready stays True")
    capture.deleting(kind, "train", "deleted once Completed: the finalizer deletes the job and its output first")
    capture.reason(kind, "train-waiting", "WaitingForDependency", "waiting-for-dependency", "Progressing",
                   "progress: its algorithm does not exist yet", job_spec("train-waiting", "algo-later"))
    capture.reason(kind, "train-no-secret", "CredentialsMissing", "credentials-missing", "Progressing",
                   "error reason, retried: the credentials Secret does not exist",
                   job_spec("train-no-secret", "algo-ok", credentialsSecret="no-such-secret"))
    capture.reason(kind, "train-failing", "Failed", "failed", "Degraded", "terminal: the training code exited with 3",
                   job_spec("train-failing", "algo-failing"))
    capture.reason(kind, "train-stopped", "Running", "running", "Progressing", "progress: the job runs",
                   job_spec("train-stopped", "algo-sleeping"))
    stack.api.stop_training_job(stack.get(kind, "train-stopped")["status"]["jobId"])
    capture.reason(kind, "train-stopped", "Terminated", "terminated", "Degraded",
                   "terminal: the job was stopped in ModelArts, not by the operator")
    capture.reason(kind, "train-max-runtime", "MaxRuntimeExceeded", "max-runtime-exceeded", "Degraded",
                   "terminal: the operator stopped the job at spec.maxRuntime (1s)",
                   job_spec("train-max-runtime", "algo-sleeping", maxRuntime="1s"))
    stack.create(kind, "train-gone", job_spec("train-gone", "algo-ok"))
    stack.reconcile_to(kind, "train-gone", "Completed")
    stack.api.delete_training_job(stack.get(kind, "train-gone")["status"]["jobId"])
    capture.reason(kind, "train-gone", "CloudResourceMissing", "cloud-resource-missing", "Degraded",
                   "terminal: the cloud job was deleted behind the operator's back")
    capture.reason(kind, "train-invalid", "InvalidSpec", "invalid-spec", "Degraded",
                   "terminal: an input that is not one of the algorithm's channels",
                   job_spec("train-invalid", "algo-ok", inputs=[{"name": "images_url", "obsPath": INPUT}]))
    capture.stale(kind, "train-invalid", {"maxRuntime": "2h"},
                  "the InvalidSpec job's spec changed (maxRuntime), not reconciled yet: Progressing until it is")
    stack.create(ALGORITHM, "algo-broken", algorithm_spec("algo-broken", "algo-ok"))
    body = stack.get(ALGORITHM, "algo-broken")
    body["spec"]["bootFile"] = "train.sh"
    stack.reconcile_body(ALGORITHM, body)
    capture.reason(kind, "train-dependency-failed", "DependencyFailed", "dependency-failed", "Degraded",
                   "terminal: its algorithm is InvalidSpec", job_spec("train-dependency-failed", "algo-broken"))
    capture.adopting(kind, "train-adopt-typo", job_spec("train-adopt-typo", "algo-ok"), {EXTERNAL_NAME: "no-such-job"})
    capture.reason(kind, "train-adopt-typo", "AdoptionFailed", "adoption-failed", "Degraded",
                   "terminal: the external-name annotation names no training job in ModelArts; nothing is created")

    # --- ModelArtsService --------------------------------------------------------------------------------
    kind = SERVICE
    stack.create(TRAINING_JOB, "train-model", job_spec("train-model", "algo-packaging"))
    stack.reconcile_to(TRAINING_JOB, "train-model", "Completed")

    def service(job: str, **extra: Any) -> dict:
        return {"trainingJobRef": {"name": job}, "flavor": "modelarts.vm.cpu.2u", "instanceCount": 1, **extra}

    capture.no_status(kind, "svc", service("train-model"))
    step = stack.reconcile(kind, "svc")  # the first reconcile starts the model import
    assert step.reason in ("Importing", "Deploying"), step.ready
    capture.take(kind, "svc", step.reason.lower(), "Progressing", f"progress: {step.reason.lower()}, after the "
                 "first reconcile")
    capture.reason(kind, "svc", "Running", "running", "Healthy", "the service runs; status.endpoint answers")
    capture.stale(kind, "svc", {"instanceCount": 2}, "spec changed (instanceCount 1 -> 2), not reconciled yet")
    stack.create(kind, "svc-stopped", service("train-model"))
    stack.reconcile_to(kind, "svc-stopped", "Running")
    stack.api.update_service(stack.get(kind, "svc-stopped")["status"]["serviceId"], status="stopped")
    capture.reason(kind, "svc-stopped", "Stopped", "stopped", "Degraded", "terminal: stopped in ModelArts")
    capture.reason(kind, "svc-failed", "Failed", "failed", "Degraded",
                   "terminal: the model folder's bucket does not exist, the model import failed",
                   {"modelPath": "obs://no-such-bucket/model/", "flavor": "modelarts.vm.cpu.2u", "instanceCount": 1})
    capture.reason(kind, "svc-invalid", "InvalidSpec", "invalid-spec", "Degraded",
                   "terminal: autoStopAfter longer than ModelArts allows (30d)",
                   service("train-model", autoStopAfter="721h"))
    capture.reason(kind, "svc-waiting", "WaitingForDependency", "waiting-for-dependency", "Progressing",
                   "progress: its TrainingJob does not exist yet", service("train-later"))
    capture.reason(kind, "svc-no-secret", "CredentialsMissing", "credentials-missing", "Progressing",
                   "error reason, retried: the credentials Secret does not exist",
                   service("train-model", credentialsSecret="no-such-secret"))
    capture.reason(kind, "svc-dependency-failed", "DependencyFailed", "dependency-failed", "Degraded",
                   "terminal: its TrainingJob Failed", service("train-failing"))
    capture.reason(kind, "svc-below-gate", "BelowQualityGate", "below-quality-gate", "Degraded",
                   "terminal: its TrainingJob's accuracy (0.5) is below spec.minAccuracy, nothing is deployed",
                   service("train-model", minAccuracy=0.9))
    stack.create(TRAINING_JOB, "train-model-2", job_spec("train-model-2", "algo-packaging"))
    stack.reconcile_to(TRAINING_JOB, "train-model-2", "Completed")
    stack.create(kind, "svc-held-back", service("train-model"))
    stack.reconcile_to(kind, "svc-held-back", "Running")
    stack.patch_spec(kind, "svc-held-back", {"trainingJobRef": {"name": "train-model-2"}, "minAccuracy": 0.9})
    capture.reason(kind, "svc-held-back", "BelowQualityGate", "running-below-quality-gate", "Healthy",
                   "Ready=True: pointed at a job below spec.minAccuracy, it keeps serving the model it has")
    capture.adopting(kind, "svc-adopt-typo", service("train-model"), {EXTERNAL_MODEL: "no-such-model"})
    capture.reason(kind, "svc-adopt-typo", "AdoptionFailed", "adoption-failed", "Degraded",
                   "terminal: the external-model annotation names no model in ModelArts; nothing is created")
    output = stack.get(TRAINING_JOB, "train-model")["status"]["outputPath"]
    model = stack.api.create_model(ModelSpec(name="console-model", source_location=ObsUrl.parse(output).api_path))
    wait_for(lambda: stack.api.get_model(model).model_status == "published", 30, 0.05, "the console model")
    console = stack.api.create_service(ServiceSpec(name="console-service", model_id=model,
                                                   specification="modelarts.vm.cpu.2u", instance_count=1))
    capture.adopting(kind, "svc-adopted", {"modelPath": output, "flavor": "modelarts.vm.cpu.2u", "instanceCount": 1},
                     {EXTERNAL_NAME: "console-service", EXTERNAL_MODEL: "console-model"})
    stack.reconcile_to(kind, "svc-adopted", "Running")
    stack.api.delete_service(console)
    wait_for(lambda: stack.api.find_service("console-service") is None, 30, 0.05, "the console service to go")
    capture.reason(kind, "svc-adopted", "CloudResourceMissing", "cloud-resource-missing", "Degraded",
                   "terminal: an adopted service deleted in ModelArts is not created again")
    capture.deleting(kind, "svc", "deleted while running: the finalizer deletes the service and the model first")


def write(capture: Capture, out: Path) -> None:
    for kind_name, cases in capture.cases.items():
        folder = out / "resource_customizations" / GROUP / kind_name
        testdata = folder / "testdata"
        testdata.mkdir(parents=True, exist_ok=True)
        for old in testdata.glob("*.yaml"):
            old.unlink()
        tests = []
        for case in cases:
            header = f"# {case.comment}\n# Captured by tools/argocd-health/capture.py from a real run.\n"
            (testdata / f"{case.name}.yaml").write_text(header + yaml.safe_dump(case.obj, sort_keys=False, width=120))
            tests.append({"healthStatus": {"status": case.status, "message": case.message},
                          "inputPath": f"testdata/{case.name}.yaml"})
        header = ("# Argo CD's health check tests (its resource_customizations format), written by\n"
                  "# tools/argocd-health/capture.py with the objects in testdata/. Run by `make argocd-health`.\n")
        (folder / "health_test.yaml").write_text(header + yaml.safe_dump({"tests": tests}, sort_keys=False,
                                                                         width=1000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kube", choices=("real", "emulator"), default="real")
    parser.add_argument("--out", type=Path, default=ROOT / "manifests" / "argocd")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="argocd-health-") as tmp:
        folder = Path(tmp)
        cloud = stack.enter_context(LocalCloud(max_running_jobs=1))
        if args.kube == "real":
            from modelarts_operator.local.realkube import RealKube

            kube = stack.enter_context(RealKube(folder / "kube"))
        else:
            from modelarts_operator.local.kube.server import LocalKube

            kube = stack.enter_context(LocalKube(kubeconfig=folder / "kubeconfig"))
        api_client = kubernetes.config.new_client_from_config(config_file=str(kube.kubeconfig))
        stack.callback(api_client.close)
        apply_crds(api_client)
        core = client.CoreV1Api(api_client)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
        core.create_namespaced_secret(NAMESPACE, client.V1Secret(metadata=client.V1ObjectMeta(name=SECRET),
                                                                 string_data=cloud.credentials()))
        start = time.monotonic()
        capture = Capture(Stack(cloud, api_client, folder / "work", NAMESPACE))
        run(capture)
        write(capture, args.out)
        print(f"captured {sum(len(c) for c in capture.cases.values())} objects in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
