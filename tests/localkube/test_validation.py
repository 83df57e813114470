"""CRD schema validation, defaulting, pruning and CEL rules, seen through kubectl as users see them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

SKIPPED = ("<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; "
           "correct the existing errors to complete validation")


def rejected(kubectl: Any, manifest: dict[str, Any]) -> str:
    result = kubectl.apply(manifest, check=False)
    assert result.returncode != 0, result.stdout
    return result.stderr.strip()


def errors(kubectl: Any, manifest: dict[str, Any]) -> set[str]:
    """The field errors kubectl shows for a refused object (the real server lists them in no fixed order)."""
    text = rejected(kubectl, manifest)
    head = f'The {manifest["kind"]} "{manifest["metadata"]["name"]}" is invalid: '
    assert head in text, text
    listed = text.split(head, 1)[1]
    return {line.removeprefix("* ") for line in listed.strip().splitlines()} if listed.startswith("\n") else {listed}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"target": 5}, {'spec.target: Invalid value: "integer": spec.target in body must be of type string: "integer"', SKIPPED}),
        ({"replicas": 2}, {"spec.target: Required value", SKIPPED}),
        ({"target": "obs://b/x", "size": "huge"}, {'spec.size: Unsupported value: "huge": supported values: "small", "big"', SKIPPED}),
        ({"target": "http://b/x"}, {"spec.target: Invalid value: \"http://b/x\": spec.target in body should match '^obs://'"}),
        ({"target": "obs://b/x", "replicas": 0}, {"spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"}),
        # A bound is no blocking error: the rules still run, and here one fails too.
        ({"target": "obs://b/x", "replicas": 11}, {"spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
                                                   'spec: Invalid value: "object": more than 5 replicas need size big'}),
        ({"target": "obs://b/x", "tags": ["a", "b", "c"]}, {"spec.tags: Too many: 3: must have at most 2 items", SKIPPED}),
        ({"target": "obs://b/x", "tags": [""]}, {'spec.tags[0]: Invalid value: "": spec.tags[0] in body should be at least 1 chars long'}),
        ({"target": "obs://b/x", "port": 1.5}, {'spec.port: Invalid value: "number": spec.port in body must be of type integer,string: "number"', SKIPPED}),
        ({"target": "obs://b/x", "replicas": 7}, {'spec: Invalid value: "object": more than 5 replicas need size big'}),
    ],
    ids=["type", "required", "enum", "pattern", "minimum", "maximum", "maxItems", "minLength", "int-or-string", "cel"],
)
def test_invalid_objects_are_rejected_naming_the_field(kubectl: Any, crd: Any, widget: Any, spec: dict[str, Any],
                                                       expected: set[str]) -> None:
    """Type, required, enum, length and count errors block every CEL rule (said in one more error);
    other schema errors do not."""
    manifest = widget("bad")
    manifest["spec"] = spec
    assert errors(kubectl, manifest) == expected


def test_several_errors_are_listed(kubectl: Any, crd: Any, widget: Any) -> None:
    manifest = widget("bad")
    manifest["spec"] = {"size": "huge", "replicas": "x"}
    assert errors(kubectl, manifest) == {
        "spec.target: Required value", 'spec.size: Unsupported value: "huge": supported values: "small", "big"',
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"', SKIPPED}


def test_transition_rule_keeps_a_field_immutable(kubectl: Any, crd: Any, widget: Any) -> None:
    kubectl.apply(widget("w", bucket="first"))
    kubectl.apply(widget("w", bucket="first", replicas=2))  # other changes pass the rule
    assert errors(kubectl, widget("w", bucket="second")) == {'spec.bucket: Invalid value: "string": bucket is immutable'}
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


def test_a_crd_with_a_broken_rule_pattern_or_selectable_field_is_refused(kubectl: Any, crd: Any) -> None:
    broken = gadget_crd(crd)
    spec = broken["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["x-kubernetes-validations"] = [{"rule": "self.replicas >"}]
    broken["spec"]["versions"][0]["selectableFields"] = [{"jsonPath": ".spec.nothing"}, {"jsonPath": ".spec.tags"}]
    error = rejected(kubectl, broken)
    # What all versions share is checked as if at the top of the spec (spec.validation, spec.selectableFields).
    schema = "spec.validation.openAPIV3Schema.properties[spec]"
    assert (f'{schema}.x-kubernetes-validations[0].rule: Invalid value: {{"Rule":"self.replicas \\u003e","Message":"",'
            '"MessageExpression":"","Reason":null,"FieldPath":"","OptionalOldSelf":null}: compilation failed: ') in error
    assert 'spec.selectableFields[0].jsonPath: Invalid value: ".spec.nothing": is an invalid path: does not refer to a valid field' in error
    assert ('spec.selectableFields[1].jsonPath: Invalid value: ".spec.tags": must point to a field of type string, '
            "boolean or integer") in error
    # A schema with a broken pattern has its rules compiled only once the pattern is mended.
    spec["properties"]["target"]["pattern"] = "(("
    error = rejected(kubectl, broken)
    assert f'{schema}.properties[target].pattern: Invalid value: "((": must be a valid regular expression' in error
    assert "x-kubernetes-validations" not in error


def gadget_crd(crd: dict[str, Any], spec_schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """The widgets CRD as a second kind, gadgets (the real server deletes it after the test)."""
    gadgets = copy.deepcopy(crd)
    gadgets["metadata"] = {"name": "gadgets.example.com"}
    gadgets["spec"]["names"] = {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"}
    if spec_schema is not None:
        gadgets["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = spec_schema
        del gadgets["spec"]["versions"][0]["selectableFields"]
    return gadgets


def make_gadget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": name}, "spec": spec}


def test_unchanged_values_are_not_validated_again(kubectl: Any, crd: Any, wait_for: Any) -> None:
    """Validation ratcheting: once a CRD's schema tightens, objects still holding values it now
    refuses can be updated as long as those values stay as they were."""
    gadgets = gadget_crd(crd)
    kubectl.apply(gadgets)
    kubectl("wait", "--for=condition=Established", "crd/gadgets.example.com", "--timeout=10s")
    kubectl.apply(make_gadget("g", target="obs://old/place", tags=["a", "b"]))
    spec = gadgets["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    spec["tags"]["maxItems"] = 1
    spec["target"]["pattern"] = "^obs://new/"
    kubectl.apply(gadgets)
    # The real server takes up a changed schema moments later.
    wait_for(lambda: kubectl.run("apply", "--dry-run=server", "-f", "-", check=False,
                                 input=yaml.safe_dump(make_gadget("probe", target="obs://old/x"))).returncode != 0)
    kubectl("patch", "gadget", "g", "--type=merge", "-p", '{"spec":{"replicas":2}}')  # tags and target unchanged: accepted
    refused = kubectl.run("patch", "gadget", "g", "--type=merge", "-p", '{"spec":{"tags":["a","c"]}}', check=False)
    assert "spec.tags: Too many: 2: must have at most 1 item\n" in refused.stderr
    assert kubectl.json("get", "gadget", "g")["spec"] == {"target": "obs://old/place", "tags": ["a", "b"], "replicas": 2,
                                                           "size": "small"}


def test_whole_numbers_in_floating_point_form(kube: Any, crd: Any, widget: Any) -> None:
    """2.0 is a whole number to the real server: an int-or-string takes it, and it is stored as 2."""
    code, created = kube.http("POST", "/apis/example.com/v1/namespaces/default/widgets", widget("w", port=2.0))
    assert (code, created["spec"]["port"]) == (201, 2)
    assert isinstance(created["spec"]["port"], int)


@pytest.mark.kube_backends("real")
def test_cel_sees_whole_floats_as_floats_on_the_real_server(kube: Any, crd: Any, widget: Any) -> None:
    """The real server's CEL sees 2.0 in an integer field as a double and fails the rule on it; the
    emulator hands CEL the whole number."""
    code, status = kube.http("POST", "/apis/example.com/v1/namespaces/default/widgets", widget("w", replicas=2.0))
    assert (code, status["details"]["causes"][0]["message"]) == (
        422, 'Invalid value: "object": invalid data, expected int, got float64 evaluating rule: more than 5 replicas need size big')


@pytest.mark.kube_backends("real")
def test_cel_extension_libraries_and_cost_limits_on_the_real_server(kubectl: Any, crd: Any, wait_for: Any) -> None:
    """The Kubernetes CEL libraries (here isURL, lowerAscii) and the cost estimate that refuses CRDs
    whose rules could run too long; the emulator has neither (it refuses the first, allows the second)."""
    unbounded = {"type": "object", "properties": {"names": {"type": "array", "items": {"type": "string"}}},
                 "x-kubernetes-validations": [{"rule": "self.names.all(a, self.names.all(b, self.names.all(c, a + b + c != '')))"}]}
    error = rejected(kubectl, gadget_crd(crd, unbounded))
    assert "estimated rule cost exceeds budget" in error
    extended = {"type": "object", "properties": {"url": {"type": "string", "maxLength": 100}},
                "x-kubernetes-validations": [{"rule": "isURL(self.url) && self.url.lowerAscii() == self.url",
                                              "message": "a lower-case URL"}]}
    kubectl.apply(gadget_crd(crd, extended))
    kubectl("wait", "--for=condition=Established", "crd/gadgets.example.com", "--timeout=10s")
    kubectl.apply(make_gadget("g", url="https://example.com/a"))
    assert errors(kubectl, make_gadget("g2", url="https://example.com/A")) == {'spec: Invalid value: "object": a lower-case URL'}


def test_a_rule_that_cannot_be_evaluated_is_named_by_its_message(kubectl: Any, crd: Any) -> None:
    spec = {"type": "object", "properties": {"tags": {"type": "array", "maxItems": 5, "items": {"type": "string", "maxLength": 10}}},
            "x-kubernetes-validations": [{"rule": "self.tags[2] == 'c'", "message": "the third tag is c"}]}
    kubectl.apply(gadget_crd(crd, spec))
    kubectl("wait", "--for=condition=Established", "crd/gadgets.example.com", "--timeout=10s")
    kubectl.apply(make_gadget("g", tags=["a", "b", "c"]))
    (error,) = errors(kubectl, make_gadget("g2", tags=["a"]))
    assert error.startswith('spec: Invalid value: "object": ') and error.endswith(" evaluating rule: the third tag is c")
