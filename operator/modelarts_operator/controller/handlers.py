"""Kopf wiring: each handler is one call into the Runner. Importing this module registers nothing;
`register()` does, so tests can use their own registry."""

from __future__ import annotations

import logging
import time

import kopf

from modelarts_operator.api.common import GROUP, VERSION
from modelarts_operator.api.kinds import KINDS, Kind
from modelarts_operator.controller.context import Context
from modelarts_operator.controller.kube import Kube
from modelarts_operator.controller.runner import RetryLater, Runner
from modelarts_operator.controller.settings import FINALIZER, Settings

log = logging.getLogger(__name__)


def _poster(body):
    def post(event_type: str, reason: str, message: str) -> None:
        kopf.event(body, type=event_type, reason=reason, message=message)
    return post


def _register_kind(registry: kopf.OperatorRegistry, runner: Runner, settings: Settings, kind: Kind) -> None:
    resource = (GROUP, VERSION, kind.plural)

    def schedule(memo: kopf.Memo, outcome) -> None:
        delay = settings.poll_fast_s if outcome.changing else settings.poll_slow_s
        memo[kind.kind + ":next"] = time.monotonic() + delay

    # Explicit ids: Kopf keeps a retried handler's progress in an annotation named after its id, and
    # the default id (`_register_kind.<locals>.cleanup`) is no valid annotation key on a real server.
    @kopf.on.resume(*resource, registry=registry, id="reconcile")
    @kopf.on.create(*resource, registry=registry, id="reconcile")
    @kopf.on.update(*resource, registry=registry, id="reconcile")
    def reconcile(body, memo: kopf.Memo, **_):
        schedule(memo, runner.reconcile(kind, body, _poster(body)))

    @kopf.timer(*resource, interval=settings.poll_fast_s, initial_delay=settings.poll_fast_s, registry=registry,
                id="poll")
    def poll(body, memo: kopf.Memo, **_):
        if body.get("metadata", {}).get("deletionTimestamp"):
            return
        if time.monotonic() >= memo.get(kind.kind + ":next", 0):
            schedule(memo, runner.reconcile(kind, body, _poster(body)))

    @kopf.on.delete(*resource, registry=registry, id="finalize")
    def cleanup(body, **_):
        try:
            runner.finalize(kind, body, _poster(body))
        except RetryLater as exc:
            raise kopf.TemporaryError(str(exc), delay=exc.delay) from None


def register(registry: kopf.OperatorRegistry, settings: Settings) -> Runner:
    """Register the startup settings and every kind's handlers; returns the Runner they share."""
    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_):
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=GROUP, key="last-handled-configuration")
        settings.posting.level = logging.WARNING  # our own events say what happens; Kopf's add noise
        settings.execution.max_workers = 16

    @kopf.on.login(registry=registry)
    def login(**kwargs):
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    from kubernetes import config as kube_config

    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config()
    runner = Runner(Context(Kube(), settings))
    for kind in KINDS:
        _register_kind(registry, runner, settings, kind)
    return runner
