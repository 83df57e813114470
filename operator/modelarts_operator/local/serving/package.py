"""Check a folder against the ModelArts model package spec before importing or serving it.

`<source_location>/model/` holds exactly one config.json, exactly one customize_service.py, and for
TensorFlow a SavedModel (saved_model.pb + variables/). Every problem is reported, not just the first.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CONFIG = "config.json"
SERVICE = "customize_service.py"
MODEL_TYPES = (
    "TensorFlow", "MXNet", "Caffe", "Spark_MLlib", "Scikit_Learn", "XGBoost", "Image", "PyTorch", "Template", "Custom",
)


class ModelPackageError(ValueError):
    def __init__(self, path, problems: list[str]):
        self.problems = problems
        super().__init__(f"invalid model package {path}: " + "; ".join(problems))


class _Spec(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Metrics(_Spec):
    f1: float | None = Field(None, ge=0, le=1)
    recall: float | None = Field(None, ge=0, le=1)
    precision: float | None = Field(None, ge=0, le=1)
    accuracy: float | None = Field(None, ge=0, le=1)


class ApiMessage(_Spec):
    content_type: str = Field(alias="Content-type")
    data: dict


class Api(_Spec):
    protocol: Literal["http", "https"]
    url: str = Field(pattern=r"^/")
    method: Literal["get", "post", "put", "delete", "patch", "GET", "POST", "PUT", "DELETE", "PATCH"]
    request: ApiMessage
    response: ApiMessage


class Package(_Spec):
    package_name: str = Field(min_length=1)
    package_version: str | None = None
    restraint: Literal["EXACT", "ATLEAST", "ATMOST"] | None = None

    @model_validator(mode="after")
    def _restraint_needs_version(self):
        if self.restraint and not self.package_version:
            raise ValueError(f"restraint {self.restraint} needs a package_version")
        return self


class Dependency(_Spec):
    installer: Literal["pip"]
    packages: list[Package] = Field(min_length=1)


class ModelConfig(_Spec):
    model_algorithm: str = Field(min_length=1)
    model_type: Literal[MODEL_TYPES]  # type: ignore[valid-type]
    runtime: str | None = None
    metrics: Metrics | None = None
    apis: list[Api] = []
    dependencies: list[Dependency] = []


def _pydantic_problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"{CONFIG}: {where}: {error['msg']}")
    return problems


def _config_problems(path: Path) -> tuple[list[str], ModelConfig | None]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"{CONFIG}: not valid JSON ({exc})"], None
    if not isinstance(document, dict):
        return [f"{CONFIG}: must hold a JSON object, not {type(document).__name__}"], None
    try:
        return [], ModelConfig.model_validate(document)
    except ValidationError as exc:
        return _pydantic_problems(exc), None


def _service_problems(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=SERVICE)
    except (SyntaxError, UnicodeDecodeError) as exc:
        return [f"{SERVICE}: does not parse: {exc}"]
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
                if name.endswith("BaseService"):
                    return []
    return [f"{SERVICE}: defines no class derived from TfServingBaseService (or another *BaseService)"]


def validate_model_package(path) -> list[str]:
    """Return every problem found in the package folder `path`; an empty list means it is valid."""
    root = Path(path)
    if not root.is_dir():
        return [f"{root}: not a folder"]
    problems: list[str] = []
    for name in (CONFIG, SERVICE):
        found = sorted(p.relative_to(root).as_posix() for p in root.rglob(name))
        if not found:
            problems.append(f"{name}: missing (expected at the top of the model folder)")
        elif len(found) > 1:
            problems.append(f"{name}: exactly one allowed, found {len(found)}: {', '.join(found)}")
        elif found[0] != name:
            problems.append(f"{name}: must sit at the top of the model folder, found at {found[0]}")
    config = None
    if (root / CONFIG).is_file():
        config_problems, config = _config_problems(root / CONFIG)
        problems += config_problems
    if (root / SERVICE).is_file():
        problems += _service_problems(root / SERVICE)
    if config is None or config.model_type == "TensorFlow":
        if not any((root / name).is_file() for name in ("saved_model.pb", "saved_model.pbtxt")):
            problems.append("SavedModel: no saved_model.pb at the top of the model folder")
        if not (root / "variables").is_dir():
            problems.append("SavedModel: no variables/ folder")
        elif not (root / "variables" / "variables.index").is_file():
            problems.append("SavedModel: variables/variables.index missing")
    return problems


def check_model_package(path) -> ModelConfig:
    """Validate and return the parsed config.json, or raise ModelPackageError with every problem."""
    problems = validate_model_package(path)
    if problems:
        raise ModelPackageError(path, problems)
    return _config_problems(Path(path) / CONFIG)[1]
