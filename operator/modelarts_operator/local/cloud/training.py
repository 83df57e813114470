"""Training jobs (v2) that really run: inputs and code from OBS, the boot file as local processes.

Life of a job: Creating -> Pending/Queuing (until one of `max_running` slots is free) ->
Running (each of its `node_count` workers downloads code and inputs and runs the boot file; outputs
are uploaded once all exited 0: workers.py) -> Completed, or Failed (the failing worker's exit code and
log tail in status.task_statuses), or Terminating -> Terminated on terminate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import uuid
from pathlib import Path

from . import checks
from .algorithms import Algorithms, engine_record, now_ms, parameter_records
from .errors import bad_request, duplicate_job, job_not_found
from .obs import LocalObs, parse_obs_url
from .state import State
from .workers import WorkerGroup, task_names

log = logging.getLogger(__name__)

TERMINAL = {"Completed", "Failed", "Terminated", "Abnormal"}
LOG_PREVIEW_BYTES = 5 * 1024 * 1024
MAX_NODES = 4  # workers a job may ask for by default: each is a process on this machine


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


class Trainer:
    def __init__(self, state: State, algorithms: Algorithms, obs: LocalObs, work_dir: Path, max_running: int,
                 max_nodes: int = MAX_NODES) -> None:
        self.state = state
        self.algorithms = algorithms
        self.obs = obs
        self.work_dir = work_dir
        self.max_running = max_running
        self.max_nodes = max_nodes
        self._queue: list[str] = []
        self._running: dict[str, asyncio.Task] = {}
        self._groups: dict[str, WorkerGroup] = {}
        self._terminating: set[str] = set()

    # -- records -----------------------------------------------------------------------------

    def get(self, job_id: str) -> dict:
        job = self.state.jobs.get(job_id)
        if job is None:
            raise job_not_found(job_id)
        return job

    def _set_phase(self, job: dict, phase: str, secondary: str | None = None, ended_by: str = "") -> None:
        """`ended_by`: the task whose end ended the run (the failing worker), for running_records."""
        job["status"]["phase"] = phase
        job["status"]["secondary_phase"] = secondary or phase
        if phase in TERMINAL and job["status"]["start_time"]:
            job["status"]["duration"] = now_ms() - job["status"]["start_time"]
            job["status"]["running_records"] = [{
                "start_at": job["status"]["start_time"] // 1000, "end_at": now_ms() // 1000,
                "start_type": "init_or_rescheduled", "end_reason": phase.lower(), "end_related_task": ended_by,
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
        node_count = self._node_count(resource)
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
                "node_count_metrics": None, "tasks": task_names(node_count), "task_statuses": [],
                "running_records": [],
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

    def _node_count(self, resource: dict) -> int:
        value = resource.get("node_count", 1)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= self.max_nodes:
            raise bad_request(
                f"spec.resource.node_count must be an integer from 1 to {self.max_nodes}, not {value!r}: this local "
                f"cloud runs at most {self.max_nodes} workers a job (start it with `modelarts-operator local cloud "
                f"--max-nodes N` for more)")
        return value

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
                    {"task": task, "exit_code": -1, "message": "the local cloud stopped while it was running"}
                    for task in job["status"]["tasks"]
                ]
                self._set_phase(job, "Abnormal", "Lost")

    # -- running -----------------------------------------------------------------------------------

    async def _run(self, job_id: str) -> None:
        job = self.state.jobs[job_id]
        folder = Path(job["_dir"])

        def publish_statuses() -> None:
            job["status"]["task_statuses"] = group.task_statuses()
            self.state.save()

        group = WorkerGroup(job, folder, self.obs, on_end=publish_statuses,
                            terminated=job_id in self._terminating)
        self._groups[job_id] = group
        try:
            job["status"]["start_time"] = now_ms()
            if not group.terminated:
                self._set_phase(job, "Running")
            await group.run()
            job["status"]["task_statuses"] = group.task_statuses()
            if group.terminated:
                self._set_phase(job, "Terminated")
            elif group.failed:
                self._set_phase(job, "Failed", ended_by=group.failed.task)
            else:
                self._set_phase(job, "Completed")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of ours must not leave the job Running forever
            log.exception("training job %s", job_id)
            group.kill()
            job["status"]["task_statuses"] = [
                {"task": task, "exit_code": -1, "message": f"internal error: {exc}"}
                for task in job["status"]["tasks"]
            ]
            self._set_phase(job, "Abnormal", "Unknown")
        finally:
            self._groups.pop(job_id, None)
            self._running.pop(job_id, None)
            self._terminating.discard(job_id)
            if self.state.jobs.get(job_id) is not job:  # deleted meanwhile
                shutil.rmtree(folder, ignore_errors=True)
            self._dispatch()

    def worker_pids(self, job_id: str) -> dict[str, int]:
        """Test hook: the pids (= process group ids) of a running job's worker processes, by task."""
        group = self._groups.get(job_id)
        return group.pids() if group else {}

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
        self._stop_workers(job_id)
        return job

    def _stop_workers(self, job_id: str) -> None:
        group = self._groups.get(job_id)
        if group is not None:  # none yet: the run sees _terminating before it starts a worker
            asyncio.get_running_loop().create_task(group.terminate())

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        if job_id in self._queue:
            self._queue.remove(job_id)
        del self.state.jobs[job_id]
        self.state.save()
        if job_id in self._running:
            self._terminating.add(job_id)
            self._stop_workers(job_id)
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
        """Kill every worker's process group and wait for the runner tasks."""
        self._queue.clear()
        groups = list(self._groups.values())
        for group in groups:
            group.kill()
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for group in groups:
            await group.reap()

