"""Training jobs (v2) that really run: inputs and code from OBS, the boot file as a local process.

Life of a job: Creating -> Pending/Queuing (until one of `max_running` slots is free) ->
Running (download code and inputs, run the boot file, upload outputs) -> Completed, or Failed
(exit code and log tail in status.task_statuses), or Terminating -> Terminated on terminate.
Each job runs in its own process group so terminate and stop reach every child.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
import uuid
from datetime import datetime
from pathlib import Path

from . import checks
from .algorithms import Algorithms, engine_record, now_ms, parameter_records
from .errors import bad_request, duplicate_job, job_not_found
from .obs import LocalObs, parse_obs_url
from .state import State

log = logging.getLogger(__name__)

TASK = "worker-0"
TERMINAL = {"Completed", "Failed", "Terminated", "Abnormal"}
KILL_GRACE_S = 5.0
LOG_PREVIEW_BYTES = 5 * 1024 * 1024
LOG_TAIL_LINES = 20


def _io_entries(entries, where: str, kind: str) -> list[dict]:
    records = []
    for i, item in enumerate(checks.array(entries, where)):
        item = checks.obj(item, f"{where}[{i}]")
        name = checks.string(item, "name", f"{where}[{i}]")
        remote = checks.obj(item.get("remote"), f"{where}[{i}].remote")
        obs = checks.obj(remote.get("obs"), f"{where}[{i}].remote.obs")
        url = checks.string(obs, "obs_url", f"{where}[{i}].remote.obs")
        try:
            parse_obs_url(url)
        except ValueError as exc:
            raise bad_request(f"{where}[{i}].remote.obs.obs_url: {exc}") from None
        records.append({
            "name": name, "local_dir": f"/home/ma-user/modelarts/{kind}/{name}_0", "remote": {"obs": {"obs_url": url}},
        })
    return records


def _flavor(flavor_id: str, node_count: int) -> dict:
    return {
        "policy": "regular", "flavor_id": flavor_id, "flavor_name": f"Local CPU ({os.cpu_count()} cores)",
        "node_count": node_count,
        "flavor_detail": {
            "flavor_type": "CPU", "billing": {"code": flavor_id, "unit_num": 1},
            "flavor_info": {
                "cpu": {"arch": "x86", "core_num": os.cpu_count()}, "gpu": {"unit_num": 0, "product_name": "", "memory": "0GB"},
                "memory": {"size": 8, "unit": "GB"},
            },
        },
    }


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_bytes()[-64 * 1024:].decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


class Trainer:
    def __init__(self, state: State, algorithms: Algorithms, obs: LocalObs, work_dir: Path, max_running: int) -> None:
        self.state = state
        self.algorithms = algorithms
        self.obs = obs
        self.work_dir = work_dir
        self.max_running = max_running
        self._queue: list[str] = []
        self._running: dict[str, asyncio.Task] = {}
        self._processes: dict[str, asyncio.subprocess.Process] = {}
        self._terminating: set[str] = set()

    # -- records -----------------------------------------------------------------------------

    def get(self, job_id: str) -> dict:
        job = self.state.jobs.get(job_id)
        if job is None:
            raise job_not_found(job_id)
        return job

    def _set_phase(self, job: dict, phase: str, secondary: str | None = None) -> None:
        job["status"]["phase"] = phase
        job["status"]["secondary_phase"] = secondary or phase
        if phase in TERMINAL and job["status"]["start_time"]:
            job["status"]["duration"] = now_ms() - job["status"]["start_time"]
            job["status"]["running_records"] = [{
                "start_at": job["status"]["start_time"] // 1000, "end_at": now_ms() // 1000,
                "start_type": "init_or_rescheduled", "end_reason": phase.lower(), "end_related_task": TASK,
                "end_recover": "", "end_recover_before_downgrade": "",
            }]
        self.state.save()

    def create(self, body: dict) -> dict:
        kind = body.get("kind", "job")
        if kind != "job":
            raise bad_request(f"kind {kind!r} is not supported here (only \"job\")")
        metadata = checks.obj(body.get("metadata"), "metadata")
        name = checks.string(metadata, "name", "metadata", pattern=checks.NAME_RE)
        if any(j["metadata"]["name"] == name for j in self.state.jobs.values()):
            raise duplicate_job(name)
        spec_in = checks.obj(body.get("spec"), "spec", required=False)
        resource = checks.obj(spec_in.get("resource"), "spec.resource", required=False)
        node_count = checks.integer(resource, "node_count", "spec.resource", 1, 1, 1)
        flavor_id = checks.string(resource, "flavor_id", "spec.resource", required=False) or "modelarts.vm.cpu.8u"
        algorithm_in = checks.obj(body.get("algorithm"), "algorithm")
        algorithm = self._algorithm(algorithm_in)
        job_id = str(uuid.uuid4())
        job = {
            "kind": "job",
            "metadata": {
                "id": job_id, "name": name, "description": metadata.get("description", ""), "create_time": now_ms(),
                "workspace_id": metadata.get("workspace_id", "0"), "user_name": "",
            },
            "status": {
                "phase": "Creating", "secondary_phase": "Creating", "duration": 0, "start_time": 0,
                "node_count_metrics": None, "tasks": [TASK], "task_statuses": [], "running_records": [],
            },
            "algorithm": algorithm,
            "spec": {
                "resource": dict(_flavor(flavor_id, node_count), **({"pool_id": resource["pool_id"]} if resource.get("pool_id") else {})),
                "log_export_path": checks.obj(spec_in.get("log_export_path"), "spec.log_export_path", required=False),
            },
            "_dir": str(self.work_dir / "jobs" / job_id),
        }
        self.state.jobs[job_id] = job
        self.state.save()
        self._enqueue(job_id)
        return job

    def _algorithm(self, given: dict) -> dict:
        """The job's algorithm: a stored one by id (its parameters as defaults) or one given inline."""
        parameters = parameter_records(given.get("parameters"), "algorithm.parameters")
        inputs = _io_entries(given.get("inputs"), "algorithm.inputs", "inputs")
        outputs = _io_entries(given.get("outputs"), "algorithm.outputs", "outputs")
        if given.get("id"):
            stored = self.algorithms.get(checks.string(given, "id", "algorithm"))
            config = stored["job_config"]
            overrides = {p["name"] for p in parameters}
            parameters = [p for p in config["parameters"] if p["name"] not in overrides] + parameters
            record = {"id": stored["metadata"]["id"], "name": stored["metadata"]["name"],
                      "code_dir": config["code_dir"], "boot_file": config["boot_file"], "command": config["command"],
                      "engine": config["engine"]}
        else:
            command = checks.string(given, "command", "algorithm", required=False) or ""
            code_dir = checks.string(given, "code_dir", "algorithm", required=not command) or ""
            boot_file = checks.string(given, "boot_file", "algorithm", required=not command) or ""
            if boot_file and not boot_file.startswith(code_dir.rstrip("/") + "/"):
                raise bad_request(f"algorithm.boot_file {boot_file} is not inside algorithm.code_dir {code_dir}")
            record = {"code_dir": code_dir, "boot_file": boot_file, "command": command,
                      "engine": engine_record(given.get("engine"), "algorithm.engine")}
        record.update({
            "parameters": parameters, "inputs": inputs, "outputs": outputs,
            "policies": given.get("policies") or {},
            "environments": checks.obj(given.get("environments"), "algorithm.environments", required=False),
        })
        return record

    # -- scheduling ------------------------------------------------------------------------------

    def _enqueue(self, job_id: str) -> None:
        self._set_phase(self.state.jobs[job_id], "Pending", "Queuing")
        self._queue.append(job_id)
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue and len(self._running) < self.max_running:
            job_id = self._queue.pop(0)
            self._running[job_id] = asyncio.get_running_loop().create_task(self._run(job_id), name=f"job-{job_id}")

    def resume(self) -> None:
        """After a restart from a state folder: queue waiting jobs again; running ones were lost."""
        for job_id, job in self.state.jobs.items():
            if job["status"]["phase"] in ("Creating", "Pending"):
                self._enqueue(job_id)
            elif job["status"]["phase"] in ("Running", "Terminating"):
                job["status"]["task_statuses"] = [
                    {"task": TASK, "exit_code": -1, "message": "the local cloud stopped while the job was running"}
                ]
                self._set_phase(job, "Abnormal", "Lost")

    # -- running -----------------------------------------------------------------------------------

    async def _run(self, job_id: str) -> None:
        job = self.state.jobs[job_id]
        folder = Path(job["_dir"])
        log_path = folder / "logs" / f"{TASK}.log"
        try:
            job["status"]["start_time"] = now_ms()
            self._set_phase(job, "Running")
            exit_code, message = await self._execute(job, folder, log_path)
            if job_id in self._terminating:
                job["status"]["task_statuses"] = [{"task": TASK, "exit_code": exit_code, "message": "terminated by the user"}]
                self._set_phase(job, "Terminated")
            elif exit_code == 0:
                job["status"]["task_statuses"] = [{"task": TASK, "exit_code": 0, "message": ""}]
                self._set_phase(job, "Completed")
            else:
                job["status"]["task_statuses"] = [{"task": TASK, "exit_code": exit_code, "message": message}]
                self._set_phase(job, "Failed")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of ours must not leave the job Running forever
            log.exception("training job %s", job_id)
            job["status"]["task_statuses"] = [{"task": TASK, "exit_code": -1, "message": f"internal error: {exc}"}]
            self._set_phase(job, "Abnormal", "Unknown")
        finally:
            self._running.pop(job_id, None)
            self._terminating.discard(job_id)
            if self.state.jobs.get(job_id) is not job:  # deleted meanwhile
                shutil.rmtree(folder, ignore_errors=True)
            self._dispatch()

    async def _execute(self, job: dict, folder: Path, log_path: Path) -> tuple[int, str]:
        """Prepare, run, upload; return (exit code, failure message)."""
        algorithm = job["algorithm"]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        job_dir = folder / "user-job-dir"
        code_local = job_dir / (algorithm["code_dir"].rstrip("/").rsplit("/", 1)[-1] or "code")
        with open(log_path, "a", encoding="utf-8") as logf:
            def service_log(text: str) -> None:
                logf.write(f"[ModelArts Service Log][INFO][{datetime.now():%Y/%m/%d %H:%M:%S}]: {text}\n")
                logf.flush()

            args: list[str] = []
            try:
                if algorithm["code_dir"]:
                    count = await asyncio.to_thread(self.obs.download, algorithm["code_dir"], code_local)
                    service_log(f"downloaded {count} code file(s) from {algorithm['code_dir']}")
                for kind, entries in (("inputs", algorithm["inputs"]), ("outputs", algorithm["outputs"])):
                    for entry in entries:
                        local = folder / kind / f"{entry['name']}_0"
                        local.mkdir(parents=True, exist_ok=True)
                        if kind == "inputs":
                            count = await asyncio.to_thread(self.obs.download, entry["remote"]["obs"]["obs_url"], local)
                            service_log(f"downloaded {count} file(s) of input {entry['name']} to {local}")
                        args.append(f"--{entry['name']}={local}")
            except Exception as exc:  # boto errors, missing buckets: the job fails like on ModelArts
                service_log(f"download failed: {exc}")
                return 1, f"download from OBS failed: {exc}"
            args += [f"--{p['name']}={p['value']}" for p in algorithm["parameters"]]
            if algorithm["command"]:
                argv = ["/bin/sh", "-c", algorithm["command"]]
            else:
                boot_relative = algorithm["boot_file"][len(algorithm["code_dir"].rstrip("/")) + 1:]
                argv = [sys.executable, str(code_local / boot_relative), *args]
            env = dict(os.environ, **{k: str(v) for k, v in algorithm["environments"].items()})
            env.update({
                "MA_JOB_DIR": str(job_dir), "MA_NUM_GPUS": "0", "MA_NUM_HOSTS": "1", "VC_TASK_INDEX": "0",
                "VC_WORKER_NUM": "1", "MA_CURRENT_HOST_IP": "127.0.0.1", "PYTHONUNBUFFERED": "1",
            })
            service_log("running: " + " ".join(argv[:2] + args))
            job_id = job["metadata"]["id"]
            if job_id in self._terminating:
                return -signal.SIGTERM, "terminated"
            process = await asyncio.create_subprocess_exec(
                *argv, cwd=str(code_local if code_local.is_dir() else folder), env=env,
                stdin=asyncio.subprocess.DEVNULL, stdout=logf, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
            self._processes[job_id] = process
            try:
                exit_code = await process.wait()
            finally:
                self._processes.pop(job_id, None)
            service_log(f"exit with {exit_code}")
            if exit_code != 0 or job_id in self._terminating:
                return exit_code, f"exit with {exit_code}; log tail:\n{_tail(log_path)}"
            try:
                for entry in algorithm["outputs"]:
                    local = folder / "outputs" / f"{entry['name']}_0"
                    count = await asyncio.to_thread(self.obs.upload, local, entry["remote"]["obs"]["obs_url"])
                    service_log(f"uploaded {count} file(s) of output {entry['name']} to {entry['remote']['obs']['obs_url']}")
            except Exception as exc:
                service_log(f"upload failed: {exc}")
                return 1, f"upload to OBS failed: {exc}"
        return 0, ""

    # -- actions -----------------------------------------------------------------------------------

    def terminate(self, job_id: str) -> dict:
        job = self.get(job_id)
        phase = job["status"]["phase"]
        if phase in TERMINAL or phase == "Terminating":
            return job
        if job_id in self._queue:
            self._queue.remove(job_id)
            self._set_phase(job, "Terminated")
            return job
        self._terminating.add(job_id)
        self._set_phase(job, "Terminating")
        asyncio.get_running_loop().create_task(self._kill(job_id))
        return job

    async def _kill(self, job_id: str) -> None:
        process = self._processes.get(job_id)
        if process is None:
            return  # still downloading: _execute sees the flag before starting the process
        _signal_group(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), KILL_GRACE_S)
        except asyncio.TimeoutError:
            _signal_group(process.pid, signal.SIGKILL)
        # children that ignored SIGTERM outlive the leader: clean up the whole group
        _signal_group(process.pid, signal.SIGKILL)

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        if job_id in self._queue:
            self._queue.remove(job_id)
        del self.state.jobs[job_id]
        self.state.save()
        if job_id in self._running:
            self._terminating.add(job_id)
            asyncio.get_running_loop().create_task(self._kill(job_id))
        else:
            shutil.rmtree(job["_dir"], ignore_errors=True)

    def log_preview(self, job_id: str, task: str) -> dict:
        job = self.get(job_id)
        if task not in job["status"]["tasks"]:
            raise bad_request(f"task {task} is not a task of training job {job_id} (tasks: {job['status']['tasks']})")
        path = Path(job["_dir"]) / "logs" / f"{task}.log"
        try:
            with open(path, "rb") as f:
                full_size = f.seek(0, os.SEEK_END)
                f.seek(max(0, full_size - LOG_PREVIEW_BYTES))
                content = f.read()
        except FileNotFoundError:
            full_size, content = 0, b""
        return {"content": content.decode("utf-8", "replace"), "current_size": len(content), "full_size": full_size}

    def list(self, body: dict) -> dict:
        offset = checks.integer(body, "offset", "body", 0, 0, 10**9)
        limit = checks.integer(body, "limit", "body", 10, 1, 50)
        order = body.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise bad_request(f"order must be asc or desc, not {order!r}")
        items = list(self.state.jobs.values())
        for i, f in enumerate(checks.array(body.get("filters"), "filters")):
            f = checks.obj(f, f"filters[{i}]")
            values = [v for v in checks.array(f.get("value"), f"filters[{i}].value") if v != ""]
            if not values:
                continue
            key = f.get("key")
            if key == "name":
                items = [j for j in items if any(v.lower() in j["metadata"]["name"].lower() for v in values)]
            elif key == "phase":
                items = [j for j in items if j["status"]["phase"] in values]
            elif key == "algorithm_name":
                items = [j for j in items if any(v in j["algorithm"].get("name", "") for v in values)]
        items.sort(key=lambda j: j["metadata"]["create_time"], reverse=order == "desc")
        page = items[offset:offset + limit]
        return {
            "total": len(items), "count": len(page), "limit": limit, "offset": offset, "sort_by": "create_time",
            "order": order, "group_by": "", "workspace_id": "0", "ai_project": "default-ai-project", "items": page,
        }

    async def shutdown(self) -> None:
        """Kill every job process group and wait for the runner tasks."""
        self._queue.clear()
        for process in list(self._processes.values()):
            _signal_group(process.pid, signal.SIGKILL)
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for process in list(self._processes.values()):
            await process.wait()


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass

