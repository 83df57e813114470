"""Types shared by the four resources: references, policies, conditions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import CoreSchema

from modelarts_operator.api.strings import OBJECT_NAME, OBJECT_NAME_MAX, ObjectName

GROUP = "modelarts.mlops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"



class Schema(BaseModel):
    """Base of every API type: camelCase in YAML, snake_case in Python, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


@dataclass(frozen=True)
class SpecRule:
    """A rule across fields: CEL for the CRD, and the same rule in Python for the operator's own check."""

    cel: str
    message: str
    holds: Callable[[Any], bool]
    field: str | None = None  # the field the API server names in its error (fieldPath), e.g. "hyperparameters"

    @property
    def error(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class RuledSchema(Schema):
    """A type with SpecRules: the API server and the operator refuse the same objects."""

    spec_rules: ClassVar[tuple[SpecRule, ...]] = ()

    @model_validator(mode="after")
    def _check_spec_rules(self):
        broken = [rule.error for rule in self.spec_rules if not rule.holds(self)]
        if broken:
            raise ValueError("; ".join(broken))
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema, handler: GetJsonSchemaHandler) -> dict:
        json_schema = handler.resolve_ref_schema(handler(schema))
        json_schema.setdefault("x-kubernetes-validations", []).extend(
            {"rule": rule.cel, "message": rule.message, **({"fieldPath": f".{rule.field}"} if rule.field else {})}
            for rule in cls.spec_rules)
        return json_schema


class ObjectReference(Schema):
    """A resource of this group in the same namespace."""

    name: ObjectName = Field(description="Name of the referenced resource in the same namespace.")


DeletionPolicy = Literal["Delete", "Retain"]

DELETION_POLICY_FIELD = Field(
    "Delete",
    description="What deleting this resource does to its cloud side: Delete removes it (and waits until it is "
    "gone), Retain leaves it.",
)
CREDENTIALS_FIELD = Field(
    None,
    description="Name of a Secret in this namespace with keys ak, sk, projectId, region and optionally "
    "obsEndpoint, modelartsEndpoint. Default: the operator's --credentials-secret (modelarts-credentials).",
    pattern=OBJECT_NAME, max_length=OBJECT_NAME_MAX,
)


class Condition(Schema):
    type: Literal["Ready", "Synced"] = Field(description="Ready: usable. Synced: the last reconcile reached the cloud.")
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(description="CamelCase reason, e.g. Creating, Failed, WaitingForDependency.")
    message: str = ""
    last_transition_time: str = Field(description="When status last changed (RFC 3339).")
    observed_generation: int | None = None


class CommonStatus(Schema):
    observed_generation: int | None = Field(None, description="The spec generation the status describes.")
    conditions: list[Condition] = Field([], description="Ready and Synced, with reason and message.")
    cloud_name: str | None = Field(None, description="Deterministic name of the cloud resource (namespace-name-uid).")
    message: str | None = Field(None, description="What is happening now, or what went wrong.")
    pending_creates: list[str] = Field(
        [], description="Cloud resources being created (kind/name), recorded before the call and cleared once "
        "its id is recorded: after a lost answer, deletion finds them by name; with none pending and no id "
        "recorded, deletion needs no cloud call.")
    adopted: list[str] = Field(
        [], description="Cloud resources taken over rather than created, as kind/id (algorithm, trainingjob, "
        "service, model; the annotations modelarts.mlops.dev/external-name and external-model): never created "
        "again when deleted outside the operator.")
