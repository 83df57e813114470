"""Types shared by the four resources: references, policies, conditions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "modelarts.mlops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

OBS_FOLDER = r"^obs://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([^/]+/)*$"
OBJECT_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
DURATION = r"^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$"


class Schema(BaseModel):
    """Base of every API type: camelCase in YAML, snake_case in Python, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ObjectReference(Schema):
    """A resource of this group in the same namespace."""

    name: str = Field(description="Name of the referenced resource in the same namespace.", pattern=OBJECT_NAME,
                      max_length=253)


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
    pattern=OBJECT_NAME,
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
