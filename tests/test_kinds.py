"""The guard: a kind is one complete unit. For every Kind in api.kinds.KINDS there is exactly one
controller in controller.registry.CONTROLLERS (and no controller without a Kind), manifests/rbac.yaml
grants its resource and status, manifests/samples holds a valid sample, its controller declares the
reasons its module sets and the cloud error codes of the services it calls, and crds/ has its CRD.

Each check is a function returning the problems it finds; the tests at the end feed each one a fake
kind or controller to show it reports what it guards against."""

from __future__ import annotations

import inspect
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from modelarts_operator.api.common import API_VERSION, GROUP
from modelarts_operator.api.conditions import Reason
from modelarts_operator.api.kinds import KINDS, Kind
from modelarts_operator.cloud.errors import ErrorKind
from modelarts_operator.controller.base import COMMON_REASONS, KindController
from modelarts_operator.controller.registry import CONTROLLERS

ROOT = Path(__file__).resolve().parents[1]
REASON_USE = re.compile(r"\bReason\.([A-Z][A-Z0-9_]*)\b")
RESOURCE_VERBS = {"get", "list", "watch", "patch"}  # Kopf watches and patches; the runner gets and lists
STATUS_VERBS = {"patch"}  # the one status write per reconcile


def yaml_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomization_documents(folder: Path) -> list[dict]:
    """The documents of a kustomization's resources (plain files: no kubectl needed)."""
    resources = yaml.safe_load((folder / "kustomization.yaml").read_text()).get("resources") or []
    return [doc for name in resources for doc in yaml_documents(folder / name)]


# --- the checks ----------------------------------------------------------------------------------------


def registry_problems(kinds: Iterable[Kind], controllers: Iterable[KindController]) -> list[str]:
    kinds, controllers = list(kinds), list(controllers)
    per_kind = Counter(controller.kind.kind for controller in controllers)
    problems = [f"{kind.kind}: {per_kind[kind.kind]} controllers, not 1" for kind in kinds if per_kind[kind.kind] != 1]
    known = {kind.kind: kind for kind in kinds}
    for controller in controllers:
        if known.get(controller.kind.kind) != controller.kind:
            problems.append(f"{type(controller).__name__}: its kind {controller.kind.kind} is not in KINDS")
    return problems


def rbac_problems(kind: Kind, rules: Iterable[Mapping]) -> list[str]:
    granted: dict[str, set[str]] = {}
    for rule in rules:
        if GROUP in (rule.get("apiGroups") or []):
            for resource in rule.get("resources") or []:
                granted.setdefault(resource, set()).update(rule.get("verbs") or [])
    problems = []
    for resource, verbs in ((kind.plural, RESOURCE_VERBS), (f"{kind.plural}/status", STATUS_VERBS)):
        if resource not in granted:
            problems.append(f"{kind.kind}: manifests/rbac.yaml grants nothing on {resource}")
        elif missing := verbs - granted[resource]:
            problems.append(f"{kind.kind}: manifests/rbac.yaml lacks {sorted(missing)} on {resource}")
    return problems


def sample_problems(kind: Kind, samples: Iterable[Mapping]) -> list[str]:
    mine = [doc for doc in samples if doc.get("apiVersion") == API_VERSION and doc.get("kind") == kind.kind]
    if not mine:
        return [f"{kind.kind}: no sample in manifests/samples"]
    problems = []
    for doc in mine:
        try:
            kind.spec.model_validate(doc.get("spec") or {})
        except ValidationError as exc:
            problems.append(f"{kind.kind}: sample {doc['metadata']['name']} is refused: {exc}")
    return problems


