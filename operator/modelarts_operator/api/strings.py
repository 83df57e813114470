"""The constrained strings of the specs: OBS folders, Kubernetes names, durations, file paths,
hyperparameters.

Each is a pattern and a length bound (the CRD's `pattern`/`maxLength` and pydantic's, one regex for
both), plus, where one regex cannot say it, `Checked` rules: each rule is a regex that must (or must
not) match, written into the CRD as a CEL `self.matches(...)` rule and run by the operator's own
validation as the same regex. The API server and the operator refuse exactly the same strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import core_schema

from modelarts_operator.api.durations import parse_duration

_CONTROL = r"\x00-\x1f\x7f"
# One segment of an OBS key or a relative path: not empty, not "." or "..", no control characters.
SEGMENT = rf"(?:[^/.{_CONTROL}]|\.[^/.{_CONTROL}]|\.\.[^/{_CONTROL}])[^/{_CONTROL}]*"
# A bucket: dot-separated labels of lowercase letters, digits and inner hyphens (3-63 characters, below).
BUCKET = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
OBS_FOLDER = rf"^obs://{BUCKET}/(?:{SEGMENT}/)*$"
# OBS keys are at most 1024 bytes: a folder leaves room for what a run writes below it.
OBS_FOLDER_MAX = 900
OBJECT_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"  # a DNS subdomain: Secret, ConfigMap, references
OBJECT_NAME_MAX = 253
DURATION = r"^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
# A boot file: a relative path to a .py file inside the code folder, no segment leaving it.
BOOT_FILE = rf"^(?:{SEGMENT}/)*[^/\s{_CONTROL}]+\.py$"
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"  # channel and hyperparameter names: argparse destinations
IDENTIFIER_MAX = 64
NO_CONTROL = rf"^[^{_CONTROL}]*$"


@dataclass(frozen=True)
class Rule:
    """A regex the value must match (`matches=True`) or must not match, and what to say otherwise."""

    regex: str
    matches: bool
    message: str

    @property
    def cel(self) -> str:
        test = f"self.matches('{self.regex}')"
        return test if self.matches else f"!{test}"


@dataclass(frozen=True)
class Checked:
    """Annotated metadata: the rules as CEL in the JSON schema, and as a validator in Python."""

    rules: tuple[Rule, ...]

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> dict:
        json_schema = handler.resolve_ref_schema(handler(schema))
        json_schema["x-kubernetes-validations"] = [{"rule": r.cel, "message": r.message} for r in self.rules]
        return json_schema

    def _check(self, value: str) -> str:
        for rule in self.rules:
            if bool(re.search(rule.regex, value)) != rule.matches:
                raise ValueError(rule.message)
        return value


def _bounded_duration(limit: str):
    def check(text: str) -> str:
        if parse_duration(text) > parse_duration(limit):
            raise ValueError(f"{text} is longer than {limit}")
        return text
    return AfterValidator(check)


ObsFolder = Annotated[str, Field(pattern=OBS_FOLDER, max_length=OBS_FOLDER_MAX), Checked((
    Rule("^obs://[^/]{3,63}/", True, "the bucket name must have 3 to 63 characters"),
    Rule("^obs://[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+/", False, "the bucket name must not look like an IP address"),
))]
ObjectName = Annotated[str, Field(pattern=OBJECT_NAME, max_length=OBJECT_NAME_MAX)]
Identifier = Annotated[str, Field(pattern=IDENTIFIER, max_length=IDENTIFIER_MAX)]
BootFile = Annotated[str, Field(pattern=BOOT_FILE, max_length=255)]
# Durations above zero (some digit is not 0), up to a bound the operator checks (CEL has no sum of units).
NONZERO = Checked((Rule("[1-9]", True, "the duration must be above zero"),))
MaxRuntime = Annotated[str, Field(pattern=DURATION, min_length=2, max_length=16), NONZERO, _bounded_duration("30d")]
AutoStop = Annotated[str, Field(pattern=r"^[0-9]+[mhd]$", max_length=8), NONZERO, _bounded_duration("30d")]
Text = Annotated[str, Field(pattern=NO_CONTROL, max_length=1024)]  # free text: a hyperparameter value, a default
