"""Two replicas with Kopf's peering (manifests/peering.yaml): one reconciles, the other waits; the
leader killed (SIGKILL) is taken over within the peering lifetime, a leader stopped (SIGTERM) hands
over at once; no cloud resource is created twice. Takeover times are printed (docs/high-availability.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelarts_operator.local import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PEERING = "modelarts-operator"
LIFETIME_S = 15  # the default of --peering-lifetime
RESUMED = "Resuming operations after the pause"  # Kopf's log line when a replica becomes the active one


class Replica:
    """One `modelarts-operator run --peering` process, named in the peering object by POD_ID."""

    def __init__(self, stack, identity: str):
        self.identity, self.log = identity, stack.folder / f"replica-{identity}.log"
        self.liveness = f"http://127.0.0.1:{free_port()}/healthz"
        self.metrics_port = free_port()
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "modelarts_operator.cli", "run", "--namespace", stack.namespace,
                 "--peering", PEERING, "--peering-lifetime", str(LIFETIME_S), "--poll-fast", "1",
                 "--poll-slow", "3", "--poll-terminal", "3", "--liveness", self.liveness,
                 "--metrics-port", str(self.metrics_port)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env=dict(stack.env(), PYTHONUNBUFFERED="1", POD_ID=identity,
                         MODELARTS_OPERATOR_WORK_DIR=str(stack.folder / f"work-{identity}"),
                         KUBECONFIG=str(stack.kube.operator_kubeconfig or stack.kube.kubeconfig)))

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def reconciles(self) -> float:
        """Reconciles and finalizer runs this replica has made, from its /metrics."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            families = text_string_to_metric_families(response.read().decode())
        return sum(sample.value for family in families for sample in family.samples
                   if sample.name in ("modelarts_operator_reconciles_total", "modelarts_operator_finalizer_runs_total"))

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        self.process.wait(timeout=60)


def peers(stack) -> dict[str, dict]:
    """The live records of the namespace's peering object: identity -> {priority, lifetime, lastseen}."""
    found = stack.get("kopfpeering", PEERING) or {}
    return {k: v for k, v in (found.get("status") or {}).items() if isinstance(v, dict)}


def probe_algorithm(stack, name: str) -> dict:
    documents = [d for d in stack.local_stack() if d["kind"] == "ModelArtsAlgorithm"]
    algorithm = documents[0]
    algorithm["metadata"]["name"] = name
    algorithm["spec"]["code"]["uploadTo"] = f"obs://{stack.bucket}/code/{name}/"
    return algorithm


def seconds_until_reconciled(stack, name: str, since: float) -> float:
    """From `since` until the algorithm `name` has its first status (the new leader has reconciled it)."""
    stack.wait_for(lambda: (stack.get("modelartsalgorithm", name) or {}).get("status", {}).get("conditions"),
                   LIFETIME_S + 60, f"the algorithm {name} reconciled by the new leader", interval=0.2)
    return time.monotonic() - since


def test_one_replica_reconciles_and_the_other_takes_over(stack):
    stack.kill_operator()  # the module's standalone operator: the replicas replace it
    stack.kubectl("apply", "-f", str(ROOT / "manifests" / "peering.yaml"))
    stack.kubectl("wait", "--for=condition=Established", "crd/kopfpeerings.kopf.dev",
                  "crd/clusterkopfpeerings.kopf.dev", "--timeout=30s")
    replicas: list[Replica] = []
    try:
        a = Replica(stack, "replica-a")
        replicas.append(a)
        stack.wait_for(lambda: "replica-a" in peers(stack), 60, "replica-a in the peering object")
        b = Replica(stack, "replica-b")
        replicas.append(b)
        stack.wait_for(lambda: set(peers(stack)) == {"replica-a", "replica-b"}, 60, "replica-b in the peering object")
        assert peers(stack)["replica-a"]["priority"] > peers(stack)["replica-b"]["priority"]  # older wins

        # Work for the leader: an algorithm and a training job that runs a few seconds.
        stack.apply(probe_algorithm(stack, "algo"),
                    stack.training_job("train", "algo", hyperparameters={"epochs": "3", "train_limit": "3000"}))
        job = stack.wait_for(lambda: ((stack.get("trainingjob", "train") or {}).get("status") or {}).get("jobId"),
                             120, "the training job created by the leader")
        # A replica starts paused and resumes only when it sees no live peer above it.
        assert RESUMED in a.text() and RESUMED not in b.text(), "the younger replica is not paused"
        assert a.reconciles() > 0 and b.reconciles() == 0, "the paused replica handled an object"

        # SIGKILL the leader while its job runs: no hand-over, its record expires.
        a.stop(signal.SIGKILL)
        killed = time.monotonic()
        stack.apply(probe_algorithm(stack, "probe-kill"))
        takeover_kill = seconds_until_reconciled(stack, "probe-kill", killed)
        stack.wait_ready("trainingjob", "train", timeout=180)
        assert b.reconciles() > 0
        assert stack.get("trainingjob", "train")["status"]["jobId"] == job, "the new leader made another job"

        # A third replica joins as a follower; SIGTERM the leader: it removes its record as it stops.
        c = Replica(stack, "replica-c")
        replicas.append(c)
        stack.wait_for(lambda: "replica-c" in peers(stack), 60, "replica-c in the peering object")
        assert RESUMED not in c.text()
        b.stop(signal.SIGTERM)
        stopped = time.monotonic()
        stack.apply(probe_algorithm(stack, "probe-term"))
        takeover_term = seconds_until_reconciled(stack, "probe-term", stopped)
        assert "replica-b" not in peers(stack), "a stopped leader leaves the peering object"
        assert c.reconciles() > 0
        print(f"\ntakeover after SIGKILL: {takeover_kill:.1f} s (lifetime {LIFETIME_S} s); "
              f"after SIGTERM: {takeover_term:.1f} s")
        assert takeover_kill < LIFETIME_S + 30 and takeover_term < 30

        for name in ("algo", "probe-kill", "probe-term"):
            stack.wait_ready("modelartsalgorithm", name, timeout=120)
        inventory = stack.inventory()
        assert (inventory["algorithms"], inventory["training_jobs"]) == (3, 1), inventory

        # The last leader finalizes everything: the cloud is left empty.
        stack.kubectl("delete", "trainingjob,modelartsalgorithm", "--all", "-n", stack.namespace, "--wait",
                      "--timeout=120s", timeout=150)
        inventory = stack.inventory()
        assert (inventory["algorithms"], inventory["training_jobs"]) == (0, 0), inventory
    finally:
        for replica in replicas:
            replica.stop()
        logs = {r.identity: r.text()[-3000:] for r in replicas}
        print(json.dumps(logs, indent=1)[:9000] if any("Traceback" in t for t in logs.values()) else "")
