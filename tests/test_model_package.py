"""validate_model_package: every way a package can break is reported with a precise message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelarts_operator.local.serving.package import (
    ModelPackageError,
    check_model_package,
    validate_model_package,
)

TEMPLATE = Path(__file__).resolve().parents[1] / "model_code" / "model"


@pytest.fixture
def package(tmp_path) -> Path:
    """A package with the real inference code and config, and a SavedModel's files (content is not read)."""
    root = tmp_path / "model"
    shutil.copytree(TEMPLATE, root)
    (root / "saved_model.pb").write_bytes(b"\x08\x01")
    (root / "variables").mkdir()
    (root / "variables" / "variables.index").write_bytes(b"")
    return root


def edit_config(root: Path, **changes) -> None:
    config = json.loads((root / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    (root / "config.json").write_text(json.dumps(config))


def test_template_package_is_valid(package):
    assert validate_model_package(package) == []
    assert check_model_package(package).model_type == "TensorFlow"


def test_missing_files(package):
    (package / "config.json").unlink()
    (package / "customize_service.py").unlink()
    shutil.rmtree(package / "variables")
    (package / "saved_model.pb").unlink()
    assert validate_model_package(package) == [
        "config.json: missing (expected at the top of the model folder)",
        "customize_service.py: missing (expected at the top of the model folder)",
        "SavedModel: no saved_model.pb at the top of the model folder",
        "SavedModel: no variables/ folder",
    ]


def test_duplicates_and_misplaced_files(package):
    (package / "extra").mkdir()
    shutil.copy(package / "config.json", package / "extra" / "config.json")
    (package / "customize_service.py").rename(package / "extra" / "customize_service.py")
    assert validate_model_package(package)[:2] == [
        "config.json: exactly one allowed, found 2: config.json, extra/config.json",
        "customize_service.py: must sit at the top of the model folder, found at extra/customize_service.py",
    ]


def test_config_json_keys_and_types(package):
    edit_config(
        package,
        model_algorithm=None,
        model_type="Tensorflow",
        metrics={"accuracy": 1.5},
        dependencies=[{"installer": "pip", "packages": [{"package_name": "numpy", "restraint": "ATLEAST"}]}],
    )
    problems = validate_model_package(package)
    assert "config.json: model_algorithm: Field required" in problems
    assert any(p.startswith("config.json: model_type: Input should be 'TensorFlow'") for p in problems)
    assert "config.json: metrics.accuracy: Input should be less than or equal to 1" in problems
    assert "config.json: dependencies.0.packages.0: Value error, restraint ATLEAST needs a package_version" in problems


def test_config_json_not_json(package):
    (package / "config.json").write_text("{model_type: TensorFlow")
    assert validate_model_package(package)[0].startswith("config.json: not valid JSON (Expecting property name")
    (package / "config.json").write_text("[1, 2]")
    assert validate_model_package(package) == ["config.json: must hold a JSON object, not list"]


def test_inference_code_must_parse_and_define_a_service(package):
    (package / "customize_service.py").write_text("def broken(:\n")
    assert validate_model_package(package)[0].startswith("customize_service.py: does not parse: invalid syntax")
    (package / "customize_service.py").write_text("class Plain:\n    pass\n")
    assert validate_model_package(package) == [
        "customize_service.py: defines no class derived from TfServingBaseService (or another *BaseService)"
    ]


def test_check_raises_with_every_problem(package, tmp_path):
    (package / "variables" / "variables.index").unlink()
    edit_config(package, model_type=None)
    with pytest.raises(ModelPackageError) as caught:
        check_model_package(package)
    assert caught.value.problems == [
        "config.json: model_type: Field required",
        "SavedModel: variables/variables.index missing",
    ]
    assert validate_model_package(tmp_path / "nope") == [f"{tmp_path / 'nope'}: not a folder"]
