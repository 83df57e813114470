"""Taking over cloud resources made outside the operator (in the ModelArts console), as Crossplane's
external-name annotation does: the annotation names an existing algorithm, training job, service (or,
on a service, a model) by id or by name; the operator records it instead of creating one, and from
then on treats it as its own (the spec stays the desired state; deletionPolicy applies). Something
adopted is never created again: deleted behind the back, it is reported, not replaced."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from modelarts_operator.api.common import GROUP
from modelarts_operator.api.conditions import Reason
from modelarts_operator.cloud import CloudError, ErrorKind
from modelarts_operator.controller.context import Context, Outcome, Resource
from modelarts_operator.controller.errors import ResourceProblem

T = TypeVar("T")

EXTERNAL_NAME = f"{GROUP}/external-name"  # the algorithm, training job or service to take over
EXTERNAL_MODEL = f"{GROUP}/external-model"  # on a ModelArtsService: the model to deploy instead of importing one


def wanted(res: Resource, annotation: str = EXTERNAL_NAME) -> str | None:
    """The id or name to adopt, or None (an empty or blank annotation asks for nothing)."""
    value = (res.annotations.get(annotation) or "").strip()
    return value or None


def adopt(what: str, value: str, annotation: str, get: Callable[[str], T], find: Callable[[str], T | None]) -> T:
    """The `what` whose id, else whose name, is `value`; AdoptionFailed when there is none."""
    try:
        return get(value)
    except CloudError as exc:  # not an id of one (a name is no valid id: some APIs answer 400)
        if exc.kind not in (ErrorKind.NOT_FOUND, ErrorKind.PERMANENT):
            raise
    found = find(value)
    if found is None:
        raise ResourceProblem(f"{annotation}: no {what} with the id or name {value!r} exists in ModelArts; "
                              "nothing was created (fix or remove the annotation)", Reason.ADOPTION_FAILED)
    return found


def took_over(res: Resource, ctx: Context, outcome: Outcome, what: str, cloud_id: str, name: str,
              detail: str = "") -> None:
    """Record an adopted `what` (its id is in the status already) and say so."""
    record(res, what, cloud_id)
    ctx.checkpoint(res)
    outcome.event("Adopted", f"{what} {name} ({cloud_id}), made outside the operator{detail}")


def adopted(res: Resource, what: str, cloud_id: str | None) -> bool:
    """`cloud_id` was taken over as this resource's `what` (not created by the operator)."""
    return f"{what}/{cloud_id}" in res.status.adopted


def record(res: Resource, what: str, cloud_id: str) -> None:
    if not adopted(res, what, cloud_id):
        res.status.adopted = [*res.status.adopted, f"{what}/{cloud_id}"]


def missing(res: Resource, what: str, cloud_id: str) -> ResourceProblem:
    """An adopted resource deleted outside the operator: not re-created (it was not the operator's to make)."""
    return ResourceProblem(f"the adopted {what} {cloud_id} no longer exists in ModelArts; it is not created again "
                           f"(remove the annotation {EXTERNAL_NAME if what != 'model' else EXTERNAL_MODEL} to let the "
                           "operator create one, or adopt another)", Reason.CLOUD_RESOURCE_MISSING)
