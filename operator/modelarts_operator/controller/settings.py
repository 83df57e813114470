"""Operator settings, from the command line or the environment (MODELARTS_OPERATOR_*)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from modelarts_operator import data
from modelarts_operator.api.common import GROUP

FINALIZER = f"{GROUP}/cleanup"
# On a credentials Secret while resources of ours use it, so it outlives them (kubectl delete
# namespace removes Secrets and resources in no particular order), as Crossplane's in-use finalizer.
SECRET_FINALIZER = f"{GROUP}/in-use"
# "true" on a resource being deleted: finish without touching the cloud side (as deletionPolicy Retain),
# the way out when its credentials are gone for good.
ABANDON_ANNOTATION = f"{GROUP}/abandon"


def _default_builtin_code() -> Path:
    """model_code/ of this checkout, or where the image puts it."""
    return Path(os.environ.get("MODELARTS_OPERATOR_BUILTIN_CODE") or data.model_code())


@dataclass
class Settings:
    credentials_secret: str = "modelarts-credentials"  # looked up in each resource's namespace
    poll_fast_s: float = 5.0  # while something changes (uploading, training, deploying)
    poll_slow_s: float = 300.0  # when stable: drift and behind-the-back deletion checks
    poll_terminal_s: float = 3600.0  # finished for good (a Completed job, an InvalidSpec)
    max_workers: int = 16  # threads running reconciles and finalizers at once
    secret_cache_s: float = 5.0  # a rotated Secret is seen within this time
    # A replica that dies unannounced is taken over this long after its last keep-alive (Kopf renews
    # 5-10 s before the end): as controller-runtime's 15 s lease.
    peering_lifetime_s: int = 15
    builtin_code_dir: Path = field(default_factory=_default_builtin_code)
    work_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "modelarts-operator")
    mnist_local_dirs: list[Path] | None = None  # None: $MNIST_DIR, then ../shared/datasets/mnist
    metrics_port: int = 0  # serve Prometheus metrics at :PORT/metrics; 0: not at all

    @classmethod
    def from_env(cls, env=os.environ) -> Settings:
        settings = cls()
        prefix = "MODELARTS_OPERATOR_"
        if env.get(prefix + "CREDENTIALS_SECRET"):
            settings.credentials_secret = env[prefix + "CREDENTIALS_SECRET"]
        for name in ("poll_fast_s", "poll_slow_s", "poll_terminal_s", "secret_cache_s"):
            value = env.get(prefix + name.upper())
            if value:
                setattr(settings, name, float(value))
        if env.get(prefix + "PEERING_LIFETIME_S"):
            settings.peering_lifetime_s = int(env[prefix + "PEERING_LIFETIME_S"])
        if env.get(prefix + "MAX_WORKERS"):
            settings.max_workers = int(env[prefix + "MAX_WORKERS"])
        if env.get(prefix + "WORK_DIR"):
            settings.work_dir = Path(env[prefix + "WORK_DIR"])
        if env.get(prefix + "METRICS_PORT"):
            settings.metrics_port = int(env[prefix + "METRICS_PORT"])
        return settings
