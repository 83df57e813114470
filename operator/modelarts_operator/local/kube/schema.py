"""CRD `openAPIV3Schema` handling as the real server does it: pruning, defaulting, validation.

Field paths and messages follow the API server's wording, so kubectl shows the same errors.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from . import cel
from .errors import Cause

_ROOT_FIELDS = ("apiVersion", "kind", "metadata")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    """A value as the Go server prints it in `Invalid value: ...`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(_type_name(value))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _preserves(schema: dict[str, Any]) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields"))


# -- pruning ---------------------------------------------------------------------------------


def prune(schema: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    """Drop fields the schema does not know (and nulls it does not allow); return their paths."""
    unknown: list[str] = []
    _prune(schema, obj, "", unknown, root=True)
    return unknown


def _prune(schema: dict[str, Any], value: Any, path: str, unknown: list[str], root: bool = False) -> None:
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        embedded = root or schema.get("x-kubernetes-embedded-resource")
        for key in list(value):
            if embedded and key in _ROOT_FIELDS:
                continue
            child = properties.get(key)
            if child is None and isinstance(additional, dict):
                child = additional
            if child is None:
                if not _preserves(schema) and additional is not True:
                    unknown.append(_join(path, key))
                    del value[key]
                continue
            if value[key] is None and not child.get("nullable"):
                del value[key]
                continue
            _prune(child, value[key], _join(path, key), unknown)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            _prune(schema["items"], item, f"{path}[{index}]", unknown)


# -- defaulting ------------------------------------------------------------------------------


def apply_defaults(schema: dict[str, Any], value: Any) -> None:
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for key, child in properties.items():
            if key not in value and "default" in child:
                value[key] = copy.deepcopy(child["default"])
        for key, item in value.items():
            child = properties.get(key)
            if child is None and isinstance(schema.get("additionalProperties"), dict):
                child = schema["additionalProperties"]
            if child is not None:
                apply_defaults(child, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(schema["items"], item)


# -- validation ------------------------------------------------------------------------------


# The schema errors after which the real server runs no CEL rule at all (hasBlockingErr in the
# apiextensions-apiserver): the rules could not be evaluated on such values.
_BLOCKING = {"FieldValueNotSupported", "FieldValueRequired", "FieldValueTooLong", "FieldValueTooMany",
             "FieldValueTypeInvalid"}
_RULES_SKIPPED = Cause("<nil>", "FieldValueInvalid", "Invalid value: null: some validation rules were not checked "
                       "because the object was invalid; correct the existing errors to complete validation")


def validate(schema: dict[str, Any], obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """Every OpenAPI error first; then, unless one of them is blocking, every CEL rule's error.

    On update, values unchanged from the old object are not validated again (the real server's
    validation ratcheting), except by transition rules: a schema tightened later does not make
    objects that still hold old values impossible to update.
    """
    causes: list[Cause] = []
    _validate(schema, obj, old, "", causes, root=True)
    if any(c.reason in _BLOCKING for c in causes):
        return [*causes, _RULES_SKIPPED]
    _check_rules(schema, obj, old, "", causes, root=True)
    return causes


def _type_ok(schema: dict[str, Any], value: Any) -> bool:
    integral = isinstance(value, float) and value.is_integer()  # 2.0 decodes as a whole number in Go
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)) or integral
    expected = schema.get("type")
    if not expected:
        return True
    if expected == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or integral
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return _type_name(value) == expected


def _unchanged(value: Any, old: Any) -> bool:
    return old is not None and value == old


def _validate(schema: dict[str, Any], value: Any, old: Any, path: str, causes: list[Cause], root: bool = False) -> None:
    if _unchanged(value, old) and not root:
        return  # ratcheting: an unchanged value is not validated again
    if value is None:
        if not schema.get("nullable") and (schema.get("type") or schema.get("x-kubernetes-int-or-string")):
            causes.append(Cause(path, "FieldValueTypeInvalid",
                                f'Invalid value: "null": {path} in body must be of type {schema.get("type", "string")}: "null"'))
        return
    if not _type_ok(schema, value):
        expected = "integer,string" if schema.get("x-kubernetes-int-or-string") else schema["type"]
        causes.append(Cause(path, "FieldValueTypeInvalid",
                            f'Invalid value: "{_type_name(value)}": {path} in body must be of type {expected}: "{_type_name(value)}"'))
        return
    _check_value(schema, value, path, causes)
    for keyword in ("allOf", "anyOf", "oneOf"):
        if keyword in schema:
            _check_combinator(keyword, schema[keyword], value, path, causes)
    if isinstance(value, dict):
        _validate_object(schema, value, old if isinstance(old, dict) else None, path, causes, root)
    elif isinstance(value, list):
        _validate_list(schema, value, old if isinstance(old, list) else None, path, causes)


def _check_rules(schema: dict[str, Any], value: Any, old: Any, path: str, causes: list[Cause], root: bool = False) -> None:
    """The x-kubernetes-validations rules of every node, parents before children (as the real server)."""
    if value is None:
        return  # rules see only non-null values
    unchanged = _unchanged(value, old)
    for rule in schema.get("x-kubernetes-validations") or []:
        transition = cel.is_transition_rule(rule)
        if (transition and old is None) or (unchanged and not transition):
            continue
        cause = cel.validate(rule, value, old, path, schema.get("type") or _type_name(value))
        if cause:
            causes.append(cause)
    for option in schema.get("allOf") or []:
        _check_rules(option, value, old, path, causes, root)
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if root and key in _ROOT_FIELDS:
                continue
            child = properties.get(key) or (additional if isinstance(additional, dict) else None)
            if child is not None:
                _check_rules(child, item, old.get(key) if isinstance(old, dict) else None, _join(path, key), causes)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        correlated = _correlate(schema, old)
        identity = _identity(schema)
        for index, item in enumerate(value):
            _check_rules(schema["items"], item, correlated.get(identity(item)), f"{path}[{index}]", causes)


def _check_value(schema: dict[str, Any], value: Any, path: str, causes: list[Cause]) -> None:
    def invalid(message: str, reason: str = "FieldValueInvalid") -> None:
        causes.append(Cause(path, reason, message))

    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_show(v) for v in schema["enum"])
        invalid(f"Unsupported value: {_show(value)}: supported values: {supported}", "FieldValueNotSupported")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            invalid(f"Invalid value: {_show(value)}: {path} in body should match '{schema['pattern']}'")
        if "minLength" in schema and len(value) < schema["minLength"]:
            invalid(f"Invalid value: {_show(value)}: {path} in body should be at least {schema['minLength']} chars long")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            invalid(f"Too long: may not be more than {_count(schema['maxLength'], 'byte')}", "FieldValueTooLong")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema:
            exclusive = schema.get("exclusiveMinimum")
            if value < schema["minimum"] or (exclusive and value == schema["minimum"]):
                bound = "greater than" if exclusive else "greater than or equal to"
                invalid(f"Invalid value: {_show(value)}: {path} in body should be {bound} {_show(schema['minimum'])}")
        if "maximum" in schema:
            exclusive = schema.get("exclusiveMaximum")
            if value > schema["maximum"] or (exclusive and value == schema["maximum"]):
                bound = "less than" if exclusive else "less than or equal to"
                invalid(f"Invalid value: {_show(value)}: {path} in body should be {bound} {_show(schema['maximum'])}")
        if schema.get("multipleOf") and value % schema["multipleOf"]:
            invalid(f"Invalid value: {_show(value)}: {path} in body should be a multiple of {_show(schema['multipleOf'])}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            invalid(f"Invalid value: {len(value)}: {path} in body should have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            invalid(f"Too many: {len(value)}: must have at most {_count(schema['maxItems'], 'item')}", "FieldValueTooMany")
    if isinstance(value, dict):
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            invalid(f"Invalid value: {len(value)}: {path} in body should have at least {schema['minProperties']} properties")
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            invalid(f"Too many: {len(value)}: must have at most {_count(schema['maxProperties'], 'item')}", "FieldValueTooMany")


def _check_combinator(keyword: str, options: list[dict[str, Any]], value: Any, path: str, causes: list[Cause]) -> None:
    results = []
    for option in options:
        found: list[Cause] = []
        _validate(option, value, None, path, found)
        results.append(found)
    passed = sum(1 for found in results if not found)
    if keyword == "allOf":
        for found in results:
            causes.extend(found)
    elif keyword == "anyOf" and not passed:
        causes.append(Cause(path, "FieldValueInvalid", f'Invalid value: {_show(value)}: {path} in body must validate at least one schema (anyOf)'))
    elif keyword == "oneOf" and passed != 1:
        causes.append(Cause(path, "FieldValueInvalid", f'Invalid value: {_show(value)}: {path} in body must validate one and only one schema (oneOf)'))


def _validate_object(schema: dict[str, Any], value: dict[str, Any], old: dict[str, Any] | None,
                     path: str, causes: list[Cause], root: bool) -> None:
    properties = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    for key, item in value.items():
        if root and key in _ROOT_FIELDS:
            continue
        child = properties.get(key)
        if child is None and isinstance(additional, dict):
            child = additional
        if child is not None:
            _validate(child, item, old.get(key) if old else None, _join(path, key), causes)
    for name in schema.get("required") or []:
        if name not in value:
            causes.append(Cause(_join(path, name), "FieldValueRequired", "Required value"))


def _identity(schema: dict[str, Any]) -> Any:
    """What makes a list item the same item: its map keys in a map list, else its whole value."""
    keys = schema.get("x-kubernetes-list-map-keys") or []
    if schema.get("x-kubernetes-list-type") == "map":
        return lambda item: json.dumps([item.get(k) for k in keys] if isinstance(item, dict) else item, sort_keys=True)
    return lambda item: json.dumps(item, sort_keys=True)


def _correlate(schema: dict[str, Any], old: Any) -> dict[Any, Any]:
    """Old items by identity: only map lists correlate old items with new ones."""
    if schema.get("x-kubernetes-list-type") != "map" or not isinstance(old, list):
        return {}
    identity = _identity(schema)
    return {identity(o): o for o in old}


def _validate_list(schema: dict[str, Any], value: list[Any], old: list[Any] | None, path: str, causes: list[Cause]) -> None:
    list_type = schema.get("x-kubernetes-list-type")
    identity = _identity(schema)
    if list_type in ("set", "map") or schema.get("uniqueItems"):
        seen = set()
        for index, item in enumerate(value):
            ident = identity(item)
            if ident in seen:
                causes.append(Cause(f"{path}[{index}]", "FieldValueDuplicate", f"Duplicate value: {json.dumps(item)}"))
            seen.add(ident)
    items = schema.get("items")
    if not isinstance(items, dict):
        return
    correlated = _correlate(schema, old)
    for index, item in enumerate(value):
        _validate(items, item, correlated.get(identity(item)), f"{path}[{index}]", causes)


# -- CRD checks ------------------------------------------------------------------------------


def check_crd_schemas(crd: dict[str, Any]) -> list[Cause]:
    """Reject CRDs whose patterns or CEL rules do not compile, or whose selectableFields point
    nowhere selectable, as the real server does.

    Errors name the fields as the real server does after it hoists what every version shares to
    the top of the spec (spec.validation, spec.selectableFields)."""
    causes: list[Cause] = []
    versions = crd["spec"]["versions"]
    schemas = [(v.get("schema") or {}).get("openAPIV3Schema") for v in versions]
    shared = all(s == schemas[0] for s in schemas)
    for index, schema in enumerate(schemas[:1] if shared else schemas):
        if schema:
            where = "spec.validation.openAPIV3Schema" if shared else f"spec.versions[{index}].schema.openAPIV3Schema"
            found: list[Cause] = []
            _check_node(schema, where, found, rules=False)
            if not found:  # rules are compiled only in a schema that is otherwise sound
                _check_node(schema, where, found, rules=True)
            causes += found
    selectable = [v.get("selectableFields") or [] for v in versions]
    shared = all(s == selectable[0] for s in selectable)
    for index, fields in enumerate(selectable[:1] if shared else selectable):
        where = "spec.selectableFields" if shared else f"spec.versions[{index}].selectableFields"
        for position, entry in enumerate(fields):
            problem = _selectable_problem(schemas[index] or {}, str(entry.get("jsonPath", "")))
            if problem:
                causes.append(Cause(f"{where}[{position}].jsonPath", "FieldValueInvalid",
                                    f"Invalid value: {_show(entry.get('jsonPath', ''))}: {problem}"))
    return causes


def _selectable_problem(schema: dict[str, Any], path: str) -> str | None:
    node: Any = schema
    for part in path.lstrip(".").split("."):
        node = (node.get("properties") or {}).get(part) if isinstance(node, dict) else None
        if node is None:
            return "is an invalid path: does not refer to a valid field"
    if node.get("type") not in ("string", "boolean", "integer"):
        return "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed."
    return None


def _go_json(value: Any) -> str:
    """JSON as Go's encoder writes it (HTML characters escaped)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _shown_rule(rule: dict[str, Any]) -> str:
    """A validation rule as the real server prints it in an error: its Go struct, as JSON."""
    return _go_json({"Rule": rule.get("rule", ""), "Message": rule.get("message", ""),
                     "MessageExpression": rule.get("messageExpression", ""), "Reason": rule.get("reason"),
                     "FieldPath": rule.get("fieldPath", ""), "OptionalOldSelf": rule.get("optionalOldSelf")})


def _check_node(schema: Any, path: str, causes: list[Cause], rules: bool) -> None:
    """The patterns (`rules=False`) or the CEL rules of a schema and its children."""
    if not isinstance(schema, dict):
        return
    if "pattern" in schema and not rules:
        try:
            re.compile(schema["pattern"])
        except re.error as error:
            causes.append(Cause(f"{path}.pattern", "FieldValueInvalid", f"Invalid value: {_show(schema['pattern'])}: "
                                f"must be a valid regular expression, but isn't: error parsing regexp: {error}"))
    for index, rule in enumerate(schema.get("x-kubernetes-validations") or [] if rules else []):
        for field in ("rule", "messageExpression"):
            if field in rule:
                error = cel.check(rule[field])
                if error:
                    causes.append(Cause(f"{path}.x-kubernetes-validations[{index}].{field}", "FieldValueInvalid",
                                        f"Invalid value: {_shown_rule(rule)}: compilation failed: {error}"))
    for key, child in (schema.get("properties") or {}).items():
        _check_node(child, f"{path}.properties[{key}]", causes, rules)
    for key in ("items", "additionalProperties"):
        _check_node(schema.get(key), f"{path}.{key}", causes, rules)


def whole_numbers(value: Any) -> Any:
    """Floats that are whole numbers become ints: the real server keeps 2.0 as a float64 but writes
    it as 2, so clients read an integer back."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value
