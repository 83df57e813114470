"""The local stack (`local up` / `local down` / `demo`) on the Kubernetes API emulator: two stacks in two
folders side by side, each component watched by its process, a dead one named with its log tail, and
nothing left running after `down` or after a demo is sent SIGTERM. Nothing is trained."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from modelarts_operator.local.demo import cloud_inventory
from modelarts_operator.local.stack import Stack, StackError

CLI = [sys.executable, "-m", "modelarts_operator.cli"]


def processes_mentioning(text: str) -> list[int]:
    """Pids of the processes whose environment names `text` (a stack's folder): its components
    carry it in KUBECONFIG or MODELARTS_LOCAL_STACK, and so do their children."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def kube_url(stack: Stack) -> str:
    return yaml.safe_load(stack.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]


def test_two_stacks_side_by_side_and_a_dead_component_is_named(tmp_path, capsys):
    a, b = Stack(tmp_path / "a", kube="emulator"), Stack(tmp_path / "b", kube="emulator")
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(2) as pool:  # at the same moment: the ports are chosen then
            cloud_a, cloud_b = pool.map(lambda stack: stack.up(), (a, b))
        print(f"two stacks up in {time.monotonic() - started:.1f} s", file=sys.stderr)

        # Their own ports, kubeconfigs and state files, and each answers on its own.
        assert kube_url(a) != kube_url(b)
        assert cloud_a["modelartsEndpoint"] != cloud_b["modelartsEndpoint"]
        assert cloud_a["obsEndpoint"] != cloud_b["obsEndpoint"]
        assert {p["pid"] for p in a.components().values()}.isdisjoint(p["pid"] for p in b.components().values())
        a.kubectl("create", "configmap", "only-in-a", "-n", a.namespace)
        assert "only-in-a" in a.kubectl("get", "configmaps", "-n", a.namespace, "-o", "name")
        assert "only-in-a" not in b.kubectl("get", "configmaps", "-n", b.namespace, "-o", "name")
        for stack, cloud in ((a, cloud_a), (b, cloud_b)):
            stack.assert_alive()
            assert "trainingjobs.modelarts.mlops.dev" in stack.kubectl("get", "crds", "-o", "name")
            assert cloud_inventory(cloud)["algorithms"] == 0

        # A's cloud dies (SIGKILL: it cannot stop its OBS server): seen at the next look, by its process.
        os.kill(a.components()["cloud"]["pid"], signal.SIGKILL)
        killed = time.monotonic()
        with pytest.raises(StackError) as dead:
            while time.monotonic() - killed < 5:
                a.assert_alive()
                time.sleep(0.1)
        print(f"dead component named after {time.monotonic() - killed:.2f} s", file=sys.stderr)
        assert "cloud" in str(dead.value) and "killed by SIGKILL" in str(dead.value)
        assert f"the end of {a.log('cloud')}" in str(dead.value) and "ModelArts endpoint:" in str(dead.value)
        b.assert_alive()

        # `local down --folder A` from another process stops A only: its components, and the orphaned OBS server.
        orphans = [pid for pid in processes_mentioning(str(a.folder.resolve()))
                   if pid not in {p["pid"] for p in a.components().values()}]
        assert orphans, "the OBS server, whose parent died, should still run"
        down = subprocess.run([*CLI, "local", "down", "--folder", str(a.folder)], capture_output=True, text=True,
                              timeout=60)
        assert down.returncode == 0, down.stderr
        assert "cloud (pid" in down.stdout and "is no longer running" in down.stdout
        assert "stopped operator" in down.stdout and "stopped kube" in down.stdout
        assert "other process(es) of this stack" in down.stdout
        assert processes_mentioning(str(a.folder.resolve())) == []
        assert not a.pids_file.exists()
        b.assert_alive()
        assert cloud_inventory(cloud_b)["algorithms"] == 0
        assert "only-in-a" not in b.kubectl("get", "configmaps", "-n", b.namespace, "-o", "name")
    finally:
        a.down(quiet=True)
        b.down(quiet=True)
    assert processes_mentioning(str(tmp_path)) == []


@pytest.mark.parametrize("signal_after", ["   local cloud ready", "== 2."], ids=["during-up", "after-up"])
def test_a_demo_sent_sigterm_stops_the_stack_it_started(tmp_path, signal_after):
    folder = tmp_path / "demo"
    demo = subprocess.Popen([*CLI, "demo", "--kube", "emulator", "--folder", str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = ""
    try:
        while signal_after not in output:  # up's stages are bounded: the line comes, or the demo ends
            line = demo.stdout.readline()
            assert line, f"the demo ended before {signal_after!r}:\n{output}"
            output += line
        assert processes_mentioning(str(folder.resolve()))
        demo.send_signal(signal.SIGTERM)
        output += demo.communicate(timeout=60)[0]
    finally:
        if demo.poll() is None:
            demo.kill()
            Stack(folder).down(quiet=True)
    assert demo.returncode == 128 + signal.SIGTERM, output
    assert processes_mentioning(str(folder.resolve())) == [], output
    if signal_after == "== 2.":
        assert "stopped operator" in output and "stopped cloud" in output, output
