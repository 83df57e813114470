"""The catalog of hostile specs (tests/catalog/) against the operator's own models, the second line
behind the API server: what the CRD refuses the models refuse, naming the same field; what the CRD
accepts they parse, except what the operator alone finds invalid (InvalidSpec). No stack: fast.
Also: the catalog is well formed, large enough, and docs/catalog.md is current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from catalogcases import CASES, Case, summary_markdown
from pydantic import ValidationError

from modelarts_operator.api.conditions import Reason
from modelarts_operator.api.kinds import KINDS

DOC = Path(__file__).resolve().parents[1] / "docs" / "catalog.md"


def fields(error: ValidationError) -> list[str]:
    """Each error's field as the API server writes it: spec.inputs.0.name; a rule's error is placed at its
    model, and names its field first ("Value error, obsPath: ...")."""
    paths = []
    for item in error.errors():
        rule_field = re.match(r"Value error, (\w+): ", item["msg"])
        paths.append(".".join(["spec", *map(str, item["loc"]), *([rule_field[1]] if rule_field else [])]))
    return paths


@pytest.mark.parametrize("case", [c for c in CASES if c.refused and not c.update], ids=lambda c: c.id)
def test_refused_by_the_models_too(case: Case):
    """The same field (or below it): spec.inputs[0] is spec.inputs.0 here."""
    with pytest.raises(ValidationError) as error:
        case.kind.spec.model_validate(case.object["spec"])
    want = re.sub(r"\[(\d+)\]", r".\1", case.refused)
    assert any(f == want or f.startswith(want + ".") for f in fields(error.value)), \
        f"{want} is not named in:\n{error.value}"
    assert case.refused != "spec" or case.message in str(error.value)  # a rule on the whole spec: its message


@pytest.mark.parametrize("case", [c for c in CASES if c.reason], ids=lambda c: c.id)
def test_parked_specs_parse_unless_invalid(case: Case):
    spec = case.object["spec"]
    if case.reason == "InvalidSpec" and not case.expect.get("checkedAgainst"):
        with pytest.raises(ValidationError) as error:
            case.kind.spec.model_validate(spec)
        assert case.message in str(error.value)
    else:
        case.kind.spec.model_validate(spec)


def test_the_catalog_is_well_formed():
    for case in CASES:
        assert case.object_name.startswith({"MnistDataset": "ds-", "ModelArtsAlgorithm": "algo-", "TrainingJob": "tj-",
                                            "ModelArtsService": "svc-"}[case.kind.kind]), case.id
        assert case.refused is None or case.refused.startswith("spec"), case.id
        assert case.reason is None or case.reason in Reason.__members__.values(), f"{case.id}: unknown reason"
    for kind in KINDS:
        assert sum(c.kind is kind for c in CASES) >= 20, f"fewer than 20 {kind.kind} cases"


def test_docs_catalog_is_current():
    assert DOC.read_text() == summary_markdown(), \
        "docs/catalog.md is stale: .venv/bin/python tests/catalogcases.py rewrites it"
