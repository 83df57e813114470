"""`make crds`: write crds/ and docs/api.md from the API types.

    python -m modelarts_operator.api.generate crds docs/api.md

`crdgen` makes the CRDs, `reference` the field reference from them; this entry point writes both
(and keeps the two modules free of each other's imports but one: reference uses crdgen).
"""

from __future__ import annotations

import sys
from pathlib import Path

from modelarts_operator.api import crdgen, reference


def write_all(folder: Path, reference_file: Path | None = None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in crdgen.expected_files().items():
        path = folder / name
        path.write_text(content)
        written.append(path)
    if reference_file is not None:
        reference_file.write_text(reference.render())
        written.append(reference_file)
    return written


if __name__ == "__main__":
    args = sys.argv[1:]
    for path in write_all(Path(args[0] if args else "crds"), Path(args[1]) if len(args) > 1 else None):
        print(path)
