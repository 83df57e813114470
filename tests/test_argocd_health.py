"""Argo CD's own Lua engine runs the health checks of manifests/argocd/ (tools/argocd-health/, docs/argocd.md):
every health_test.yaml case passes as a contributed check, as installed through argocd-cm and as the
application controller sees it, and the tool fails on what lupa lets through (Lua 5.4 syntax, the string
library an argocd-cm script does not have), on a wrong expectation, and on an argocd-cm Argo CD would not read."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from modelarts_operator.api import health
from modelarts_operator.api.kinds import KINDS

ROOT = Path(__file__).resolve().parents[1]
ARGOCD = ROOT / "manifests" / "argocd"
BUILD = ROOT / "tools" / "argocd-health" / "build.sh"


@pytest.fixture(scope="module")
def argocd_health() -> Path:
    """The tool's binary: `make test` built it first (`make argocd-health`), so this costs nothing then."""
    if shutil.which("go") is None:
        pytest.skip("Go is not installed (`make test` needs it for tools/kube and tools/argocd-health)")
    subprocess.run(["bash", str(BUILD)], check=True, capture_output=True, timeout=3600)
    return Path(subprocess.run(["bash", str(BUILD), "path"], check=True, capture_output=True,
                               text=True).stdout.strip())


def run(tool: Path, folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(tool), str(folder)], capture_output=True, text=True, timeout=120)


def case_count(folder: Path) -> int:
    return sum(len(yaml.safe_load(p.read_text())["tests"]) for p in folder.rglob("health_test.yaml"))


@pytest.fixture
def copy(tmp_path) -> Path:
    folder = tmp_path / "argocd"
    shutil.copytree(ARGOCD, folder)
    return folder


def edit_scripts(folder: Path, old: str, new: str) -> None:
    """Change every health.lua and argocd-cm.yaml alike (the tool also checks that they match)."""
    cm_path = folder / health.CONFIG_MAP
    cm = yaml.safe_load(cm_path.read_text())
    for kind in KINDS:
        path = folder / health.script_path(kind.kind)
        script = path.read_text()
        assert old in script
        path.write_text(script.replace(old, new))
        cm["data"][health.config_map_key(kind.kind)] = script.replace(old, new)
    cm_path.write_text(yaml.safe_dump(cm))


def test_every_case_passes_in_argo_cds_engine(argocd_health):
    result = run(argocd_health, ARGOCD)
    assert result.returncode == 0, result.stdout + result.stderr
    cases = case_count(ARGOCD)
    assert cases >= 36
    assert result.stdout.splitlines()[-1] == f"argocd-health: {3 * cases} passed, 0 failed", result.stdout


def test_a_wrong_expectation_fails(argocd_health, copy):
    path = copy / health.script_path("TrainingJob")
    tests = path.with_name("health_test.yaml")
    text = tests.read_text()
    assert "status: Degraded" in text
    tests.write_text(text.replace("status: Degraded", "status: Healthy", 1))
    result = run(argocd_health, copy)
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 3 and all("modelarts.mlops.dev/TrainingJob/testdata/" in line for line in failed), failed
    assert "want Healthy" in result.stdout and "got  Degraded" in result.stdout


def test_argocd_cm_scripts_have_no_string_library(argocd_health, copy):
    """A contributed check runs with Lua's open libraries, an argocd-cm one without: string.format passes the
    first way (and in lupa) and fails as installed."""
    edit_scripts(copy, 'hs.message = condition.reason .. ": " .. condition.message',
                 'hs.message = string.format("%s: %s", condition.reason, condition.message)')
    result = run(argocd_health, copy)
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert failed and not [line for line in failed if "[contributed]" in line], result.stdout
    assert any("[argocd-cm]" in line and "format" in line for line in failed), result.stdout


def test_lua_5_4_syntax_fails_in_argo_cds_engine(argocd_health, copy):
    """Floor division (`//`, Lua 5.3+) runs in lupa's Lua 5.4, not in Argo CD's gopher-lua (Lua 5.1)."""
    lupa = pytest.importorskip("lupa")
    runtime = lupa.LuaRuntime()
    assert runtime.eval("function() local half = 3 // 2 return half end")() == 1
    edit_scripts(copy, 'local hs = {', 'local half = 3 // 2\nlocal hs = {')
    result = run(argocd_health, copy)
    assert result.returncode == 1
    assert "passed, 0 failed" not in result.stdout.splitlines()[-1]
    assert "[contributed]" in result.stdout and "[argocd-cm]" in result.stdout


def test_argocd_cm_without_argo_cds_label_is_not_read(argocd_health, copy):
    """Argo CD reads only the argocd-cm labelled app.kubernetes.io/part-of: argocd."""
    path = copy / health.CONFIG_MAP
    path.write_text(path.read_text().replace("app.kubernetes.io/part-of: argocd", "app.kubernetes.io/part-of: other"))
    result = run(argocd_health, copy)
    assert result.returncode == 1
    assert "settings manager cannot read" in result.stdout, result.stdout


def test_unused_testdata_fails(argocd_health, copy):
    folder = (copy / health.script_path("MnistDataset")).parent / "testdata"
    shutil.copy(folder / "uploaded.yaml", folder / "forgotten.yaml")
    result = run(argocd_health, copy)
    assert result.returncode == 1
    assert "forgotten.yaml is used by no case" in result.stdout
