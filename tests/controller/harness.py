"""The reconcile-level test layer: each kind's controller called through `Runner.reconcile`/`finalize` on an
in-process LocalKube and LocalCloud (no subprocess of ours, no Kopf, no mock of this project's code).

`Stack` holds the Kubernetes API (the official client on a LocalKube), the LocalCloud, the operator's
`Context` and `Runner`, and our cloud clients for looking at the cloud side. Objects are created through the
API (uid, generation and resourceVersion as the real thing) and carry the finalizer Kopf would add; each
reconcile re-reads the object first, as the daemon does.

Scenarios are tables: `Scenario(given, expect)` rows, each row run by `run_scenario` (after ACK's
`test_suite.yaml`: given / invoke / expect). Test modules import this file (`from controller.harness import
...`); conftest.py only builds the stack.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelarts_operator.api.common import API_VERSION, GROUP, VERSION
from modelarts_operator.api.conditions import TERMINAL_REASONS, find_condition
from modelarts_operator.api.kinds import KINDS, Kind
from modelarts_operator.cloud import CloudCredentials, ModelArtsApi, ObsStore, ObsUrl
from modelarts_operator.controller.context import Context, Outcome, Requeue, Resource
from modelarts_operator.controller.errors import RetryLater
from modelarts_operator.controller.kube import Kube
from modelarts_operator.controller.registry import BY_KIND
from modelarts_operator.controller.runner import Runner, parse
from modelarts_operator.controller.settings import FINALIZER, Settings
from modelarts_operator.local.cloud import LocalCloud
from support import FAILING, FAST_RETRIES, QUICK, SLEEPING  # noqa: F401 - scenarios import the boot files from here

SECRET = "modelarts-credentials"
BUCKET = "ctl-test"
INPUT = f"obs://{BUCKET}/input/"
KIND_BY_NAME = {kind.kind: kind for kind in KINDS}

# Writes a servable model package without TensorFlow: config.json of model_type Custom and the inference
# code that comes with it in the ConfigMap (service.py), so a service deploys in about a second.
PACKAGING = """\
import argparse, json, os, shutil
parser = argparse.ArgumentParser()
parser.add_argument("--train_url")
args, unknown = parser.parse_known_args()
model = os.path.join(args.train_url, "model")
os.makedirs(model, exist_ok=True)
config = {"model_algorithm": "image_classification", "model_type": "Custom",
          "metrics": {"accuracy": 0.5, "f1": 0.5, "precision": 0.5, "recall": 0.5}}
with open(os.path.join(model, "config.json"), "w") as f:
    json.dump(config, f)
shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "service.py"),
            os.path.join(model, "customize_service.py"))
print("packaged a model")
"""
SERVICE_CODE = """\
from model_service.tfserving_model_service import TfServingBaseService


class EchoService(TfServingBaseService):
    def __init__(self, model_name, model_path):  # no SavedModel to load: answers without TensorFlow
        self.model_name, self.model_path = model_name, model_path

    def inference(self, data):
        return {"echo": data}
"""


def algorithm_spec(name: str, config_map: str) -> dict[str, Any]:
    return {"code": {"configMap": config_map, "uploadTo": f"obs://{BUCKET}/code/{name}/"}, "bootFile": "train.py"}


def job_spec(name: str, algorithm: str, **spec: Any) -> dict[str, Any]:
    """A run of `algorithm` on a one-file input folder (INPUT), writing obs://BUCKET/output/<name>/Vnnnn/."""
    return {"algorithmRef": {"name": algorithm}, "inputs": [{"name": "data_url", "obsPath": INPUT}],
            "output": {"name": "train_url", "obsPath": f"obs://{BUCKET}/output/{name}/"}, **spec}


def ready_of(obj: dict | None) -> dict:
    return find_condition((obj or {}).get("status"), "Ready")


@dataclass
class Step:
    """One `Runner.reconcile`: the object before and after, the outcome, the events it posted."""

    before: dict
    after: dict
    outcome: Outcome
    events: list[tuple[str, str, str]]

    @property
    def written(self) -> bool:
        return self.before["metadata"]["resourceVersion"] != self.after["metadata"]["resourceVersion"]

    @property
    def ready(self) -> dict:
        return ready_of(self.after)

    @property
    def reason(self) -> str | None:
        return self.ready.get("reason")

    @property
    def status(self) -> dict:
        return self.after.get("status") or {}


