"""`modelarts-operator run`: Kopf with this project's handlers and settings."""

from __future__ import annotations

import logging

import kopf

from modelarts_operator.controller.handlers import register
from modelarts_operator.controller.settings import Settings


def run(*, namespaces: list[str], all_namespaces: bool, standalone: bool, peering: str | None,
        liveness: str | None, settings: Settings, verbose: bool = False) -> None:
    """Block until SIGINT/SIGTERM, reconciling the four kinds in the given scope."""
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.PLAIN)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("HuaweiCloud-SDK").setLevel(logging.WARNING)
    registry = kopf.OperatorRegistry()
    register(registry, settings)
    kopf.run(
        registry=registry,
        clusterwide=all_namespaces,
        namespaces=namespaces,
        standalone=standalone,
        peering_name=None if standalone else peering,
        liveness_endpoint=liveness,
    )
