"""What the operator reads from a model package: the test metrics its config.json carries."""

from __future__ import annotations

import json

from modelarts_operator.api.v1alpha1 import JobMetrics
from modelarts_operator.cloud import CloudError, ObsStore, ObsUrl

FIGURES = ("accuracy", "f1", "precision", "recall")


def package_metrics(obs: ObsStore, folder: str) -> JobMetrics | None:
    """`metrics` of <folder>/model/config.json (numbers only); None when it cannot be read."""
    try:
        metrics = json.loads(obs.read(ObsUrl.parse(folder).join("model/config.json"))).get("metrics") or {}
        return JobMetrics.model_validate({k: metrics[k] for k in FIGURES
                                          if isinstance(metrics.get(k), int | float) and not isinstance(metrics[k], bool)})
    except (CloudError, ValueError, KeyError, TypeError, AttributeError):
        return None
