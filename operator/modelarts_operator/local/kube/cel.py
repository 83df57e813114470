"""`x-kubernetes-validations` CEL rules, evaluated with cel-python."""

from __future__ import annotations

import functools
import re
from typing import Any

import celpy

from .errors import Cause

_ENV = celpy.Environment()
_OLD_SELF = re.compile(r"\boldSelf\b")


class RuleError(Exception):
    """A rule does not compile."""


@functools.lru_cache(maxsize=1024)
def _program(expression: str) -> celpy.Runner:
    try:
        return _ENV.program(_ENV.compile(expression))
    except Exception as error:  # celpy raises several parser error types
        raise RuleError(str(error).strip()) from error


def check(expression: str) -> str | None:
    """The compile error of a rule, if any."""
    try:
        _program(expression)
    except RuleError as error:
        return str(error)
    return None


def is_transition_rule(rule: dict[str, Any]) -> bool:
    return bool(_OLD_SELF.search(rule.get("rule", "")))


def _evaluate(expression: str, value: Any, old: Any) -> Any:
    activation = {"self": celpy.json_to_cel(value)}
    if old is not None:
        activation["oldSelf"] = celpy.json_to_cel(old)
    return _program(expression).evaluate(activation)


def validate(rule: dict[str, Any], value: Any, old: Any, path: str, type_name: str) -> Cause | None:
    """Evaluate one rule at `path`; a Cause when it fails, in the real server's wording."""
    expression = rule["rule"]
    # An evaluation error names the rule by its message when it has one (ruleErrorString).
    named = (rule.get("message") or "").strip() or expression.strip()
    try:
        result = _evaluate(expression, value, old)
    except Exception as error:  # evaluation errors (no such key, type errors) fail the rule, at the rule's node
        return Cause(path, "FieldValueInvalid", f'Invalid value: "{type_name}": {error} evaluating rule: {named}')
    if isinstance(result, Exception):
        return Cause(path, "FieldValueInvalid", f'Invalid value: "{type_name}": {result} evaluating rule: {named}')
    if bool(result):
        return None
    if rule.get("fieldPath"):
        path = _join(path, rule["fieldPath"])
    message = (rule.get("message") or "").strip() or f"failed rule: {expression.strip()}"
    if rule.get("messageExpression"):
        try:
            evaluated = _evaluate(rule["messageExpression"], value, old)
            if isinstance(evaluated, str) and evaluated.strip():
                message = str(evaluated)
        except Exception:  # the real server falls back to `message` when messageExpression fails
            pass
    reason = rule.get("reason", "FieldValueInvalid")
    prefix = {
        "FieldValueForbidden": "Forbidden",
        "FieldValueRequired": "Required value",
        "FieldValueDuplicate": f'Duplicate value: "{type_name}"',
    }.get(reason, f'Invalid value: "{type_name}"')
    return Cause(path, reason, f"{prefix}: {message}")


def _join(path: str, field_path: str) -> str:
    field_path = field_path.lstrip(".")
    if not path:
        return field_path
    return f"{path}{field_path}" if field_path.startswith("[") else f"{path}.{field_path}"
