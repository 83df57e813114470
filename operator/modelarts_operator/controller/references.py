"""References between our resources, resolved one way for every kind."""

from __future__ import annotations

from modelarts_operator.api.conditions import find_condition, is_ready, reason_of
from modelarts_operator.api.kinds import Kind
from modelarts_operator.controller.context import Context, Resource
from modelarts_operator.controller.errors import DependencyFailed, WaitingForDependency


def require_ready(res: Resource, ctx: Context, kind: Kind, name: str) -> dict:
    """The referenced object once it is Ready. WaitingForDependency while it is missing, being
    deleted, not yet reconciled at its latest generation, or progressing; DependencyFailed when it
    has failed for good (a terminal Ready reason at its current generation)."""
    obj = ctx.kube.get(kind, res.namespace, name)
    if obj is None:
        raise WaitingForDependency(f"{kind.kind} {name} not found")
    metadata, status = obj.get("metadata") or {}, obj.get("status") or {}
    if metadata.get("deletionTimestamp"):
        raise WaitingForDependency(f"{kind.kind} {name} is being deleted")
    if status.get("observedGeneration") != metadata.get("generation"):
        raise WaitingForDependency(f"{kind.kind} {name} has not been reconciled at its latest spec yet")
    if is_ready(status):
        return obj
    reason = reason_of(status)
    if reason is not None and reason.terminal:
        message = find_condition(status).get("message") or ""
        raise DependencyFailed(f"{kind.kind} {name} will not become Ready ({reason.value}: {message})")
    raise WaitingForDependency(f"{kind.kind} {name} is not Ready ({reason.value if reason else 'no status yet'})")
