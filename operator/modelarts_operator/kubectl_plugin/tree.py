"""`status`: the namespace's resources as trees, pure functions over the objects the API server returns.

Each tree starts at what the pipeline produces (a service, with its endpoint) and follows references
down to what it is made of: ModelArtsService -> TrainingJob (spec.trainingJobRef) -> MnistDataset
(spec.inputs[].datasetRef) and ModelArtsAlgorithm (spec.algorithmRef). An object nothing references
is a root of its own; a reference to an object that does not exist is a node marked "not found".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelarts_operator.api.conditions import find_condition
from modelarts_operator.api.kinds import ALGORITHM, KINDS, MNIST_DATASET, SERVICE, TRAINING_JOB

# Roots come in this order: what the pipeline produces first.
ROOT_ORDER = [kind.kind for kind in reversed(KINDS)]


@dataclass
class Node:
    kind: str
    name: str
    obj: dict | None  # None: referenced, but no such object in the namespace
    children: list[Node] = field(default_factory=list)

    @property
    def status(self) -> dict:
        return (self.obj or {}).get("status") or {}


def references(obj: dict) -> list[tuple[str, str]]:
    """(kind, name) of every object this one refers to, datasets before the algorithm."""
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == TRAINING_JOB.kind:
        refs = [(MNIST_DATASET.kind, i["datasetRef"]["name"]) for i in spec.get("inputs") or []
                if (i.get("datasetRef") or {}).get("name")]
        if (spec.get("algorithmRef") or {}).get("name"):
            refs.append((ALGORITHM.kind, spec["algorithmRef"]["name"]))
        return refs
    if kind == SERVICE.kind and (spec.get("trainingJobRef") or {}).get("name"):
        return [(TRAINING_JOB.kind, spec["trainingJobRef"]["name"])]
    return []


def build_trees(objects: list[dict], root: tuple[str, str] | None = None) -> list[Node]:
    """Trees over `objects` (each with kind and metadata.name); with `root`, the one tree from there."""
    index = {(obj["kind"], obj["metadata"]["name"]): obj for obj in objects}

    def node(key: tuple[str, str]) -> Node:
        obj = index.get(key)
        return Node(key[0], key[1], obj, [node(ref) for ref in references(obj)] if obj else [])

    if root is not None:
        return [node(root)]
    referenced = {ref for obj in objects for ref in references(obj)}
    roots = sorted((key for key in index if key not in referenced), key=lambda k: (ROOT_ORDER.index(k[0]), k[1]))
    return [node(key) for key in roots]


def facts(node: Node) -> dict[str, Any]:
    """The few status fields that say where a resource stands (what `kubectl get` shows, and more)."""
    status = node.status
    if node.kind == MNIST_DATASET.kind:
        picked = {"obsUrl": status.get("obsUrl"), "files": status.get("fileCount")}
    elif node.kind == ALGORITHM.kind:
        picked = {"algorithmId": status.get("algorithmId")}
    elif node.kind == TRAINING_JOB.kind:
        running = status.get("phase") == "Running"  # a finished job's progress says nothing more than its phase
        picked = {"phase": status.get("phase"), "progress": status.get("progress") if running else None,
                  "version": status.get("version"), "accuracy": (status.get("metrics") or {}).get("accuracy")}
    elif node.kind == SERVICE.kind:
        picked = {"phase": status.get("phase"), "endpoint": status.get("endpoint")}
    else:
        picked = {}
    return {key: value for key, value in picked.items() if value is not None}


def node_line(node: Node) -> str:
    head = f"{node.kind}/{node.name}"
    if node.obj is None:
        return f"{head}  (not found)"
    ready = find_condition(node.status)
    state = f"Ready={ready.get('status', 'Unknown')} {ready.get('reason') or '-'}"
    shown = "  ".join(f"{key}={value}" for key, value in facts(node).items())
    return "  ".join(part for part in (head, state, shown) if part)


def not_ready_message(node: Node) -> str | None:
    ready = find_condition(node.status)
    if node.obj is None or ready.get("status") == "True":
        return None
    return ready.get("message") or node.status.get("message") or None


def render(trees: list[Node]) -> str:
    """The trees as text, one node a line, a not-Ready node's message on the line below it."""
    lines: list[str] = []

    def walk(node: Node, first: str, rest: str) -> None:
        lines.append(first + node_line(node))
        if message := not_ready_message(node):
            lines.append(rest + ("│   " if node.children else "    ") + " ".join(message.split()))
        for i, child in enumerate(node.children):
            last = i == len(node.children) - 1
            walk(child, rest + ("└── " if last else "├── "), rest + ("    " if last else "│   "))

    for tree in trees:
        walk(tree, "", "")
    return "\n".join(lines)


def as_dict(node: Node) -> dict:
    """A node for -o json: kind, name, found, ready, reason, message, facts, children."""
    ready = find_condition(node.status)
    return {"kind": node.kind, "name": node.name, "found": node.obj is not None,
            "ready": ready.get("status") if node.obj is not None else None, "reason": ready.get("reason"),
            "message": ready.get("message"), "facts": facts(node), "children": [as_dict(c) for c in node.children]}
