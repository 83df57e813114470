"""Real-time services (v1): one runtime process per model version, requests proxied by weight.

A runtime is `python -m modelarts_operator.cli local serve-model --model-dir D --port 0`, in its own
process group; it prints `READY <url>` once the model is loaded. Status: deploying -> running, or
failed with `error_msg` (the runtime's output tail); stopping -> stopped; an exit while running
makes the service failed. A `schedule` entry {type: stop, duration, time_unit} stops the service
that long after it starts running (time_unit DAYS, HOURS, MINUTES, and SECONDS as a local extension).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
import re
import signal
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from . import checks
from .algorithms import now_ms
from .errors import (
    backend_failed,
    bad_request,
    duplicate_service,
    model_failed,
    model_not_ready,
    service_not_found,
    service_unavailable,
)
from .models import Models
from .state import State

log = logging.getLogger(__name__)

SERVICE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TIME_UNITS = {"DAYS": 86400, "HOURS": 3600, "MINUTES": 60, "SECONDS": 1}
READY_TIMEOUT_S = 300.0
STOP_GRACE_S = 5.0
PREDICT_TIMEOUT_S = 40.0
# Shorter than the runtime's idle timeout (15 s), so a pooled connection is never reused as the runtime closes it.
PREDICT_KEEPALIVE_S = 5.0
OUTPUT_TAIL_LINES = 30
LIST_KEYS = (
    "service_id", "service_name", "description", "tenant", "project", "owner", "publish_at", "update_time",
    "infer_type", "status", "progress", "error_msg", "access_address", "workspace_id", "is_shared",
    "invocation_times", "failed_times", "shared_count", "transition_at",
)


@dataclass
class Runtime:
    model_id: str
    weight: int
    process: asyncio.subprocess.Process
    output: collections.deque = field(default_factory=lambda: collections.deque(maxlen=OUTPUT_TAIL_LINES))
    url: str = ""


class Services:
    def __init__(self, state: State, models: Models, work_dir: Path, project_id: str) -> None:
        self.state = state
        self.models = models
        self.work_dir = work_dir
        self.project_id = project_id
        self.endpoint = ""  # set once the API listens: access addresses point at it
        self._runtimes: dict[str, list[Runtime]] = {}
        self._tasks: dict[str, asyncio.Task] = {}  # deploy, then the watch/auto-stop of a running service
        self._http: aiohttp.ClientSession | None = None

    def get(self, service_id: str) -> dict:
        service = self.state.services.get(service_id)
        if service is None:
            raise service_not_found(service_id)
        return service

    def show(self, service_id: str) -> dict:
        service = self.get(service_id)
        service["access_address"] = f"{self.endpoint}/v1/infers/{service_id}"
        return service

    def uses_model(self, model_id: str) -> bool:
        return any(c["model_id"] == model_id for s in self.state.services.values() for c in s["config"])

    # -- requests ---------------------------------------------------------------------------------

    def _config(self, entries) -> list[dict]:
        entries = checks.array(entries, "config")
        if not entries:
            raise bad_request("config must hold at least one model")
        records = []
        for i, item in enumerate(entries):
            where = f"config[{i}]"
            item = checks.obj(item, where)
            model_id = checks.string(item, "model_id", where)
            model = self.models.get(model_id)
            if model["model_status"] == "failed":
                raise model_failed(model_id)
            if model["model_status"] != "published":
                raise model_not_ready(model_id)
            records.append({
                "model_id": model_id, "model_name": model["model_name"], "model_version": model["model_version"],
                "specification": checks.string(item, "specification", where),
                "custom_spec": checks.obj(item.get("custom_spec"), f"{where}.custom_spec", required=False),
                "status": "deploying", "weight": checks.integer(item, "weight", where, 100, 0, 100),
                "instance_count": checks.integer(item, "instance_count", where, 1, 1, 128), "scaling": False,
                "envs": checks.obj(item.get("envs"), f"{where}.envs", required=False),
                "additional_properties": {}, "support_debug": False,
            })
        if sum(r["weight"] for r in records) != 100:
            raise bad_request("the weights of config entries must add up to 100")
        return records

    @staticmethod
    def _schedule(entries) -> list[dict]:
        records = []
        for i, item in enumerate(checks.array(entries, "schedule")):
            where = f"schedule[{i}]"
            item = checks.obj(item, where)
            if item.get("type") != "stop":
                raise bad_request(f"{where}.type must be \"stop\"")
            unit = checks.string(item, "time_unit", where)
            if unit not in TIME_UNITS:
                raise bad_request(f"{where}.time_unit must be one of {', '.join(TIME_UNITS)}")
            records.append({"type": "stop", "time_unit": unit, "duration": checks.integer(item, "duration", where, 1, 1, 10**6)})
        return records

    def create(self, body: dict) -> dict:
        name = checks.string(body, "service_name", "body", pattern=SERVICE_NAME_RE)
        infer_type = checks.string(body, "infer_type", "body")
        if infer_type not in ("real-time", "batch", "edge"):
            raise bad_request(f"body.infer_type must be real-time or batch, not {infer_type!r}")
        config = self._config(body.get("config"))
        if infer_type != "real-time":
            raise bad_request(f"infer_type {infer_type} is not supported by the local cloud (only real-time)")
        schedule = self._schedule(body.get("schedule"))
        if any(s["service_name"] == name for s in self.state.services.values()):
            raise duplicate_service(name)
        service_id = str(uuid.uuid4())
        now = now_ms()
        service = {
            "service_id": service_id, "service_name": name, "description": body.get("description", ""),
            "tenant": self.project_id, "project": self.project_id, "owner": self.project_id,
            "publish_at": now, "update_time": now, "operation_time": now, "transition_at": now,
            "infer_type": infer_type, "status": "deploying", "progress": 0, "error_msg": "",
            "access_address": "", "cluster_id": body.get("cluster_id", ""),
            "workspace_id": body.get("workspace_id", "0"), "additional_properties": {}, "is_shared": False,
            "invocation_times": 0, "failed_times": 0, "shared_count": 0, "config": config, "schedule": schedule,
            "is_free": False,
        }
        self.state.services[service_id] = service
        self.state.save()
        self.deploy(service_id)
        return {"service_id": service_id, "resource_ids": [f"INF-{service_id[:16]}@{now}"]}

    def update(self, service_id: str, body: dict) -> None:
        service = self.get(service_id)
        if "description" in body:
            service["description"] = str(body["description"])
        if "schedule" in body:
            service["schedule"] = self._schedule(body["schedule"])
        status = body.get("status")
        if status is not None:  # status wins over config when both are given (as documented)
            if status not in ("running", "stopped"):
                raise bad_request(f"body.status must be running or stopped, not {status!r}")
            if status == "stopped" and service["status"] not in ("stopped", "stopping"):
                self._transition(service, "stopping")
                self._replace_task(service_id, self._stop(service_id, "stopped"))
            elif status == "running" and service["status"] in ("stopped", "failed"):
                self.deploy(service_id)
        elif "config" in body:
            service["config"] = self._config(body["config"])
            self.deploy(service_id)
        service["update_time"] = now_ms()
        self.state.save()

    def delete(self, service_ids: str) -> None:
        ids = [s.strip() for s in service_ids.split(",") if s.strip()]
        for service_id in ids:
            self.get(service_id)
        for service_id in ids:
            del self.state.services[service_id]
            self._replace_task(service_id, self._stop(service_id, None))
        self.state.save()

    def list(self, query) -> dict:
        offset, limit, order = checks.paging(query, 1000, 1000)
        services = list(self.state.services.values())
        if query.get("service_name"):
            services = [s for s in services if query["service_name"] in s["service_name"]]
        if query.get("model_id"):
            services = [s for s in services if any(c["model_id"] == query["model_id"] for c in s["config"])]
        for key in ("service_id", "status", "infer_type"):
            if query.get(key):
                services = [s for s in services if s[key] == query[key]]
        services.sort(key=lambda s: s["publish_at"], reverse=order == "desc")
        page = services[offset:offset + limit]
        return {
            "total_count": len(services), "count": len(page),
            "services": [{k: self.show(s["service_id"])[k] for k in LIST_KEYS} for s in page],
        }

    # -- lifecycle -----------------------------------------------------------------------------

    def _transition(self, service: dict, status: str, error_msg: str = "") -> None:
        service["status"] = status
        service["error_msg"] = error_msg
        service["transition_at"] = now_ms()
        for entry in service["config"]:
            entry["status"] = status if status in ("running", "deploying", "failed", "stopped") else entry["status"]
        self.state.save()

    def _replace_task(self, service_id: str, coroutine) -> None:
        previous = self._tasks.pop(service_id, None)
        if previous is not None and previous is not asyncio.current_task():
            previous.cancel()
        task = asyncio.get_running_loop().create_task(coroutine, name=f"service-{service_id}")
        self._tasks[service_id] = task
        task.add_done_callback(lambda t: self._tasks.pop(service_id, None) if self._tasks.get(service_id) is t else None)

    def deploy(self, service_id: str) -> None:
        service = self.state.services[service_id]
        service["progress"] = 0
        self._transition(service, "deploying")
        self._replace_task(service_id, self._deploy(service_id))

    async def _deploy(self, service_id: str) -> None:
        await self._kill_runtimes(service_id)
        service = self.state.services[service_id]
        runtimes: list[Runtime] = []
        self._runtimes[service_id] = runtimes
        try:
            for i, entry in enumerate(service["config"]):
                runtime = await self._start_runtime(service_id, entry)
                runtimes.append(runtime)
                error = await self._wait_ready(runtime)
                if error:
                    await self._kill_runtimes(service_id)
                    self._transition(service, "failed", error)
                    return
                service["progress"] = int(100 * (i + 1) / len(service["config"]))
            self._transition(service, "running")
            await self._watch(service_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of ours: the service fails, the API goes on
            log.exception("deploying service %s", service_id)
            await self._kill_runtimes(service_id)
            self._transition(service, "failed", f"internal error while deploying: {exc}")

    async def _start_runtime(self, service_id: str, entry: dict) -> Runtime:
        model_dir = self.models.package_dir(entry["model_id"])
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "modelarts_operator.cli", "local", "serve-model",
            "--model-dir", str(model_dir), "--port", "0", "--model-name", entry["model_name"],
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True, env=dict(os.environ, **entry["envs"], PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2"),
        )
        log.info("service %s: runtime pid %d for model %s", service_id, process.pid, entry["model_id"])
        return Runtime(entry["model_id"], entry["weight"], process)

    async def _wait_ready(self, runtime: Runtime) -> str:
        """Read the runtime's output until READY; return "" or why it failed. Output is kept draining after."""
        async def read_until_ready() -> str:
            while True:
                line = await runtime.process.stdout.readline()
                if not line:
                    code = await runtime.process.wait()
                    tail = "\n".join(runtime.output)
                    return f"model {runtime.model_id} failed to load (runtime exit code {code}):\n{tail}"
                text = line.decode("utf-8", "replace").rstrip()
                if text.startswith("READY "):
                    runtime.url = text.split(" ", 1)[1]
                    return ""
                runtime.output.append(text)

        try:
            error = await asyncio.wait_for(read_until_ready(), READY_TIMEOUT_S)
        except asyncio.TimeoutError:
            return f"model {runtime.model_id} did not load within {READY_TIMEOUT_S:.0f} s"
        if not error:
            asyncio.get_running_loop().create_task(self._drain(runtime))
        return error

    @staticmethod
    async def _drain(runtime: Runtime) -> None:
        while line := await runtime.process.stdout.readline():
            runtime.output.append(line.decode("utf-8", "replace").rstrip())

    async def _watch(self, service_id: str) -> None:
        """While running: fail when a runtime exits, stop when the schedule says so."""
        service = self.state.services[service_id]
        waits = [asyncio.ensure_future(r.process.wait()) for r in self._runtimes[service_id]]
        stop_after = min((s["duration"] * TIME_UNITS[s["time_unit"]] for s in service["schedule"]), default=None)
        try:
            done, _ = await asyncio.wait(waits, timeout=stop_after, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if done:
            runtime = next(r for r in self._runtimes[service_id] if r.process.returncode is not None)
            await self._kill_runtimes(service_id)
            tail = "\n".join(runtime.output)
            self._transition(service, "failed", f"runtime of model {runtime.model_id} exited with code {runtime.process.returncode}:\n{tail}")
        else:
            log.info("service %s: auto-stop after %s s", service_id, stop_after)
            self._transition(service, "stopping")
            await self._stop(service_id, "stopped")

    async def _stop(self, service_id: str, final_status: str | None) -> None:
        await self._kill_runtimes(service_id)
        service = self.state.services.get(service_id)
        if final_status and service is not None:
            self._transition(service, final_status)

    async def _kill_runtimes(self, service_id: str) -> None:
        runtimes = self._runtimes.pop(service_id, [])
        for runtime in runtimes:
            _signal_group(runtime.process.pid, signal.SIGTERM)
        for runtime in runtimes:
            try:
                await asyncio.wait_for(asyncio.shield(runtime.process.wait()), STOP_GRACE_S)
            except asyncio.TimeoutError:
                pass
            _signal_group(runtime.process.pid, signal.SIGKILL)
            await runtime.process.wait()

    def resume(self) -> None:
        """After a restart from a state folder: bring back what was running or deploying."""
        for service_id, service in self.state.services.items():
            if service["status"] in ("running", "deploying"):
                self.deploy(service_id)
            elif service["status"] == "stopping":
                self._transition(service, "stopped")

    async def shutdown(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(self._kill_runtimes(sid) for sid in list(self._runtimes)), return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    # -- prediction ------------------------------------------------------------------------------

    async def predict(self, service_id: str, body: bytes, content_type: str) -> tuple[int, bytes, str]:
        service = self.get(service_id)
        runtimes = [r for r in self._runtimes.get(service_id, []) if r.url]
        if service["status"] != "running" or not runtimes:
            raise service_unavailable(service_id, service["status"])
        runtime = random.choices(runtimes, weights=[max(r.weight, 0) or 1 for r in runtimes])[0]
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=PREDICT_TIMEOUT_S),
                connector=aiohttp.TCPConnector(keepalive_timeout=PREDICT_KEEPALIVE_S),
            )
        service["invocation_times"] += 1
        try:
            async with self._http.post(runtime.url + "/", data=body, headers={"Content-Type": content_type}) as answer:
                payload = await answer.read()
                status, answer_type = answer.status, answer.headers.get("Content-Type", "application/json")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            service["failed_times"] += 1
            raise backend_failed(type(exc).__name__) from None
        if status >= 400:
            service["failed_times"] += 1
        return status, payload, answer_type


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass

