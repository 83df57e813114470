"""`predict SERVICE IMAGE...`: each picture to the service's endpoint, signed with the namespace's
credentials through `cloud.predict` (the request the demo and the tests send), answers printed one a line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from modelarts_operator.api.conditions import find_condition
from modelarts_operator.api.kinds import SERVICE
from modelarts_operator.cloud import CloudCredentials, CloudError
from modelarts_operator.cloud.predict import predict
from modelarts_operator.kubectl_plugin.errors import PluginError
from modelarts_operator.kubectl_plugin.kube import Cluster


@dataclass
class Result:
    image: str
    answer: dict | None = None
    error: str | None = None


def endpoint_of(service: dict) -> str:
    """The Ready service's endpoint, or why there is none to send to."""
    name, status = service["metadata"]["name"], service.get("status") or {}
    ready = find_condition(status)
    if ready.get("status") != "True":
        said = ready.get("reason") or "no Ready condition yet"
        message = ready.get("message") or status.get("message")
        raise PluginError(f'{SERVICE.singular} "{name}" is not Ready ({said}{": " + message if message else ""})')
    if not status.get("endpoint"):
        raise PluginError(f'{SERVICE.singular} "{name}" is Ready but has no status.endpoint')
    return status["endpoint"]


def send(endpoint: str, path: str, credentials: CloudCredentials) -> Result:
    try:
        image = Path(path).read_bytes()
    except OSError as exc:
        return Result(path, error=f"cannot read the image: {exc.strerror or exc}")
    try:
        return Result(path, answer=predict(endpoint, image, Path(path).name, credentials=credentials))
    except CloudError as exc:  # the server's own code and message; never the credentials
        return Result(path, error=str(exc))


def format_answer(answer: dict, top: int = 3) -> str:
    """`7 (0.998) | 2 0.001 | 3 0.000`: the label with its score, then the next most likely labels."""
    label = answer.get("predicted_label")
    scores = [s for s in answer.get("scores") or [] if isinstance(s, list | tuple) and len(s) == 2]
    if label is None:
        return json.dumps(answer, separators=(",", ":"))  # another model's answer: as it came
    own = next((score for name, score in scores if str(name) == str(label)), None)
    parts = [f"{label} ({own:.3f})" if isinstance(own, int | float) else str(label)]
    others = [(name, score) for name, score in scores if str(name) != str(label)]
    parts += [f"{name} {score:.3f}" if isinstance(score, int | float) else f"{name} {score}"
              for name, score in others[:max(top - 1, 0)]]
    return " | ".join(parts)


def format_result(result: Result, top: int = 3) -> str:
    if result.error is not None:
        return f"{result.image}: error: {result.error}"
    return f"{result.image}: {format_answer(result.answer or {}, top)}"


def run(cluster: Cluster, service_name: str, images: list[str], output: str, top: int, out: TextIO,
        err: TextIO) -> int:
    service = cluster.get(SERVICE, service_name)
    endpoint = endpoint_of(service)
    credentials = cluster.credentials(service)
    results = []
    for path in images:
        result = send(endpoint, path, credentials)
        results.append(result)
        if output == "text":  # as each answer comes: a slow service still shows progress
            print(format_result(result, top), file=err if result.error else out, flush=True)
    if output == "json":
        documents = [{"image": r.image, **(r.answer or {})} if r.error is None else {"image": r.image, "error": r.error}
                     for r in results]
        print(json.dumps(documents, indent=2), file=out)
    return 1 if any(r.error for r in results) else 0
