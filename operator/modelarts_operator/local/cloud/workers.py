"""The worker processes of one running training job: `node_count` boot-file processes, as ModelArts runs
one container per worker.

Each worker downloads code and inputs into its own folder `<job>/worker-<i>/` (as a container does),
writes its own outputs there and its own log `<job>/logs/worker-<i>.log`, runs in its own process
group, and gets the environment of a ModelArts distributed job (MA_NUM_HOSTS, VC_WORKER_NUM,
VC_TASK_INDEX, VC_WORKER_HOSTS, ...). All workers share 127.0.0.1, so where ModelArts lists host names
VC_WORKER_HOSTS lists `127.0.0.1:<port>`, one free loopback port per worker.

The first worker to fail stops the others; outputs are uploaded (merged) only when every worker exited 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from .obs import LocalObs

KILL_GRACE_S = 5.0
LOG_TAIL_LINES = 20
LOOPBACK = "127.0.0.1"


def task_names(node_count: int) -> list[str]:
    return [f"worker-{i}" for i in range(node_count)]


def free_loopback_ports(count: int) -> list[int]:
    """`count` distinct ports free now: every socket stays bound until all are chosen."""
    with ExitStack() as sockets:
        ports = []
        for _ in range(count):
            sock = sockets.enter_context(socket.socket())
            sock.bind((LOOPBACK, 0))
            ports.append(sock.getsockname()[1])
        return ports


def signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def exit_message(exit_code: int) -> str:
    if exit_code >= 0:
        return f"exit with {exit_code}"
    try:
        name = signal.Signals(-exit_code).name
    except ValueError:
        name = "unknown"
    return f"exit with {exit_code} (killed by signal {-exit_code}, {name})"


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_bytes()[-64 * 1024:].decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


@dataclass
class Worker:
    index: int
    folder: Path  # user-job-dir/, inputs/, outputs/ of this worker alone
    log_path: Path
    log: IO[str] | None = None
    process: asyncio.subprocess.Process | None = None
    exit_code: int | None = None  # None until it ended
    message: str = ""
    stop_reason: str = ""  # why we stopped it, when we did: it stands for its message

    @property
    def task(self) -> str:
        return f"worker-{self.index}"

    def service_log(self, text: str) -> None:
        self.log.write(f"[ModelArts Service Log][INFO][{datetime.now():%Y/%m/%d %H:%M:%S}]: {text}\n")
        self.log.flush()

    def fail(self, exit_code: int, message: str) -> None:
        self.exit_code, self.message = exit_code, message

    def status(self) -> dict:
        """This worker's entry of status.task_statuses, once it ended."""
        return {"task": self.task, "exit_code": self.exit_code, "message": self.stop_reason or self.message}