@dataclass
class Run:
    """Reconciles of one object until a condition held."""

    steps: list[Step] = field(default_factory=list)

    @property
    def last(self) -> Step:
        return self.steps[-1]

    @property
    def events(self) -> list[tuple[str, str, str]]:
        return [event for step in self.steps for event in step.events]

    @property
    def event_reasons(self) -> set[str]:
        return {reason for _, reason, _ in self.events}

    def warnings(self, reason: str) -> list[str]:
        return [message for type_, r, message in self.events if type_ == "Warning" and r == reason]

    @property
    def ready_reasons(self) -> list[str]:
        """The Ready reasons seen, in order, without repeats."""
        seen: list[str] = []
        for step in self.steps:
            if step.reason and (not seen or seen[-1] != step.reason):
                seen.append(step.reason)
        return seen


class Stack:
    """The Kubernetes API, the cloud, the operator's runner and our own cloud clients, for one namespace."""

    def __init__(self, cloud: LocalCloud, api_client: client.ApiClient, work_dir: Path, namespace: str):
        self.cloud, self.api_client, self.namespace = cloud, api_client, namespace
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.settings = Settings(poll_fast_s=0.2, poll_slow_s=1.0, poll_terminal_s=1.0, work_dir=work_dir,
                                 mnist_local_dirs=[])
        self.ctx = Context(Kube(api_client), self.settings)
        self.runner = Runner(self.ctx, BY_KIND)
        creds = CloudCredentials.from_mapping(cloud.credentials())
        self.api = ModelArtsApi(lambda: creds, FAST_RETRIES)
        self.obs = ObsStore(lambda: creds, FAST_RETRIES)
        self.obs.ensure_bucket(BUCKET)
        self.obs.upload_bytes(b"a tiny input\n", ObsUrl.parse(INPUT).join("data.txt"))

    # --- Kubernetes objects ------------------------------------------------------------------------

    def config_map(self, name: str, files: dict[str, str]) -> None:
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=files)
        try:
            self.core.create_namespaced_config_map(self.namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            self.core.replace_namespaced_config_map(name, self.namespace, body)

    def create(self, kind: Kind, name: str, spec: dict[str, Any]) -> dict:
        """Create through the API, with the finalizer Kopf would have added before the first reconcile."""
        body = {"apiVersion": API_VERSION, "kind": kind.kind,
                "metadata": {"name": name, "finalizers": [FINALIZER]}, "spec": spec}
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, kind.plural, body)

    def get(self, kind: Kind, name: str) -> dict | None:
        return self.ctx.kube.get(kind, self.namespace, name)

    def patch_spec(self, kind: Kind, name: str, spec: dict[str, Any]) -> dict:
        return self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, kind.plural, name,
                                                          {"spec": spec})

    def resource(self, kind: Kind, name: str) -> Resource:
        """The object as its controller sees it (the runner's own parse)."""
        return parse(BY_KIND[kind.kind], self.get(kind, name))

    def ready_object(self, kind: Kind, name: str, spec: dict[str, Any], reason: str | None = None,
                     timeout: float = 60) -> dict:
        """Create an object and reconcile it until Ready=True (or Ready has `reason`): a dependency."""
        self.create(kind, name, spec)

        def done(step: Step) -> bool:
            if reason is not None:
                return step.reason == reason
            assert step.reason not in TERMINAL_REASONS, f"{kind.kind} {name}: {step.ready}"
            return step.ready.get("status") == "True"

        return self.reconcile_until(kind, name, done, timeout).last.after

    def code_algorithm(self, name: str, files: dict[str, str]) -> dict:
        """A Ready algorithm whose code is a ConfigMap of the same name (boot file train.py)."""
        self.config_map(name, files)
        return self.ready_object(KIND_BY_NAME["ModelArtsAlgorithm"], name, algorithm_spec(name, name))

    # --- the runner ----------------------------------------------------------------------------------

    def reconcile(self, kind: Kind, name: str) -> Step:
        """One reconcile as the daemon runs it: read the object, reconcile, collect events."""
        before = self.get(kind, name)
        assert before is not None, f"{kind.kind} {name} does not exist"
        return self.reconcile_body(kind, before)

    def reconcile_body(self, kind: Kind, body: dict) -> Step:
        """One reconcile of `body` as given (e.g. a spec the CRD of today would refuse)."""
        events: list[tuple[str, str, str]] = []
        outcome = self.runner.reconcile(kind.kind, body, lambda *event: events.append(event))
        return Step(body, self.get(kind, body["metadata"]["name"]), outcome, events)

    def reconcile_until(self, kind: Kind, name: str, done: Callable[[Step], bool], timeout: float = 30,
                        interval: float = 0.05) -> Run:
        """Reconcile until `done(step)`; fails with the last status on timeout."""
        run = Run()
        deadline = time.monotonic() + timeout
        while True:
            run.steps.append(self.reconcile(kind, name))
            if done(run.last):
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"{kind.kind} {name}: not done after {len(run.steps)} reconciles in {timeout}s; "
                                     f"Ready reasons {run.ready_reasons}, events {run.events}, "
                                     f"last status {run.last.status}")
            time.sleep(interval)

    def reconcile_to(self, kind: Kind, name: str, reason: str, requeue: Requeue | None = None,
                     timeout: float = 30) -> Run:
        """Until Ready carries `reason` (and the outcome `requeue`, when given); another terminal reason on
        the way fails at once."""

        def done(step: Step) -> bool:
            if step.reason != reason and step.reason in TERMINAL_REASONS:
                raise AssertionError(f"{kind.kind} {name} is {step.reason}, not {reason}: {step.ready}")
            return step.reason == reason and requeue in (None, step.outcome.requeue)

        return self.reconcile_until(kind, name, done, timeout)

    def finalize(self, kind: Kind, name: str, timeout: float = 30) -> tuple[int, list[tuple[str, str, str]]]:
        """Delete the object and run the finalizer until it succeeds, then remove the finalizer as Kopf does.
        Returns how often it had to wait (RetryLater) and the events it posted."""
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, kind.plural, name)
        events: list[tuple[str, str, str]] = []
        waits = 0
        deadline = time.monotonic() + timeout
        while True:
            body = self.get(kind, name)
            assert body["metadata"].get("deletionTimestamp"), "the object is not being deleted"
            try:
                self.runner.finalize(kind.kind, body, lambda *event: events.append(event))
                break
            except RetryLater:
                waits += 1
                if time.monotonic() > deadline:
                    message = f"{kind.kind} {name}: finalizer still waiting after {timeout}s: {events}"
                    raise AssertionError(message) from None
                time.sleep(0.05)
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, kind.plural, name,
                                                   {"metadata": {"finalizers": None}})
        assert self.get(kind, name) is None
        return waits, events

    # --- the cloud side -----------------------------------------------------------------------------

    def cloud_records(self, kind: Kind, name: str) -> dict[str, list[dict]]:
        """The emulator's records the object made, by family: each carries "<Kind> <ns>/<name> (managed...)"."""
        marker = f"{kind.kind} {self.namespace}/{name} (managed by modelarts-operator)"
        state = self.cloud.state
        found = {
            "algorithms": [r for r in list(state.algorithms.values()) if r["metadata"]["description"] == marker],
            "jobs": [r for r in list(state.jobs.values()) if r["metadata"]["description"] == marker],
            "models": [r for r in list(state.models.values()) if r["description"] == marker],
            "services": [r for r in list(state.services.values()) if r["description"] == marker],
        }
        return {family: records for family, records in found.items() if records}

    def cloud_counts(self, kind: Kind, name: str) -> dict[str, int]:
        return {family: len(records) for family, records in self.cloud_records(kind, name).items()}

    def object_names(self, folder: str) -> list[str]:
        url = ObsUrl.parse(folder)
        return sorted(o.key[len(url.key):] for o in self.obs.list(url))

    @contextmanager
    def cloud_calls(self) -> Iterator[dict[str, int]]:
        """Count the requests ModelArts answers (the local cloud's counters) and the OBS operations our
        ObsStore makes (a pass-through counter: the local OBS keeps no counters) inside the block."""
        counts: dict[str, int] = {}
        original = ObsStore._call

        def counted(store, operation, fn):
            counts["obs"] = counts.get("obs", 0) + 1
            return original(store, operation, fn)

        self.cloud.reset_counters()
        ObsStore._call = counted
        try:
            yield counts
        finally:
            ObsStore._call = original
            counts["modelarts"] = sum(self.cloud.counters().values())
            counts.setdefault("obs", 0)