def reason_problems(controller: KindController, source: str | None = None) -> list[str]:
    """`reasons` holds Reasons only; every Reason its module (`source`) names is declared (or common to
    every kind); every declared one is set somewhere in the module (no stale declaration)."""
    name = type(controller).__name__
    declared = getattr(controller, "reasons", None)
    if not isinstance(declared, frozenset | set) or not declared:
        return [f"{name}: declares no reasons"]
    problems = [f"{name}: {value!r} in reasons is no Reason" for value in declared if not isinstance(value, Reason)]
    if source is None:
        source = inspect.getsource(inspect.getmodule(type(controller)))
    used = {Reason[member] for member in REASON_USE.findall(source) if member in Reason.__members__}
    problems += [f"{name}: sets Reason.{r.name} but does not declare it" for r in sorted(used - declared - COMMON_REASONS)]
    problems += [f"{name}: declares Reason.{r.name} but never sets it" for r in sorted(declared - used, key=str)
                 if isinstance(r, Reason)]
    problems += [f"{name}: names Reason.{m}, which does not exist" for m in REASON_USE.findall(source)
                 if m not in Reason.__members__]
    return problems


def cloud_code_problems(controller: KindController) -> list[str]:
    name = type(controller).__name__
    codes = getattr(controller, "cloud_codes", None)
    if not isinstance(codes, Mapping) or not codes:
        return [f"{name}: cloud_codes is empty"]
    return [f"{name}: cloud code {code!r} maps to {kind!r}, not an ErrorKind" for code, kind in codes.items()
            if not isinstance(code, str) or not code or not isinstance(kind, ErrorKind)]


def crd_problems(kind: Kind, crd_dir: Path) -> list[str]:
    path = crd_dir / f"{GROUP}_{kind.plural}.yaml"
    if not path.is_file():
        return [f"{kind.kind}: no {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"]
    problems = []
    crd = yaml.safe_load(path.read_text())
    names = (crd.get("spec") or {}).get("names") or {}
    if (crd.get("metadata") or {}).get("name") != kind.crd_name:
        problems.append(f"{kind.kind}: {path.name} names {crd.get('metadata', {}).get('name')}, not {kind.crd_name}")
    if (names.get("kind"), names.get("plural")) != (kind.kind, kind.plural):
        problems.append(f"{kind.kind}: {path.name} is for {names.get('kind')}/{names.get('plural')}")
    listed = yaml.safe_load((crd_dir / "kustomization.yaml").read_text()).get("resources") or []
    if path.name not in listed:
        problems.append(f"{kind.kind}: {path.name} is not in crds/kustomization.yaml")
    return problems


# --- the project passes them -----------------------------------------------------------------------------

BY_KIND = {controller.kind.kind: controller for controller in CONTROLLERS}
RBAC_RULES = [rule for doc in yaml_documents(ROOT / "manifests" / "rbac.yaml") if doc["kind"] == "ClusterRole"
              for rule in doc["rules"]]
SAMPLES = kustomization_documents(ROOT / "manifests" / "samples")


def test_one_controller_per_kind_and_no_other():
    assert registry_problems(KINDS, CONTROLLERS) == []


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_kind_is_complete(kind):
    controller = BY_KIND[kind.kind]
    problems = (rbac_problems(kind, RBAC_RULES) + sample_problems(kind, SAMPLES) + reason_problems(controller)
                + cloud_code_problems(controller) + crd_problems(kind, ROOT / "crds"))
    assert problems == []


def test_every_reason_is_set_by_someone():
    """The public vocabulary has no reason that no controller (nor the runner, for every kind) sets."""
    declared = set(COMMON_REASONS).union(*(controller.reasons for controller in CONTROLLERS))
    assert set(Reason) - declared == set()


# --- each check reports what it guards against -------------------------------------------------------------


class WidgetSpec(BaseModel):
    size: int


class WidgetStatus(BaseModel):
    pass


WIDGET = Kind("Widget", "widgets", (), WidgetSpec, WidgetStatus)


class WidgetController(KindController):
    kind = WIDGET
    reasons = frozenset({Reason.CREATED, Reason.PENDING})
    cloud_codes = {"Widget.0001": ErrorKind.NOT_FOUND}


WIDGET_SOURCE = """
outcome.conditions = [ready(Reason.CREATED, "made"), not_ready(Reason.FAILED, "broken")]
raise ReconcileError("no", Reason.INVALID_SPEC)  # common to every kind: need not be declared
raise ReconcileError("no", Reason.NO_SUCH_REASON)
"""