class WorkerGroup:
    """The workers of one job, from download to upload: `run()` once; `terminate()` from the same loop.

    `on_end` is called each time a worker ended, so that status.task_statuses follows the run."""

    def __init__(self, job: dict, folder: Path, obs: LocalObs, on_end: Callable[[], None],
                 terminated: bool = False) -> None:
        self.algorithm = job["algorithm"]
        self.obs = obs
        self.on_end = on_end
        self.workers = [
            Worker(i, folder / task, folder / "logs" / f"{task}.log")
            for i, task in enumerate(task_names(job["spec"]["resource"]["node_count"]))
        ]
        self.failed: Worker | None = None  # the worker whose failure ends the job
        self.terminated = terminated

    # -- what the trainer reads -------------------------------------------------------------------

    def task_statuses(self) -> list[dict]:
        """One entry per worker that ended, in index order."""
        return [w.status() for w in self.workers if w.exit_code is not None]

    def pids(self) -> dict[str, int]:
        """The workers' processes not reaped yet (each one's pid is also its process group id)."""
        return {w.task: w.process.pid for w in self.workers if w.process and w.process.returncode is None}

    # -- the run ------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Download, start every worker, wait for all (the first failure stops the rest), upload."""
        with ExitStack() as logs:
            for worker in self.workers:
                worker.log_path.parent.mkdir(parents=True, exist_ok=True)
                worker.log = logs.enter_context(open(worker.log_path, "a", encoding="utf-8"))
            try:
                await self._run()
            finally:
                self._end_unstarted()

    async def _run(self) -> None:
        if self.terminated:  # terminated before it ran: nothing to download
            return
        argvs = await asyncio.gather(*(self._prepare(w) for w in self.workers))
        self.failed = next((w for w in self.workers if w.exit_code), None)  # a download failed
        if self.failed or self.terminated:
            return
        hosts = ",".join(f"{LOOPBACK}:{port}" for port in free_loopback_ports(len(self.workers)))
        for worker, argv in zip(self.workers, argvs):
            if self.terminated:
                break
            await self._start(worker, argv, hosts)
        if self.terminated:  # terminate came while the processes were starting
            await self._stop(self.workers, "terminated by the user")
        await self._supervise()
        if not self.failed and not self.terminated:
            await self._upload()

    async def _prepare(self, worker: Worker) -> list[str] | None:
        """Download this worker's code and inputs; its command line, or None when a download failed."""
        algorithm = self.algorithm
        code_local = self._code_folder(worker)
        args: list[str] = []
        try:
            if algorithm["code_dir"]:
                count = await asyncio.to_thread(self.obs.download, algorithm["code_dir"], code_local)
                worker.service_log(f"downloaded {count} code file(s) from {algorithm['code_dir']}")
            for kind in ("inputs", "outputs"):
                for entry in algorithm[kind]:
                    local = worker.folder / kind / f"{entry['name']}_0"
                    local.mkdir(parents=True, exist_ok=True)
                    if kind == "inputs":
                        url = entry["remote"]["obs"]["obs_url"]
                        count = await asyncio.to_thread(self.obs.download, url, local)
                        worker.service_log(f"downloaded {count} file(s) of input {entry['name']} to {local}")
                    args.append(f"--{entry['name']}={local}")
        except Exception as exc:  # boto errors, missing buckets: the job fails like on ModelArts
            worker.service_log(f"download failed: {exc}")
            worker.exit_code, worker.message = 1, f"download from OBS failed: {exc}"
            return None
        args += [f"--{p['name']}={p['value']}" for p in algorithm["parameters"]]
        if algorithm["command"]:
            return ["/bin/sh", "-c", algorithm["command"]]
        boot_relative = algorithm["boot_file"][len(algorithm["code_dir"].rstrip("/")) + 1:]
        return [sys.executable, str(code_local / boot_relative), *args]

    def _code_folder(self, worker: Worker) -> Path:
        code_folder = self.algorithm["code_dir"].rstrip("/").rsplit("/", 1)[-1] or "code"
        return worker.folder / "user-job-dir" / code_folder

    def _environment(self, worker: Worker, hosts: str) -> dict[str, str]:
        count = str(len(self.workers))
        env = dict(os.environ, **{k: str(v) for k, v in self.algorithm["environments"].items()})
        env.update({
            "MA_JOB_DIR": str(worker.folder / "user-job-dir"), "MA_NUM_GPUS": "0", "MA_NUM_HOSTS": count,
            "MA_TASK_NAME": "worker", "MA_CURRENT_IP": LOOPBACK, "MA_CURRENT_HOST_IP": LOOPBACK,
            "VC_TASK_INDEX": str(worker.index), "VC_WORKER_NUM": count, "VC_WORKER_HOSTS": hosts,
            "PYTHONUNBUFFERED": "1",
        })
        return env

    async def _start(self, worker: Worker, argv: list[str], hosts: str) -> None:
        code_local = self._code_folder(worker)
        worker.service_log("running: " + " ".join(argv))
        worker.process = await asyncio.create_subprocess_exec(
            *argv, cwd=str(code_local if code_local.is_dir() else worker.folder),
            env=self._environment(worker, hosts),
            stdin=asyncio.subprocess.DEVNULL, stdout=worker.log, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )

    async def _supervise(self) -> None:
        """Wait for every started worker; the first one to fail stops the others."""
        started = [w for w in self.workers if w.process]
        waits = {asyncio.ensure_future(w.process.wait()): w for w in started}
        stoppers: list[asyncio.Task] = []
        pending = set(waits)
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for worker in sorted((waits[d] for d in done), key=lambda w: w.index):
                    self._ended(worker)
                    if worker.exit_code != 0 and not self.failed and not self.terminated:
                        self.failed = worker
                        others = [w for w in started if w is not worker]
                        reason = f"stopped because {worker.task} failed"
                        stoppers.append(asyncio.create_task(self._stop(others, reason)))
                    self.on_end()
            await asyncio.gather(*stoppers)
        finally:
            for wait in waits:
                wait.cancel()

    def _ended(self, worker: Worker) -> None:
        # The container ends with its main process: children the boot file left behind go too.
        signal_group(worker.process.pid, signal.SIGKILL)
        worker.exit_code = worker.process.returncode
        worker.service_log(exit_message(worker.exit_code))
        if worker.exit_code != 0:
            worker.message = f"{exit_message(worker.exit_code)}; log tail:\n{tail(worker.log_path)}"

    def _end_unstarted(self) -> None:
        """Workers that never started (a download failed, or terminate came first) end as stopped."""
        if self.terminated:
            reason = "terminated by the user"
        else:
            reason = f"stopped because {self.failed.task} failed" if self.failed else "stopped"
        for worker in self.workers:
            if worker.exit_code is None and worker.process is None:
                worker.exit_code, worker.stop_reason = -signal.SIGTERM, reason

    async def _upload(self) -> None:
        # Highest index first: where two workers wrote the same name, worker-0's (the chief's) file wins.
        for worker in reversed(self.workers):
            try:
                for entry in self.algorithm["outputs"]:
                    local = worker.folder / "outputs" / f"{entry['name']}_0"
                    url = entry["remote"]["obs"]["obs_url"]
                    count = await asyncio.to_thread(self.obs.upload, local, url)
                    worker.service_log(f"uploaded {count} file(s) of output {entry['name']} to {url}")
            except Exception as exc:
                worker.service_log(f"upload failed: {exc}")
                worker.exit_code, worker.message = 1, f"upload to OBS failed: {exc}"
                self.failed = worker
                return

    # -- stopping -----------------------------------------------------------------------------------

    async def terminate(self) -> None:
        """The user's terminate: no worker starts any more, the running ones are stopped."""
        self.terminated = True
        await self._stop(self.workers, "terminated by the user")

    async def _stop(self, workers: list[Worker], reason: str) -> None:
        """SIGTERM each running worker's process group, SIGKILL after KILL_GRACE_S."""
        running = [w for w in workers if w.process and w.process.returncode is None]
        for worker in running:
            worker.stop_reason = reason
            signal_group(worker.process.pid, signal.SIGTERM)
        if running:
            waits = [asyncio.ensure_future(w.process.wait()) for w in running]
            await asyncio.wait(waits, timeout=KILL_GRACE_S)
            for wait in waits:
                wait.cancel()
        for worker in running:  # children that ignored SIGTERM outlive the leader: the whole group goes
            signal_group(worker.process.pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL every worker's group at once (the local cloud is stopping)."""
        self.terminated = True
        for worker in self.workers:
            if worker.process:
                signal_group(worker.process.pid, signal.SIGKILL)

    async def reap(self) -> None:
        for worker in self.workers:
            if worker.process:
                await worker.process.wait()
