"""`modelarts-operator run`: Kopf with this project's handlers and settings."""

from __future__ import annotations

import logging

import kopf

from modelarts_operator import metrics
from modelarts_operator.controller.handlers import register
from modelarts_operator.controller.peering import PeeringNotInstalled, ensure_peering, start_priority
from modelarts_operator.controller.settings import Settings

log = logging.getLogger(__name__)


def serve_terminating_namespaces() -> None:
    """Kopf 1.45 never starts serving a namespace that it first lists while it terminates with content
    left (a real server sets NamespaceContentRemaining=True): after an operator restart during
    `kubectl delete namespace`, our finalizers would never run and the namespace would stay
    Terminating for ever. Serve such a namespace, as Kopf does when it sees it go terminating while
    running. (tests/operator/test_lifecycle.py fails without this on the real control plane.)"""
    from kopf._core.reactor import observation

    original = observation.revise_namespaces
    if getattr(original, "serves_terminating", False):
        return

    def revise_namespaces(*, insights, namespaces, raw_events=(), raw_bodies=()):
        original(insights=insights, namespaces=namespaces, raw_events=raw_events, raw_bodies=raw_bodies)
        objects = [event["object"] for event in raw_events if event.get("type") != "DELETED"] + list(raw_bodies)
        for obj in objects:
            name = obj["metadata"]["name"]
            if observation.get_blockers({"type": None, "object": obj}) and any(
                    observation.references.match_namespace(name, pattern) for pattern in namespaces):
                insights.namespaces.add(name)

    revise_namespaces.serves_terminating = True
    observation.revise_namespaces = revise_namespaces


def join_peering(name: str, namespaces: list[str], all_namespaces: bool) -> int:
    """Make sure the peering objects exist; this replica's priority (the kube config is loaded)."""
    from kubernetes import client

    try:
        created = ensure_peering(client.CustomObjectsApi(), name, namespaces, all_namespaces)
    except PeeringNotInstalled as exc:
        raise SystemExit(f"modelarts-operator run: {exc}") from None
    for what in created:
        log.info("created the peering object %s", what)
    return start_priority()


def serve_metrics(port: int) -> None:
    """/metrics from a thread of its own, on every replica (a follower shows no reconciles)."""
    try:
        metrics.serve(port)
    except OSError as exc:
        raise SystemExit(f"modelarts-operator run: --metrics-port {port}: {exc.strerror or exc}") from None


def run(*, namespaces: list[str], all_namespaces: bool, standalone: bool, peering: str | None,
        liveness: str | None, settings: Settings, verbose: bool = False) -> None:
    """Block until SIGINT/SIGTERM, reconciling the four kinds in the given scope."""
    if settings.metrics_port:
        serve_metrics(settings.metrics_port)
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.PLAIN)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("HuaweiCloud-SDK").setLevel(logging.WARNING)
    serve_terminating_namespaces()
    registry = kopf.OperatorRegistry()
    register(registry, settings)
    priority = 0 if standalone else join_peering(peering, namespaces, all_namespaces)
    kopf.run(
        registry=registry,
        clusterwide=all_namespaces,
        namespaces=namespaces,
        standalone=standalone,
        peering_name=None if standalone else peering,
        priority=priority,
        liveness_endpoint=liveness,
    )
