"""Import a model package's customize_service.py and instantiate its service class, as ModelArts does."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
import types
from pathlib import Path

from modelarts_operator.local.serving.base import TfServingBaseService
from modelarts_operator.local.serving.package import check_model_package

COMPAT_DIR = Path(__file__).resolve().parent / "compat"


def enable_model_service_imports() -> None:
    """Make `import model_service.tfserving_model_service` resolve to our runtime."""
    if str(COMPAT_DIR) not in sys.path:
        sys.path.insert(0, str(COMPAT_DIR))


def _import_package(model_dir: Path) -> types.ModuleType:
    """Import the folder as a package of its own, so helper modules work through relative imports
    and two packages in one process do not share module names."""
    package_name = "modelarts_model_" + hashlib.sha1(str(model_dir).encode()).hexdigest()[:12]
    package = types.ModuleType(package_name)
    package.__path__ = [str(model_dir)]
    sys.modules[package_name] = package
    return importlib.import_module(f"{package_name}.customize_service")


def load_model_service(model_dir, model_name: str = "model") -> TfServingBaseService:
    """Validate the package, import its inference code and build the service (loads the SavedModel)."""
    model_dir = Path(model_dir).resolve()
    check_model_package(model_dir)
    enable_model_service_imports()
    module = _import_package(model_dir)
    classes = [
        cls for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, TfServingBaseService) and cls.__module__ == module.__name__
    ]
    if len(classes) != 1:
        names = ", ".join(cls.__name__ for cls in classes) or "none"
        raise ValueError(f"customize_service.py must define exactly one TfServingBaseService subclass, found: {names}")
    return classes[0](model_name, str(model_dir))