# --- scenario tables ----------------------------------------------------------------------------------


@dataclass
class Case:
    """One scenario's object: the stack, its kind and name, and what its steps learnt on the way."""

    stack: Stack
    kind: Kind
    name: str
    spec: dict[str, Any]
    run: Run = field(default_factory=Run)
    notes: dict[str, Any] = field(default_factory=dict)

    def create(self) -> dict:
        return self.stack.create(self.kind, self.name, self.spec)

    def get(self) -> dict:
        return self.stack.get(self.kind, self.name)

    @property
    def status(self) -> dict:
        return self.get().get("status") or {}

    def counts(self) -> dict[str, int]:
        return self.stack.cloud_counts(self.kind, self.name)


@dataclass(frozen=True)
class Expect:
    """What must hold after the scenario's invoke: reconciles until Ready has `reason` with `requeue`."""

    reason: str
    ready: str  # "True" or "False"
    requeue: Requeue
    events: frozenset[str] = frozenset()  # event reasons posted during the invoke
    no_events: frozenset[str] = frozenset()  # event reasons that must not have been posted
    status: tuple[str, ...] = ()  # status fields that must be set
    cloud: dict[str, int] | None = None  # cloud records of the object afterwards, by family
    check: Callable[[Case], None] | None = None  # anything else


