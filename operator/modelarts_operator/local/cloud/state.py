"""The emulator's records: algorithms, training jobs, models, services (plain JSON-able dicts).

In memory by default. With a state folder, `state.json` there is rewritten (atomically) after each
change and read back at start; keys starting with "_" are the emulator's private fields and are
never shown in API answers.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

KINDS = ("algorithms", "jobs", "models", "services")


class State:
    def __init__(self, state_dir: Path | None) -> None:
        self.file = state_dir / "state.json" if state_dir else None
        self.algorithms: dict[str, dict] = {}
        self.jobs: dict[str, dict] = {}
        self.models: dict[str, dict] = {}
        self.services: dict[str, dict] = {}
        self.credentials: dict[str, str] = {}
        if self.file and self.file.is_file():
            document = json.loads(self.file.read_text(encoding="utf-8"))
            for kind in KINDS:
                getattr(self, kind).update(document.get(kind, {}))
            self.credentials.update(document.get("credentials", {}))

    def save(self) -> None:
        if self.file is None:
            return
        document = {kind: getattr(self, kind) for kind in KINDS}
        document["credentials"] = self.credentials
        self.file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.file.parent, delete=False, encoding="utf-8") as tmp:
            json.dump(document, tmp, indent=1)
        os.chmod(tmp.name, 0o600)  # it holds the secret key
        os.replace(tmp.name, self.file)


def public(record: dict) -> dict:
    """The record without its private ("_") top-level fields."""
    return {k: v for k, v in record.items() if not k.startswith("_")}
