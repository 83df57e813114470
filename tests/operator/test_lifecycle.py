"""Deleting a namespace with resources in every phase, the operator killed and restarted while it
terminates: the namespace goes, nothing is left in the cloud, and the credentials Secret (which the
namespace controller deletes at the same time) stays readable until the last resource is finalized.
Also: server-side apply of the samples does not fight with the operator's own writes."""

from __future__ import annotations

import json

import pytest
import yaml

from support import SLEEPING

pytestmark = pytest.mark.slow

MAX_RUNNING_JOBS = 2  # the sleeping job must not hold up the pipeline's job
SECRET_FINALIZER = "modelarts.mlops.dev/in-use"


def secret_finalizers(stack) -> list[str] | None:
    obj = stack.kubectl_run("get", "secret", "modelarts-credentials", "-n", stack.namespace, "-o", "json", check=False)
    return json.loads(obj.stdout)["metadata"].get("finalizers", []) if obj.returncode == 0 else None


def reason(obj: dict | None) -> str | None:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c.get("reason") for c in conditions if c["type"] == "Ready"), None)


def test_namespace_deleted_in_every_phase_with_an_operator_restart(stack):
    stack.kubectl("apply", "-f", "-", "-n", stack.namespace, input="\n---\n".join(
        yaml.safe_dump(doc) for doc in stack.local_stack(**stack.small_training)))
    stack.apply(stack.config_map("sleeping-code", {"train.py": SLEEPING}),
                stack.algorithm("algo-sleeping", "sleeping-code"),
                stack.training_job("tj-sleeping", "algo-sleeping"),
                stack.training_job("tj-waiting", "algo-not-there"))
    stack.wait_ready("modelartsservice", "mnist-service", timeout=240)
    stack.wait_for(lambda: ((stack.get("trainingjob", "tj-sleeping") or {}).get("status") or {}).get("phase")
                   == "Running", 60, "tj-sleeping to run")
    stack.wait_condition("trainingjob", "tj-waiting", "False", "WaitingForDependency")
    assert SECRET_FINALIZER in secret_finalizers(stack), "the Secret in use is not protected"
    before = stack.inventory()
    assert (before["training_jobs"], before["services"]) == (2, 1), before

    stack.kubectl("delete", "namespace", stack.namespace, "--wait=false")
    # Kill the operator in the middle of the clean-up, and start it again while the namespace terminates.
    stack.wait_for(lambda: stack.get("trainingjob", "tj-sleeping") is None or
                   stack.get("modelartsservice", "mnist-service") is None, 60, "the clean-up to start")
    stack.kill_operator()
    phase = json.loads(stack.kubectl("get", "namespace", stack.namespace, "-o", "json"))["status"]["phase"]
    assert phase == "Terminating"
    finalizers = secret_finalizers(stack)
    assert finalizers is not None and SECRET_FINALIZER in finalizers, "the Secret went before its users"
    stack.start_operator()

    try:
        stack.wait_for(lambda: stack.kubectl_run("get", "namespace", stack.namespace, check=False).returncode != 0,
                       120, "the namespace to be gone")
    except AssertionError:
        print(stack.kubectl("get", "namespace", stack.namespace, "-o", "yaml"))
        print(stack.kubectl("get", "modelarts,secrets,configmaps", "-n", stack.namespace, "-o", "yaml"))
        if stack.real_kube:
            for e in list(stack.real_kube.audit_events())[-60:]:
                print(e.get("stageTimestamp"), e.get("verb"), e.get("requestURI"), (e.get("responseStatus") or {}).get("code"))
        raise
    left = stack.inventory()
    assert (left["algorithms"], left["training_jobs"], left["models"], left["services"]) == (0, 0, 0, 0), left
    assert left["objects"] == [], f"objects left behind: {left['objects']}"


def test_deleting_the_last_user_releases_the_secret(stack):
    """Outside a namespace deletion: the Secret keeps its finalizer while any resource uses it."""
    stack.kubectl("create", "namespace", stack.namespace, check=False)
    stack.wait_for(lambda: stack.kubectl_run("get", "namespace", stack.namespace, "-o", "json").returncode == 0,
                   30, "the namespace")
    stack.apply(stack.secret("modelarts-credentials"),
                stack.config_map("sleeping-code", {"train.py": SLEEPING}),
                stack.algorithm("algo-a", "sleeping-code"), stack.algorithm("algo-b", "sleeping-code"))
    stack.wait_ready("modelartsalgorithm", "algo-a")
    stack.wait_ready("modelartsalgorithm", "algo-b")
    # Within the credentials cache time (5 s) the Secret of the same name in the old namespace may
    # still be the one in use; the next read protects the new one.
    stack.wait_for(lambda: SECRET_FINALIZER in secret_finalizers(stack), 30, "the Secret to be protected")
    stack.delete("modelartsalgorithm", "algo-a")
    assert SECRET_FINALIZER in secret_finalizers(stack), "released while algo-b still uses it"
    stack.delete("modelartsalgorithm", "algo-b")
    stack.wait_for(lambda: SECRET_FINALIZER not in secret_finalizers(stack), 30, "the Secret to be released")
    # A user can now delete it at once.
    stack.kubectl("delete", "secret", "modelarts-credentials", "-n", stack.namespace, "--timeout=20s")