@dataclass(frozen=True)
class Scenario:
    id: str
    spec: Callable[[str], dict[str, Any]]  # the object's spec, from its name
    expect: Expect
    given: tuple[Callable[[Case], Any], ...] = ()  # steps before the invoke, after the object is created
    created_by_given: bool = False  # ... unless a given step creates it itself (e.g. to know its uid first)
    timeout: float = 30


def run_scenario(stack: Stack, kind: Kind, scenario: Scenario, name: str) -> Case:
    """given -> invoke (reconcile until Ready has the expected reason) -> expect."""
    case = Case(stack, kind, name, scenario.spec(name))
    if not scenario.created_by_given:
        case.create()
    for step in scenario.given:
        step(case)
    expect = scenario.expect
    try:
        run = stack.reconcile_to(kind, name, expect.reason, expect.requeue, scenario.timeout)
    finally:
        stack.cloud.set_faults(None)  # faults apply to the invoke only
    case.run = run
    last = run.last
    assert last.ready.get("status") == expect.ready, last.ready
    assert last.outcome.requeue is expect.requeue, (last.outcome.requeue, last.ready)
    assert last.status.get("observedGeneration") == last.after["metadata"]["generation"]
    assert expect.events <= run.event_reasons, f"events {run.events} lack {expect.events - run.event_reasons}"
    assert not expect.no_events & run.event_reasons, f"unexpected events in {run.events}"
    for name_ in expect.status:
        assert last.status.get(name_) not in (None, "", []), f"status.{name_} not set: {last.status}"
    if expect.cloud is not None:
        assert case.counts() == expect.cloud, case.stack.cloud_records(kind, name)
    if expect.check is not None:
        expect.check(case)
    return case


# Reusable given steps ----------------------------------------------------------------------------------


def to_ready(case: Case) -> None:
    """Reconcile until Ready=True (the object's first life); a terminal reason fails at once."""

    def done(step: Step) -> bool:
        assert step.reason not in TERMINAL_REASONS, f"{case.kind.kind} {case.name}: {step.ready}"
        return step.ready.get("status") == "True"

    case.notes["first"] = case.stack.reconcile_until(case.kind, case.name, done, timeout=60)


def faults(error_429: float, error_500: float) -> Callable[[Case], None]:
    def inject(case: Case) -> None:
        case.stack.cloud.set_faults(None, error_429=error_429, error_500=error_500)
    inject.__name__ = f"faults_{error_429}_{error_500}"
    return inject
