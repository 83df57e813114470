"""A local Huawei Cloud for the operator: OBS (moto) and ModelArts (aiohttp) on 127.0.0.1.

    with LocalCloud() as cloud:
        client = ModelArtsClient.new_builder().with_credentials(
            BasicCredentials(cloud.ak, cloud.sk, cloud.project_id)).with_endpoints([cloud.modelarts_endpoint]).build()

See docs/local-cloud.md for what is emulated.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
from pathlib import Path

from aiohttp import web

from .algorithms import Algorithms
from .api import Api
from .faults import FaultRule, Faults
from .models import Models
from .obs import MNIST_PREFIX, PUBLIC_BUCKET, LocalObs, parse_obs_url
from .services import Services
from .state import State
from .training import MAX_NODES, Trainer

log = logging.getLogger(__name__)

__all__ = ["LocalCloud"]


class LocalCloud:
    """OBS + ModelArts in background threads; a context manager (or start()/stop())."""

    public_bucket = PUBLIC_BUCKET
    public_dataset_path = f"/{PUBLIC_BUCKET}/{MNIST_PREFIX}"

    def __init__(
        self,
        state_dir: str | os.PathLike | None = None,
        max_running_jobs: int = 1,
        ak: str | None = None,
        sk: str | None = None,
        project_id: str | None = None,
        region: str = "cn-north-4",
        endpoints_file: str | os.PathLike | None = None,
        max_nodes: int = MAX_NODES,
    ) -> None:
        if max_running_jobs < 1:
            raise ValueError("max_running_jobs must be at least 1")
        if max_nodes < 1:
            raise ValueError("max_nodes must be at least 1")
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.state = State(self.state_dir)
        saved = self.state.credentials
        self.ak = ak or saved.get("ak") or "LOCAL" + secrets.token_hex(8).upper()
        self.sk = sk or (saved.get("sk") if self.ak == saved.get("ak") else None) or secrets.token_urlsafe(30)
        self.project_id = project_id or saved.get("projectId") or secrets.token_hex(16)
        self.auth_token = saved.get("authToken") or "MIIL" + secrets.token_urlsafe(48)
        self.region = region
        self.max_running_jobs = max_running_jobs
        self.max_nodes = max_nodes  # workers (processes) a training job may ask for: spec.resource.node_count
        self.endpoints_file = Path(endpoints_file) if endpoints_file is not None else None
        self.obs_endpoint = ""
        self.modelarts_endpoint = ""
        self.faults = Faults()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._obs: LocalObs | None = None
        self._work_dir: Path | None = None

    def __repr__(self) -> str:  # never the secret key or the token
        return f"LocalCloud(modelarts={self.modelarts_endpoint!r}, obs={self.obs_endpoint!r}, ak={self.ak!r})"

    # -- lifecycle ----------------------------------------------------------------------------------

    def __enter__(self) -> LocalCloud:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> LocalCloud:
        if self.state_dir is not None:
            self._work_dir = self.state_dir / "work"
            self._work_dir.mkdir(parents=True, exist_ok=True)
        else:
            self._work_dir = Path(tempfile.mkdtemp(prefix="localcloud-"))
        self.state.credentials.update(ak=self.ak, sk=self.sk, projectId=self.project_id, authToken=self.auth_token)
        self.state.save()
        try:
            self._obs = LocalObs(self.ak, self.sk, self.region)
            self._obs.start()
            self.obs_endpoint = self._obs.endpoint
            self._obs.seed_public_bucket(self._work_dir / "mnist")
            if self.state_dir is not None:
                self._obs.restore(self.state_dir / "obs")
            self._start_api()
        except BaseException:
            self.stop()
            raise
        if self.endpoints_file is not None:
            self.write_endpoints_file(self.endpoints_file)
        log.info("local cloud: ModelArts %s, OBS %s, project %s", self.modelarts_endpoint, self.obs_endpoint, self.project_id)
        return self

    def _start_api(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="local-modelarts", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._setup(), self._loop).result(timeout=60)

    async def _setup(self) -> None:
        self.algorithms = Algorithms(self.state, self.project_id)
        self.trainer = Trainer(self.state, self.algorithms, self._obs, self._work_dir, self.max_running_jobs,
                               self.max_nodes)
        self.models = Models(self.state, self._obs, self._work_dir, self.project_id)
        self.services = Services(self.state, self.models, self._work_dir, self.project_id)
        self.api = Api(self, self.faults)
        self._runner = web.AppRunner(self.api.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.modelarts_endpoint = f"http://127.0.0.1:{port}"
        self.services.endpoint = self.modelarts_endpoint
        self.trainer.resume()
        for model_id, model in self.state.models.items():
            if model["model_status"] == "publishing":
                self.models.start_import(model_id)
        self.services.resume()

    async def _teardown(self) -> None:
        await self.trainer.shutdown()
        await self.services.shutdown()
        await self.models.shutdown()
        await self._runner.cleanup()
        # Handlers still waiting on a half-open client: cancel them, or the closing loop destroys them pending.
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def stop(self) -> None:
        """Kill every training and serving process, stop both servers; keep state if a folder was given."""
        if self._loop is not None:
            if self._runner is not None:
                asyncio.run_coroutine_threadsafe(self._teardown(), self._loop).result(timeout=60)
                self._runner = None
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()
            self._loop = None
        if self._obs is not None:
            if self.state_dir is not None:
                self._obs.snapshot(self.state_dir / "obs")
            self._obs.stop()
            self._obs = None
        self.state.save()
        if self.state_dir is None and self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    # -- used by the API ------------------------------------------------------------------------------

    async def code_tree(self, code_dir: str | None) -> list[str]:
        """The file names under an algorithm's code_dir (empty when it has none or OBS has none)."""
        if not code_dir:
            return []
        try:
            bucket, prefix = parse_obs_url(code_dir)
            answer = await asyncio.to_thread(self._obs.client.list_objects_v2, Bucket=bucket, Prefix=prefix, MaxKeys=1000)
        except Exception:  # a missing bucket shows as an empty tree, like an empty folder
            return []
        return sorted(item["Key"][len(prefix):].lstrip("/") for item in answer.get("Contents", []) if not item["Key"].endswith("/"))

    # -- the test and benchmark handle ------------------------------------------------------------------

    def set_faults(self, operation: str | None = None, error_429: float = 0.0, error_500: float = 0.0, latency_ms: int = 0) -> None:
        """Answer `operation` (None: every operation) with 429/500 at these rates, after latency_ms."""
        self.faults.set(operation, FaultRule(error_429=error_429, error_500=error_500, latency_ms=latency_ms))

    def worker_pids(self, job_id: str) -> dict[str, int]:
        """Test and inspection hook, not part of the API: `{task: pid}` of a running job's worker processes
        (each pid is also its process group id); empty once the job ended."""
        async def read() -> dict[str, int]:
            return self.trainer.worker_pids(job_id)

        return asyncio.run_coroutine_threadsafe(read(), self._loop).result(timeout=10)

    def counters(self) -> dict[str, int]:
        return self.faults.counters()

    def reset_counters(self) -> None:
        self.faults.reset_counters()

    def credentials(self) -> dict[str, str]:
        return {
            "ak": self.ak, "sk": self.sk, "projectId": self.project_id, "region": self.region,
            "obsEndpoint": self.obs_endpoint, "modelartsEndpoint": self.modelarts_endpoint,
        }

    def write_endpoints_file(self, path: str | os.PathLike) -> Path:
        """The credentials plus authToken, publicBucket and publicDatasetPath, as JSON readable only by the owner."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        document = dict(
            self.credentials(), authToken=self.auth_token, publicBucket=self.public_bucket,
            publicDatasetPath=self.public_dataset_path,
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=2)
        os.chmod(path, 0o600)
        return path
