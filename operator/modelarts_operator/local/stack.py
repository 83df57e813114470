"""The local stack as background processes: `modelarts-operator local up` / `local down`.

up starts the local cloud, a Kubernetes API (your cluster if one is reachable, else the emulator, or
with `--kube real` a real control plane built by `make kube`), installs the CRDs and the credentials
Secret, and runs the operator (on the real control plane as its ServiceAccount, under manifests/rbac.yaml). Everything lives in one folder (.local/):
endpoints, kubeconfig, logs and the process ids that `down` stops.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from modelarts_operator import data
from modelarts_operator.local import free_port

SECRET_NAME = "modelarts-credentials"


class StackError(RuntimeError):
    pass


@dataclass
class Stack:
    folder: Path = Path(".local")
    namespace: str = "modelarts-demo"
    kube: str = "auto"  # auto | emulator | real

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "kubeconfig"

    @property
    def operator_kubeconfig(self) -> Path:
        """The operator's own identity on the real control plane; elsewhere the admin's kubeconfig."""
        path = self.folder / "operator.kubeconfig"
        return path if self.kube == "real" else self.kubeconfig

    @property
    def cloud_file(self) -> Path:
        return self.folder / "cloud.json"

    @property
    def pids_file(self) -> Path:
        return self.folder / "pids.json"

    def log(self, name: str) -> Path:
        return self.folder / "logs" / f"{name}.log"

    # --- processes -----------------------------------------------------------------------------

    def _pids(self) -> dict[str, int]:
        return json.loads(self.pids_file.read_text()) if self.pids_file.exists() else {}

    def _spawn(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        self.log(name).parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log(name), "ab")  # noqa: SIM115 - the child keeps it
        process = subprocess.Popen([sys.executable, "-m", "modelarts_operator.cli", *args], stdout=out,
                                   stderr=subprocess.STDOUT, env=dict(os.environ, **(env or {})),
                                   start_new_session=True)
        pids = self._pids()
        pids[name] = process.pid
        self.pids_file.write_text(json.dumps(pids))
        return process

    def _wait(self, what: str, check, process: subprocess.Popen, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if process.poll() is not None:
                raise StackError(f"{what} exited with {process.returncode}; see {self.log(what)}")
            if time.monotonic() > deadline:
                raise StackError(f"{what} not ready after {timeout:.0f}s; see {self.log(what)}")
            time.sleep(0.3)

    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig.resolve())}

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        result = subprocess.run(["kubectl", *args], capture_output=True, text=True, input=input,
                                env=dict(os.environ, **self.env()))
        if check and result.returncode != 0:
            raise StackError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    # --- up / down -----------------------------------------------------------------------------

    def cluster_reachable(self) -> bool:
        """A cluster from the user's own kubeconfig, used instead of the local Kubernetes API."""
        if not os.environ.get("KUBECONFIG") and not Path("~/.kube/config").expanduser().exists():
            return False
        result = subprocess.run(["kubectl", "version", "--request-timeout=3s", "-o", "json"], capture_output=True)
        return result.returncode == 0

    def start_cloud(self) -> dict:
        self.cloud_file.unlink(missing_ok=True)
        process = self._spawn("cloud", ["local", "cloud", "--endpoints-file", str(self.cloud_file)])
        self._wait("cloud", self.cloud_file.exists, process)
        return json.loads(self.cloud_file.read_text())

    def start_kube(self) -> None:
        if self.kube == "auto" and self.cluster_reachable():
            Path(self.kubeconfig).unlink(missing_ok=True)
            Path(self.kubeconfig).symlink_to(Path(os.environ.get("KUBECONFIG", "~/.kube/config")).expanduser())
            return
        self.kubeconfig.unlink(missing_ok=True)
        if self.kube == "real":
            from modelarts_operator.local.realkube import binaries_dir, missing_binaries

            folder = binaries_dir()
            if missing_binaries(folder):
                raise StackError(f"no Kubernetes binaries in {folder}: run make kube")
            process = self._spawn("kube", ["local", "kube", "--real", "--folder", str(self.folder / "kube"),
                                           "--kubeconfig", str(self.kubeconfig),
                                           "--operator-kubeconfig", str(self.operator_kubeconfig)])
        else:
            process = self._spawn("kube", ["local", "kube", "--kubeconfig", str(self.kubeconfig)])

        def answering() -> bool:
            if not self.kubeconfig.exists():
                return False
            return subprocess.run(["kubectl", "version", "--request-timeout=2s"], capture_output=True,
                                  env=dict(os.environ, **self.env())).returncode == 0

        self._wait("kube", answering, process)

    def install(self, cloud: dict) -> None:
        """CRDs, the namespace, and the credentials Secret (through stdin: no key on a command line)."""
        self.kubectl("apply", "-k", str(data.crds()))
        self.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}))
        credentials = {k: cloud[k] for k in ("ak", "sk", "projectId", "region", "obsEndpoint", "modelartsEndpoint")}
        self.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": SECRET_NAME, "namespace": self.namespace}, "stringData": credentials}))

    def start_operator(self, poll_fast: float = 2.0) -> None:
        # A port chosen free at start: a fixed one may be another process's, which would answer the probe.
        liveness = f"http://127.0.0.1:{free_port()}/healthz"
        process = self._spawn("operator", ["run", "--namespace", self.namespace, "--standalone",
                                           "--liveness", liveness, "--poll-fast", str(poll_fast), "--poll-slow", "30"],
                              env={"KUBECONFIG": str(self.operator_kubeconfig.resolve())})

        def live() -> bool:
            try:
                with urllib.request.urlopen(liveness, timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        self._wait("operator", live, process)

    def assert_alive(self) -> None:
        """Every component `up` started still runs; else a StackError with the dead one's log tail."""
        for name, pid in self._pids().items():
            if _gone(pid):
                lines = self.log(name).read_text(errors="replace").splitlines()[-15:] if self.log(name).exists() else []
                raise StackError(f"{name} (pid {pid}) exited; the end of {self.log(name)}:\n" + "\n".join(lines))

    def up(self) -> dict:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.down(quiet=True)
        cloud = self.start_cloud()
        self.start_kube()
        self.install(cloud)
        self.start_operator()
        return cloud

    def down(self, quiet: bool = False) -> None:
        """Stop what up started: SIGTERM, then SIGKILL after 20 s; process groups, so children go too."""
        pids = self._pids()
        for name in ("operator", "kube", "cloud"):
            pid = pids.get(name)
            if pid is None:
                continue
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not _gone(pid):
                time.sleep(0.2)
            if not _gone(pid):
                os.killpg(pid, signal.SIGKILL)
            if not quiet:
                print(f"stopped {name} (pid {pid})")
        self.pids_file.unlink(missing_ok=True)


def _gone(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0]:  # our own child: reap it, or it lingers as a zombie
            return True
    except ChildProcessError:
        pass  # started by another invocation of `local up`
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
