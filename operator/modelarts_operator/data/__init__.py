"""The project's data folders as package data: `crds/` (the CustomResourceDefinitions `make crds`
writes) and `model_code/` (the training and inference code `builtin: mnist-tensorflow` uploads).

Both stay at the top of the project, where users read them and `kubectl apply -k crds/` takes them.
A wheel (`pip install .`, the operator image) carries copies inside this package, made by setup.py
at build time. An editable install (`pip install -e .`, `make venv`) has no copies: it reads the
checkout's own folders, found through the install's PEP 610 record (`direct_url.json`), so what
`make crds` writes is seen without reinstalling.
"""

from __future__ import annotations

import json
from importlib import metadata, resources
from pathlib import Path
from urllib.parse import unquote, urlparse

DISTRIBUTION = "modelarts-operator"
FOLDERS = ("crds", "model_code")


class PackageDataMissing(RuntimeError):
    """Neither a packaged copy nor an editable checkout: the installation is broken."""


def folder(name: str) -> Path:
    """The packaged copy of a top-level data folder, else the editable checkout's own."""
    if name not in FOLDERS:
        raise ValueError(f"{name!r} is not package data (one of {', '.join(FOLDERS)})")
    packaged = resources.files(__name__) / name
    if packaged.is_dir():
        return Path(str(packaged))  # an installed wheel: a plain folder in site-packages
    checkout = editable_checkout()
    if checkout is not None and (checkout / name).is_dir():
        return checkout / name
    raise PackageDataMissing(f"{name}/ is not packaged with {__name__} and {DISTRIBUTION} is no editable install "
                             "of a checkout: reinstall it (pip install .)")


def editable_checkout() -> Path | None:
    """The project folder of an editable install (pip's direct_url.json), or None."""
    try:
        record = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not record:
        return None
    url = json.loads(record)
    if not (url.get("dir_info") or {}).get("editable") or not url.get("url", "").startswith("file:"):
        return None
    return Path(unquote(urlparse(url["url"]).path))


def crds() -> Path:
    return folder("crds")


def model_code() -> Path:
    return folder("model_code")
