"""The local stack as background processes: `modelarts-operator local up` / `local down`.

up starts the local cloud, a Kubernetes API (your cluster if one is reachable, else the emulator, or
with `--kube real` a real control plane built by `make kube`), installs the CRDs and the credentials
Secret, and runs the operator (on the real control plane as its ServiceAccount, under
manifests/rbac.yaml). Everything lives in one folder (.local/): endpoints, kubeconfig, logs and the
process of each component (`pids.json`), which `down` stops. Every port is chosen free at start, so
stacks in two folders run side by side.

A component is watched through its process (pid and start time, from /proc), never through a port,
which another process could answer; every stage has a time bound and names what to look at when it
ends. Linux only (/proc).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from modelarts_operator import data
from modelarts_operator.local import free_port

SECRET_NAME = "modelarts-credentials"
COMPONENTS = ("cloud", "kube", "operator")  # in start order; down stops them in reverse
# Every process of a stack inherits this variable, set to the stack's folder: `down` finds them all by
# it, even one whose parent died or that started a session of its own (the OBS server, a training job).
STACK_ENV = "MODELARTS_LOCAL_STACK"
# The time bound of each stage of `up`, in seconds: stages on a loaded machine take many times longer
# than on an idle one (about 3 s for the cloud, under 1 s for the emulator, 30 s for a real control plane).
TIMEOUTS = {"cloud": 120, "kube": 60, "kube-real": 300, "install": 60, "operator": 120}
STOP_TIMEOUT = 20  # SIGTERM, then SIGKILL after this many seconds
LOG_TAIL = 20


class StackError(RuntimeError):
    pass


@dataclass
class Stack:
    folder: Path = Path(".local")
    namespace: str = "modelarts-demo"
    kube: str = "auto"  # auto | emulator | real
    # the components this object started: poll() gives their exit code and reaps them (no zombies)
    _processes: dict[str, subprocess.Popen] = field(default_factory=dict, init=False, repr=False)
    _reported: set[str] = field(default_factory=set, init=False, repr=False)  # deaths assert_alive has said

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

    def log_tail(self, name: str, lines: int = LOG_TAIL) -> str:
        path = self.log(name)
        text = (path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []) or ["(empty)"]
        return f"the end of {path}:\n" + "\n".join(f"   | {line}" for line in text)

    # --- processes -----------------------------------------------------------------------------

    def components(self) -> dict[str, dict]:
        """{name: {"pid": ..., "started": ...}} of every component started in this folder."""
        return json.loads(self.pids_file.read_text()) if self.pids_file.exists() else {}

    def _spawn(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        self.log(name).parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, **(env or {}), **{STACK_ENV: str(self.folder.resolve())})
        with open(self.log(name), "ab") as out:
            # a session of its own: Ctrl-C in the terminal reaches only us, and down stops its whole group
            process = subprocess.Popen([sys.executable, "-m", "modelarts_operator.cli", *args], stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                       start_new_session=True)
        self._processes[name] = process
        components = self.components()
        components[name] = {"pid": process.pid, "started": _stat(process.pid)[1]}
        self.pids_file.write_text(json.dumps(components))
        return process

    def running(self, name: str) -> bool:
        """The component's own process still runs (not merely some process with its pid)."""
        entry = self.components()[name]
        if name in self._processes:
            self._processes[name].poll()  # our child: reap it, so that /proc shows it gone
        stat = _stat(entry["pid"])
        return stat is not None and stat[0] != "Z" and stat[1] == entry["started"]

    def death_notice(self, name: str) -> str:
        pid = self.components()[name]["pid"]
        code = None
        if name in self._processes:
            try:  # a dying process shows as a zombie a moment before it can be reaped (its threads exiting)
                code = self._processes[name].wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        how = ("is no longer running" if code is None else f"exited with {code}" if code >= 0
               else f"was killed by {signal.Signals(-code).name}")
        return f"{name} (pid {pid}) {how}; {self.log_tail(name)}"

    def assert_alive(self) -> None:
        """Every component started in this folder still runs; else a StackError naming the first dead
        one, with its log tail. Cheap (a few /proc reads): call it in every wait loop."""
        for name in self.components():
            if not self.running(name):
                self._reported.add(name)
                raise StackError(self.death_notice(name))

    def _wait(self, stage: str, name: str, check, timeout: float, waiting_for: str) -> None:
        """Until check() is true; a dead component (any, not only `name`) ends the wait at once."""
        deadline = time.monotonic() + timeout
        while True:
            self.assert_alive()  # before check(): a port answering says nothing about whose it is
            if check():
                return
            if time.monotonic() > deadline:
                raise StackError(f"{stage}: not done after {timeout:.0f} s ({waiting_for}); {self.log_tail(name)}")
            time.sleep(0.3)

    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig.resolve())}

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60) -> str:
        try:
            result = subprocess.run(["kubectl", *args], capture_output=True, text=True, input=input,
                                    env=dict(os.environ, **self.env()), timeout=timeout)
        except subprocess.TimeoutExpired:
            self.assert_alive()
            raise StackError(f"kubectl {' '.join(args)}: no answer in {timeout:.0f} s; "
                             f"{self.log_tail('kube')}") from None
        if check and result.returncode != 0:
            self.assert_alive()  # "connection refused" from a dead API is said as the death it is
            raise StackError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    # --- up / down -----------------------------------------------------------------------------

    def cluster_reachable(self) -> bool:
        """A cluster from the user's own kubeconfig, used instead of the local Kubernetes API."""
        if not os.environ.get("KUBECONFIG") and not Path("~/.kube/config").expanduser().exists():
            return False
        try:
            result = subprocess.run(["kubectl", "version", "--request-timeout=3s", "-o", "json"],
                                    capture_output=True, timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0

    def start_cloud(self) -> dict:
        self.cloud_file.unlink(missing_ok=True)
        self._spawn("cloud", ["local", "cloud", "--endpoints-file", str(self.cloud_file)])
        self._wait("start the local cloud", "cloud", self.cloud_file.exists, TIMEOUTS["cloud"],
                   f"no {self.cloud_file} yet")
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
            self._spawn("kube", ["local", "kube", "--real", "--folder", str(self.folder / "kube"),
                                 "--kubeconfig", str(self.kubeconfig),
                                 "--operator-kubeconfig", str(self.operator_kubeconfig)])
        else:
            self._spawn("kube", ["local", "kube", "--kubeconfig", str(self.kubeconfig)])

        def answering() -> bool:
            if not self.kubeconfig.exists():
                return False
            try:
                return subprocess.run(["kubectl", "version", "--request-timeout=2s"], capture_output=True,
                                      env=dict(os.environ, **self.env()), timeout=10).returncode == 0
            except subprocess.TimeoutExpired:
                return False

        self._wait("start the Kubernetes API", "kube", answering,
                   TIMEOUTS["kube-real" if self.kube == "real" else "kube"], "kubectl version does not answer")

    def install(self, cloud: dict) -> None:
        """CRDs, the namespace, and the credentials Secret (through stdin: no key on a command line)."""
        deadline = time.monotonic() + TIMEOUTS["install"]

        def kubectl_apply(*args: str, input: str | None = None) -> None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StackError(f"install the CRDs and the Secret: not done after {TIMEOUTS['install']} s; "
                                 f"{self.log_tail('kube')}")
            self.kubectl("apply", *args, input=input, timeout=left)

        kubectl_apply("-k", str(data.crds()))
        kubectl_apply("-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}))
        credentials = {k: cloud[k] for k in ("ak", "sk", "projectId", "region", "obsEndpoint", "modelartsEndpoint")}
        kubectl_apply("-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": SECRET_NAME, "namespace": self.namespace}, "stringData": credentials}))

    def start_operator(self, poll_fast: float = 2.0) -> None:
        # The port is only how the operator says it is ready: whether it runs is judged by its process.
        liveness = f"http://127.0.0.1:{free_port()}/healthz"
        self._spawn("operator", ["run", "--namespace", self.namespace, "--standalone",
                                 "--liveness", liveness, "--poll-fast", str(poll_fast), "--poll-slow", "30"],
                    env={"KUBECONFIG": str(self.operator_kubeconfig.resolve()),
                         # its own scratch space: two stacks' operators must not share downloads
                         "MODELARTS_OPERATOR_WORK_DIR": str((self.folder / "work").resolve())})

        def live() -> bool:
            try:
                with urllib.request.urlopen(liveness, timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        self._wait("start the operator", "operator", live, TIMEOUTS["operator"], f"no answer at {liveness}")

    def up(self) -> dict:
        """Start every component, one stage after another; a stage that fails stops what was started."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.down(quiet=True)
        try:
            started = time.monotonic()
            cloud = self.start_cloud()
            print(f"   local cloud ready in {time.monotonic() - started:.1f} s", flush=True)
            started = time.monotonic()
            self.start_kube()
            self.install(cloud)
            print(f"   Kubernetes API ready, CRDs installed in {time.monotonic() - started:.1f} s", flush=True)
            started = time.monotonic()
            self.start_operator()
            print(f"   operator ready in {time.monotonic() - started:.1f} s", flush=True)
        except BaseException:  # SIGTERM and Ctrl-C too: nothing half-started is left running
            self.down(quiet=True)
            raise
        return cloud

    def down(self, quiet: bool = False) -> None:
        """Stop what up started, whichever process started it: each component's process group gets
        SIGTERM, then SIGKILL after STOP_TIMEOUT; then any process of this stack still left (by
        STACK_ENV). A component that had already died is said, with its log tail."""
        components = self.components()
        for name in reversed(COMPONENTS):
            if name not in components:
                continue
            if not self.running(name):
                if not quiet:
                    print(f"{name} had exited (above)" if name in self._reported else self.death_notice(name),
                          flush=True)
                continue
            self._stop(name)
            if not quiet:
                print(f"stopped {name} (pid {components[name]['pid']})", flush=True)
        left = stack_processes(self.folder)
        for pid in left:
            _signal(pid, signal.SIGTERM)
        if not _until(lambda: not stack_processes(self.folder), 10):
            for pid in stack_processes(self.folder):
                _signal(pid, signal.SIGKILL)
        if left and not quiet:
            print(f"stopped {len(left)} other process(es) of this stack: {' '.join(map(str, left))}", flush=True)
        self.pids_file.unlink(missing_ok=True)

    def _stop(self, name: str) -> None:
        """SIGTERM to the component's process group (its children too), SIGKILL if it outlives STOP_TIMEOUT."""
        group = self.components()[name]["pid"]
        _signal(group, signal.SIGTERM, os.killpg)
        if not _until(lambda: not self.running(name), STOP_TIMEOUT):
            _signal(group, signal.SIGKILL, os.killpg)
            _until(lambda: not self.running(name), 5)


def _until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def stack_processes(folder: Path) -> list[int]:
    """The pids of every running process that belongs to the stack in `folder` (STACK_ENV)."""
    marker = f"{STACK_ENV}={Path(folder).resolve()}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, a zombie, or another user's
            continue
    return found


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) from /proc/PID/stat: with the pid, who the process is."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], fields[19]


def _signal(pid: int, sig: int, kill=os.kill) -> None:
    try:
        kill(pid, sig)
    except ProcessLookupError:
        pass


def exit_on_sigterm() -> None:
    """SIGTERM and SIGHUP end this process as Ctrl-C does, through `finally` blocks: a stack it
    started is stopped."""

    def handler(signum, _frame):
        signal.signal(signum, signal.SIG_IGN)  # a second one must not cut the (bounded) clean-up short
        sys.exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)
