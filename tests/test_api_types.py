"""The API types: crds/ is what they generate, the samples validate, and the models refuse bad specs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from modelarts_operator.api import crdgen
from modelarts_operator.api.kinds import KINDS
from modelarts_operator.api.v1alpha1 import (
    MnistDatasetSpec,
    ModelArtsAlgorithmSpec,
    ModelArtsServiceSpec,
    TrainingJobSpec,
)

ROOT = Path(__file__).resolve().parents[1]


def test_crds_are_not_stale():
    expected = crdgen.expected_files()
    present = {p.name: p.read_text() for p in (ROOT / "crds").iterdir()}
    assert sorted(present) == sorted(expected), "run `make crds`"
    for name, content in expected.items():
        assert present[name] == content, f"crds/{name} is stale: run `make crds`"
    from modelarts_operator.api.reference import render

    assert (ROOT / "docs" / "api.md").read_text() == render(), "docs/api.md is stale: run `make crds`"


def walk(schema: dict, path: str = ""):
    yield path, schema
    for name, sub in (schema.get("properties") or {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_generated_schemas_are_structural_and_documented(kind):
    crd = crdgen.crd(kind)
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["names"]["categories"] == ["modelarts"]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]][-1] == "Age"
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert all(node.get("description") for node in status["properties"].values()), "document every status field"
    for path, node in walk(spec, "spec"):
        assert "type" in node, f"{path} has no type"
        assert not {"anyOf", "oneOf", "$ref", "allOf", "title"} & set(node), f"{path} is not structural"
    fields = [(p, n) for p, n in walk(spec, "spec") if p != "spec" and not p.endswith(("[]", "{}"))]
    undocumented = [p for p, n in fields if not n.get("description")]
    assert undocumented == [], f"document these fields in the API types: {undocumented}"


def test_crd_rules_are_compiled_cel():
    """Every x-kubernetes-validations rule parses as CEL (cel-python), so the API server will take it."""
    import celpy

    env = celpy.Environment()
    for kind in KINDS:
        for path, node in walk(crdgen.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]):
            for rule in node.get("x-kubernetes-validations", []):
                env.compile(rule["rule"])
                assert rule["message"], f"{kind.kind}{path}: a rule without a message"


def load_samples() -> dict[str, dict]:
    return {doc["kind"]: doc for f in sorted((ROOT / "manifests" / "samples").glob("*.yaml"))
            if f.name != "kustomization.yaml" for doc in yaml.safe_load_all(f.read_text())}


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_samples_validate(kind):
    sample = load_samples()[kind.kind]
    kind.spec.model_validate(sample["spec"])


def test_defaults_match_the_tutorial():
    dataset = MnistDatasetSpec.model_validate({"target": "obs://test-modelarts/dataset-mnist/"})
    assert dataset.source.type == "Download" and dataset.source.url.endswith("Mnist-Data-Set.zip")
    assert (dataset.layout, dataset.deletion_policy) == ("Both", "Delete")
    algorithm = ModelArtsAlgorithmSpec.model_validate({"code": {"builtin": "mnist-tensorflow",
                                                                "uploadTo": "obs://b-x/code/"}})
    assert (algorithm.engine.name, algorithm.boot_file, algorithm.inputs) == ("TensorFlow", "train_mnist_tf.py",
                                                                               ["data_url"])


@pytest.mark.parametrize(
    ("model", "spec", "field"),
    [
        (MnistDatasetSpec, {"target": "s3://bucket/x/"}, "target"),
        (MnistDatasetSpec, {"target": "obs://bucket/no-trailing-slash"}, "target"),
        (MnistDatasetSpec, {"target": "obs://bucket/x/", "layout": "Zip"}, "layout"),
        (MnistDatasetSpec, {"target": "obs://bucket/x/", "color": "red"}, "color"),
        (TrainingJobSpec, {"inputs": [{"obsPath": "obs://b-x/d/"}], "output": {"obsPath": "obs://b-x/o/"}},
         "algorithmRef"),
        (TrainingJobSpec, {"algorithmRef": {"name": "a"}, "inputs": [], "output": {"obsPath": "obs://b-x/o/"}},
         "inputs"),
        (TrainingJobSpec, {"algorithmRef": {"name": "a"}, "inputs": [{"obsPath": "obs://b-x/d/"}],
                           "output": {"obsPath": "obs://b-x/o/"}, "maxRuntime": "one hour"}, "maxRuntime"),
        (ModelArtsServiceSpec, {"modelPath": "obs://b-x/m/", "instanceCount": 0}, "instanceCount"),
        (ModelArtsServiceSpec, {"modelPath": "obs://b-x/m/", "autoStopAfter": "90s"}, "autoStopAfter"),
    ],
)
def test_models_reject_bad_specs_naming_the_field(model, spec, field):
    with pytest.raises(ValidationError) as caught:
        model.model_validate(spec)
    assert field in str(caught.value)
