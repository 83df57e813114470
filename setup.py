"""Packaging beyond pyproject.toml: wheels carry `crds/` and `model_code/` as package data.

They stay at the top of the project; the build copies them into `modelarts_operator/data/` (read with
importlib.resources, see that package). An editable install copies nothing: it reads the checkout.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA_FOLDERS = ("crds", "model_code")


class build_py_with_data(build_py):  # noqa: N801 - a setuptools command
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in DATA_FOLDERS:
            target = Path(self.build_lib) / "modelarts_operator" / "data" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(ROOT / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": build_py_with_data})
