"""crds/ and model_code/ are package data: read from the checkout by an editable install (this venv),
and from the copies a wheel carries (what `pip install .` and the operator image get)."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from modelarts_operator import data
from modelarts_operator.controller.settings import Settings
from support import ROOT

SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "crds", "model_code", "operator")


def same_tree(a: Path, b: Path) -> bool:
    compared = filecmp.dircmp(a, b, ignore=["__pycache__"])
    return (not compared.left_only and not compared.right_only and not compared.diff_files
            and all(same_tree(a / sub, b / sub) for sub in compared.common_dirs))


def test_an_editable_install_reads_the_checkouts_folders():
    assert data.crds() == ROOT / "crds" and data.model_code() == ROOT / "model_code"
    assert data.editable_checkout() == ROOT
    assert Settings().builtin_code_dir == ROOT / "model_code"


def test_a_wheel_carries_copies_read_with_importlib_resources(tmp_path):
    source = tmp_path / "source"  # a copy: the build writes build/ and *.egg-info beside its sources
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next((tmp_path / "dist").glob("modelarts_operator-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "modelarts_operator/data/model_code/train_mnist_tf.py" in names
    assert "modelarts_operator/data/crds/kustomization.yaml" in names
    installed = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(installed), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    # -S: no site-packages, so not this venv's editable install either; the package data needs only the stdlib.
    found = subprocess.run([sys.executable, "-S", "-c", "from modelarts_operator import data; "
                            "print(data.crds()); print(data.model_code())"],
                           capture_output=True, text=True, env={"PYTHONPATH": str(installed)}, check=True)
    crds, model_code = (Path(line) for line in found.stdout.split())
    assert crds == installed / "modelarts_operator" / "data" / "crds" and same_tree(crds, ROOT / "crds")
    assert model_code == installed / "modelarts_operator" / "data" / "model_code" and same_tree(model_code, ROOT / "model_code")
