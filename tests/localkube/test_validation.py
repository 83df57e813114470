"""CRD schema validation, defaulting, pruning and CEL rules, seen through kubectl as users see them."""

from __future__ import annotations

from typing import Any

import pytest
import yaml


def rejected(kubectl: Any, manifest: dict[str, Any]) -> str:
    result = kubectl.apply(manifest, check=False)
    assert result.returncode != 0, result.stdout
    return result.stderr.strip()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"target": 5}, 'spec.target: Invalid value: "integer": spec.target in body must be of type string: "integer"'),
        ({"replicas": 2}, "spec.target: Required value"),
        ({"target": "obs://b/x", "size": "huge"}, 'spec.size: Unsupported value: "huge": supported values: "small", "big"'),
        ({"target": "http://b/x"}, "spec.target: Invalid value: \"http://b/x\": spec.target in body should match '^obs://'"),
        ({"target": "obs://b/x", "replicas": 0}, "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"),
        ({"target": "obs://b/x", "replicas": 11}, "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"),
        ({"target": "obs://b/x", "tags": ["a", "b", "c"]}, "spec.tags: Too many: 3: must have at most 2 items"),
        ({"target": "obs://b/x", "tags": [""]}, 'spec.tags[0]: Invalid value: "": spec.tags[0] in body should be at least 1 chars long'),
        ({"target": "obs://b/x", "port": 1.5}, 'spec.port: Invalid value: "number": spec.port in body must be of type integer,string: "number"'),
        ({"target": "obs://b/x", "replicas": 7}, 'spec: Invalid value: "object": more than 5 replicas need size big'),
    ],
    ids=["type", "required", "enum", "pattern", "minimum", "maximum", "maxItems", "minLength", "int-or-string", "cel"],
)
def test_invalid_objects_are_rejected_naming_the_field(kubectl: Any, crd: Any, widget: Any, spec: dict[str, Any], message: str) -> None:
    manifest = widget("bad")
    manifest["spec"] = spec
    assert rejected(kubectl, manifest).endswith(f'The Widget "bad" is invalid: {message}')


def test_several_errors_are_listed(kubectl: Any, crd: Any, widget: Any) -> None:
    manifest = widget("bad")
    manifest["spec"] = {"size": "huge", "replicas": "x"}
    error = rejected(kubectl, manifest)
    assert 'The Widget "bad" is invalid: \n* spec.target: Required value\n' in error
    assert '* spec.size: Unsupported value: "huge"' in error
    assert '* spec.replicas: Invalid value: "string"' in error


def test_transition_rule_keeps_a_field_immutable(kubectl: Any, crd: Any, widget: Any) -> None:
    kubectl.apply(widget("w", bucket="first"))
    kubectl.apply(widget("w", bucket="first", replicas=2))  # other changes pass the rule
    error = rejected(kubectl, widget("w", bucket="second"))
    assert error.endswith('The Widget "w" is invalid: spec.bucket: Invalid value: "string": bucket is immutable')
    assert kubectl.json("get", "wd", "w")["spec"]["bucket"] == "first"


def test_defaults_pruning_and_preserved_fields(kubectl: Any, crd: Any, widget: Any) -> None:
    manifest = widget("w", port="http", extra={"anything": {"goes": [1]}})
    manifest["spec"]["unknown"] = 1
    manifest["status"] = {"ignored": True}
    # kubectl asks for strict field validation: unknown fields are an error ...
    assert 'strict decoding error: unknown field "spec.unknown"' in rejected(kubectl, manifest)
    # ... and with validation off they are pruned, as the real server does.
    kubectl.run("apply", "--validate=false", "-f", "-", input=yaml.safe_dump(manifest))
    obj = kubectl.json("get", "wd", "w")
    assert obj["spec"] == {"target": "obs://bucket/data", "port": "http", "replicas": 1, "size": "small",
                           "extra": {"anything": {"goes": [1]}}}
    assert "status" not in obj  # status is a subresource: ignored on create


def test_a_crd_with_a_broken_rule_is_refused(kubectl: Any, crd: Any) -> None:
    broken = dict(crd)
    broken["metadata"] = {"name": "gadgets.example.com"}
    broken["spec"] = {**crd["spec"], "names": {"plural": "gadgets", "kind": "Gadget"}}
    version = broken["spec"]["versions"][0]
    version["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"] = [{"rule": "self.replicas >"}]
    error = rejected(kubectl, broken)
    assert "x-kubernetes-validations[0].rule: Invalid value" in error and "compilation failed" in error