def test_registry_check_reports_a_kind_without_controller_and_a_controller_without_kind():
    assert registry_problems([*KINDS, WIDGET], CONTROLLERS) == ["Widget: 0 controllers, not 1"]
    assert registry_problems(KINDS, [*CONTROLLERS, WidgetController()]) == [
        "WidgetController: its kind Widget is not in KINDS"]
    twice = registry_problems(KINDS, [*CONTROLLERS, type(CONTROLLERS[0])()])
    assert twice == [f"{CONTROLLERS[0].kind.kind}: 2 controllers, not 1"]


def test_rbac_check_reports_missing_grants():
    assert rbac_problems(WIDGET, RBAC_RULES) == ["Widget: manifests/rbac.yaml grants nothing on widgets",
                                                 "Widget: manifests/rbac.yaml grants nothing on widgets/status"]
    rules = [{"apiGroups": [GROUP], "resources": ["widgets"], "verbs": ["get", "list"]},
             {"apiGroups": ["other.example.com"], "resources": ["widgets/status"], "verbs": ["patch"]}]
    assert rbac_problems(WIDGET, rules) == ["Widget: manifests/rbac.yaml lacks ['patch', 'watch'] on widgets",
                                            "Widget: manifests/rbac.yaml grants nothing on widgets/status"]


def test_sample_check_reports_a_missing_or_refused_sample():
    assert sample_problems(WIDGET, SAMPLES) == ["Widget: no sample in manifests/samples"]
    refused = {"apiVersion": API_VERSION, "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": "big"}}
    [problem] = sample_problems(WIDGET, [refused])
    assert problem.startswith("Widget: sample w is refused")
    assert sample_problems(WIDGET, [dict(refused, spec={"size": 1})]) == []


def test_reason_check_reports_undeclared_stale_and_unknown_reasons():
    assert reason_problems(WidgetController(), WIDGET_SOURCE) == [
        "WidgetController: sets Reason.FAILED but does not declare it",
        "WidgetController: declares Reason.PENDING but never sets it",
        "WidgetController: names Reason.NO_SUCH_REASON, which does not exist",
    ]

    class Undeclared(WidgetController):
        reasons = frozenset()

    class NotReasons(WidgetController):
        reasons = frozenset({"Created"})

    assert reason_problems(Undeclared(), WIDGET_SOURCE) == ["Undeclared: declares no reasons"]
    assert "NotReasons: 'Created' in reasons is no Reason" in reason_problems(NotReasons(), WIDGET_SOURCE)


def test_cloud_code_check_reports_empty_or_untyped_codes():
    assert cloud_code_problems(WidgetController()) == []

    class NoCodes(WidgetController):
        cloud_codes = {}

    class Untyped(WidgetController):
        cloud_codes = {"Widget.0001": "not_found"}

    assert cloud_code_problems(NoCodes()) == ["NoCodes: cloud_codes is empty"]
    assert cloud_code_problems(Untyped()) == ["Untyped: cloud code 'Widget.0001' maps to 'not_found', not an ErrorKind"]


def test_crd_check_reports_a_missing_wrong_or_unlisted_crd(tmp_path):
    assert crd_problems(WIDGET, ROOT / "crds") == [f"Widget: no crds/{GROUP}_widgets.yaml"]
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"gadgets.{GROUP}"}, "spec": {"names": {"kind": "Gadget", "plural": "gadgets"}}}
    (tmp_path / f"{GROUP}_widgets.yaml").write_text(yaml.safe_dump(crd))
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({"resources": []}))
    assert crd_problems(WIDGET, tmp_path) == [
        f"Widget: {GROUP}_widgets.yaml names gadgets.{GROUP}, not widgets.{GROUP}",
        f"Widget: {GROUP}_widgets.yaml is for Gadget/gadgets",
        f"Widget: {GROUP}_widgets.yaml is not in crds/kustomization.yaml",
    ]
