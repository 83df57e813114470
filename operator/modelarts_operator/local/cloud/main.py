"""`modelarts-operator local cloud`: run the local cloud in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import signal
import threading

from . import LocalCloud
from .training import MAX_NODES


def serve(
    state_dir: str | None = None,
    endpoints_file: str = ".local/cloud.json",
    max_running_jobs: int = 1,
    ak: str | None = None,
    sk: str | None = None,
    project_id: str | None = None,
    region: str = "cn-north-4",
    max_nodes: int = MAX_NODES,
) -> None:
    """Start, print endpoints and where the credentials are (never the secret key), block until signalled."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with LocalCloud(state_dir=state_dir, max_running_jobs=max_running_jobs, ak=ak, sk=sk, project_id=project_id,
                    region=region, endpoints_file=endpoints_file, max_nodes=max_nodes) as cloud:
        print(f"ModelArts endpoint: {cloud.modelarts_endpoint}", flush=True)
        print(f"OBS endpoint:       {cloud.obs_endpoint}", flush=True)
        print(f"project id:         {cloud.project_id}  region: {cloud.region}  access key: {cloud.ak}", flush=True)
        print(f"public data set:    obs:/{cloud.public_dataset_path}", flush=True)
        print(f"credentials (secret key, prediction token): {endpoints_file}", flush=True)
        print(f"state: {state_dir or 'in memory'}  training jobs: {max_running_jobs} at once, "
              f"up to {max_nodes} workers each", flush=True)
        stop.wait()
