"""The import contracts of .importlinter (layers, the local stack fenced off, Kopf only in the wiring,
no cycles in api/) hold, and docs/architecture.md names each of them."""

from __future__ import annotations

import configparser
import subprocess
import sys

from support import ROOT

LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def test_import_contracts_are_kept():
    result = subprocess.run([sys.executable, "-c", LINT_IMPORTS, "--config", str(ROOT / ".importlinter"), "--no-cache"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "0 broken" in result.stdout


def test_every_contract_is_documented():
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    names = [config[section]["name"] for section in config.sections() if section.startswith("importlinter:contract:")]
    doc = (ROOT / "docs" / "architecture.md").read_text()
    assert names and [name for name in names if name not in doc] == []
