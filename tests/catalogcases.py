"""The catalog of hostile specs (tests/catalog/<kind>/<case>.yaml): what a careless or hostile user
writes, and what must happen to it. One file per case:

    description: what the user wrote
    expect:
      refused: spec.target        # refused at apply (or at `update`): the API server's error names this field
      message: obs://             # optional: also in the error (refused) or in the Ready message (reason)
      # or
      reason: CodeMissing         # accepted, then Ready=False with this reason
      checkedAgainst: ModelArtsAlgorithm   # optional, with InvalidSpec: the spec parses; the operator finds
                                  # it invalid against the referenced object
    pending: [outcome, deletion]  # optional: what the operator does not do yet (its test xfails strictly);
                                  # `pending: true` is [outcome]
    setup: []                     # optional: objects applied first (Secrets, ConfigMaps, resources of ours)
    object: {...}                 # the resource
    update: {...}                 # optional: a spec merge patch applied once `object` was accepted

`!repeat {text: ab/, times: 3, prefix: x, suffix: y}` builds a long string (x + ab/ab/ab/ + y).

Catalog cases write only to the bucket CATALOG_BUCKET; SEED_BUCKET holds SEED_OBJECTS, put there first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelarts_operator.api.kinds import KINDS, Kind

CATALOG = Path(__file__).resolve().parent / "catalog"
BY_FOLDER = {kind.singular: kind for kind in KINDS}  # mnistdataset, modelartsalgorithm, trainingjob, ...
CATALOG_BUCKET = "catalog-modelarts"
SEED_BUCKET = "catalog-seed"
SEED_OBJECTS = {  # obs://catalog-seed/<key>: an OBS folder with code but no train.py; empty/ is a folder marker
    "code-without-boot-file/helper.py": b"print('not the boot file')\n",
    "mnist-incomplete/train-images-idx3-ubyte.gz": b"not really gzip\n",
    "empty/": b"",
}
CASE_KEYS = {"description", "expect", "pending", "setup", "object", "update"}
EXPECT_KEYS = {"refused", "reason", "message", "checkedAgainst"}


class CaseLoader(yaml.SafeLoader):
    pass


def _repeat(loader: CaseLoader, node: yaml.Node) -> str:
    spec = loader.construct_mapping(node)
    return f"{spec.get('prefix', '')}{spec['text'] * spec['times']}{spec.get('suffix', '')}"


CaseLoader.add_constructor("!repeat", _repeat)


@dataclass(frozen=True)
class Case:
    kind: Kind
    name: str  # the file's stem
    description: str
    object: dict
    expect: dict
    setup: list[dict] = field(default_factory=list)
    update: dict | None = None
    pending: tuple[str, ...] = ()  # outcome, deletion

    @property
    def id(self) -> str:
        return f"{self.kind.singular}/{self.name}"

    @property
    def object_name(self) -> str:
        return self.object["metadata"]["name"]

    @property
    def refused(self) -> str | None:
        return self.expect.get("refused")

    @property
    def reason(self) -> str | None:
        return self.expect.get("reason")

    @property
    def message(self) -> str | None:
        return self.expect.get("message")

    @property
    def outcome(self) -> str:
        """refused, refused-update, or the expected reason."""
        if self.refused:
            return "refused-update" if self.update else "refused"
        return self.reason


def load(path: Path) -> Case:
    data: dict[str, Any] = yaml.load(path.read_text(), Loader=CaseLoader)  # noqa: S506 - SafeLoader + !repeat
    kind = BY_FOLDER[path.parent.name]
    problems = [f"unknown keys {sorted(set(data) - CASE_KEYS)}"] if set(data) - CASE_KEYS else []
    expect = data.get("expect") or {}
    if set(expect) - EXPECT_KEYS or (("refused" in expect) == ("reason" in expect)):
        problems.append("expect needs exactly one of refused, reason (and optionally message, checkedAgainst)")
    obj = data.get("object") or {}
    if obj.get("kind") != kind.kind:
        problems.append(f"object.kind must be {kind.kind} (the folder)")
    pending = ("outcome",) if data.get("pending") is True else tuple(data.get("pending") or ())
    if set(pending) - {"outcome", "deletion"}:
        problems.append("pending is true or a list of outcome, deletion")
    if data.get("update") and "refused" not in expect:
        problems.append("an update is only there to be refused")
    if problems:
        raise ValueError(f"{path}: {'; '.join(problems)}")
    return Case(kind, path.stem, data["description"], obj, expect, data.get("setup") or [], data.get("update"),
                pending)


def load_all() -> list[Case]:
    cases = [load(path) for path in sorted(CATALOG.glob("*/*.yaml"))]
    names = [c.object_name for c in cases] + [s["metadata"]["name"] for c in cases for s in c.setup]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"object names used by more than one case: {duplicated}")
    return cases


CASES = load_all()


def counts(cases: list[Case] = CASES) -> dict[str, dict[str, int]]:
    """kind -> outcome -> number of cases."""
    table: dict[str, dict[str, int]] = {}
    for case in cases:
        row = table.setdefault(case.kind.kind, {})
        row[case.outcome] = row.get(case.outcome, 0) + 1
    return table


def summary_markdown(cases: list[Case] = CASES) -> str:
    """docs/catalog.md: the counts per kind and outcome, and the cases waiting for the operator."""
    table = counts(cases)
    reasons = sorted({o for row in table.values() for o in row} - {"refused", "refused-update"})
    names = [kind.kind for kind in KINDS]

    def row(label: str, values: list[int]) -> str:
        return f"| {label} | " + " | ".join(map(str, values)) + " |"

    lines = [
        "# The catalog of hostile specs",
        "",
        "Generated from `tests/catalog/` by `.venv/bin/python tests/catalogcases.py`; do not edit",
        "(`tests/test_catalog_models.py` fails when it is stale). Each case is one file: a bad resource and",
        "what must happen to it, on both Kubernetes backends (`tests/operator/test_catalog.py`): refused at",
        "apply with the field named (or, for an immutable field, the change refused), or accepted and then",
        "`Ready=False` with a specific reason within seconds; no traceback in the operator log; every object",
        "deleted within a minute, leaving nothing in the cloud. `tests/test_catalog_models.py` checks that",
        "the operator's own models refuse what the API server refuses, naming the same field.",
        "",
        "| kind | refused at apply | change refused | Ready=False | total |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in names:
        got = table.get(name, {})
        refused, update = got.get("refused", 0), got.get("refused-update", 0)
        lines.append(row(name, [refused, update, sum(got.values()) - refused - update, sum(got.values())]))
    lines += ["", "| Ready=False reason | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    lines += [row(f"`{reason}`", [table.get(name, {}).get(reason, 0) for name in names]) for reason in reasons]
    pending = [c for c in cases if c.pending]
    lines += ["", "Waiting for the operator (`pending:`, their tests xfail strictly until it does):", ""]
    lines += [f"- `{c.id}` ({', '.join(c.pending)}): {c.description}" for c in pending] or ["- none"]
    return "\n".join(lines) + "\n"

if __name__ == "__main__":  # .venv/bin/python tests/catalogcases.py: rewrite docs/catalog.md
    (CATALOG.parents[1] / "docs" / "catalog.md").write_text(summary_markdown())
