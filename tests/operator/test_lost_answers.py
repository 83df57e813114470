"""Lost answers leak nothing: the operator dies right after a cloud create (before recording it), the
resources are deleted while it is down, and the restarted operator's finalizers still find and delete
everything: uploaded code files, the training job and its output version, the imported model."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

ORDER = [("mnistdataset", "mnist"), ("modelartsalgorithm", "mnist-tensorflow"), ("trainingjob", "mnist-train"),
         ("modelartsservice", "mnist-service")]


@pytest.mark.parametrize("crash_point", ["code", "trainingjob", "model"])
def test_crash_then_delete_while_stopped_leaves_nothing(stack, crash_point):
    stack.kill_operator()
    stack.start_operator(env={"MODELARTS_OPERATOR_CRASH_AFTER_CREATE": crash_point}, wait_live=False)
    stack.apply(*stack.local_stack(**stack.small_training))
    stack.wait_for(lambda: not stack.operator_alive(), 240, f"the operator to crash after creating {crash_point}")
    assert stack.process.returncode == 137 and f"crash point after creating {crash_point}" in stack.log_text()
    left_behind = stack.inventory()
    what = {"code": "objects", "trainingjob": "training_jobs", "model": "models"}[crash_point]
    assert left_behind[what], f"the crash left nothing to find: {left_behind}"

    for kind, name in ORDER:  # deleted while the operator is down: only the finalizers can clean up
        stack.kubectl("delete", kind, name, "-n", stack.namespace, "--wait=false")
    stack.start_operator()
    for kind, name in ORDER:
        stack.wait_gone(kind, name, timeout=120)

    assert stack.inventory() == {"algorithms": 0, "training_jobs": 0, "models": 0, "services": 0, "objects": []}
