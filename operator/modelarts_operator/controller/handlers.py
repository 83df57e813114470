"""Kopf wiring: per object, one daemon that reconciles and sleeps for as long as the outcome says,
woken at once by a spec or annotation change; a deletion handler that finalizes. Importing this
module registers nothing; `register()` does, so tests can use their own registry."""

from __future__ import annotations

import asyncio
import contextvars
import copy
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import kopf

from modelarts_operator.api.common import GROUP, VERSION
from modelarts_operator.controller.base import KindController
from modelarts_operator.controller.context import Context, Requeue
from modelarts_operator.controller.errors import RetryLater
from modelarts_operator.controller.kopf_storage import TolerantDiffBaseStorage, TolerantProgressStorage
from modelarts_operator.controller.kube import Kube
from modelarts_operator.controller.registry import BY_KIND, CONTROLLERS
from modelarts_operator.controller.runner import Runner
from modelarts_operator.controller.settings import FINALIZER, Settings

log = logging.getLogger(__name__)


def _poster(body):
    def post(event_type: str, reason: str, message: str) -> None:
        kopf.event(body, type=event_type, reason=reason, message=message)
    return post


def requeue_seconds(settings: Settings, requeue: Requeue) -> float:
    return {Requeue.FAST: settings.poll_fast_s, Requeue.STABLE: settings.poll_slow_s,
            Requeue.TERMINAL: settings.poll_terminal_s}[requeue]


async def _sleep(stopped: kopf.DaemonStopped, wake: asyncio.Event, seconds: float) -> None:
    """Until `seconds` pass, the daemon is stopped, or a change wakes it."""
    waiters = [asyncio.ensure_future(stopped.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _register_kind(registry: kopf.OperatorRegistry, runner: Runner, settings: Settings, executor: ThreadPoolExecutor,
                   controller: KindController) -> None:
    resource = (GROUP, VERSION, controller.kind.plural)
    kind = controller.kind.kind

    def state(memo: kopf.Memo) -> tuple[asyncio.Event, threading.Lock]:
        """The object's wake-up event and lock (its per-object memo lives as long as the object).
        An asyncio.Event binds to no loop until awaited, so the finalizer's thread may create it too."""
        if "wake" not in memo:
            memo["wake"], memo["lock"] = asyncio.Event(), threading.Lock()
        return memo["wake"], memo["lock"]

    # Explicit ids: Kopf names annotations after handler ids, and the default ids
    # (`_register_kind.<locals>...`) are no valid annotation keys on a real server.
    @kopf.daemon(*resource, registry=registry, id="reconcile", cancellation_timeout=5.0)
    async def reconcile(body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_):
        wake, lock = state(memo)
        loop = asyncio.get_running_loop()
        while not stopped:
            wake.clear()
            snapshot = copy.deepcopy(dict(body))  # the live body changes while the thread works
            try:
                # Kopf's event posting reads context variables: the thread runs in a copy of this context.
                context = contextvars.copy_context()
                outcome = await loop.run_in_executor(executor, context.run, runner.reconcile, kind, snapshot,
                                                     _poster(body), lock)
                delay = requeue_seconds(settings, outcome.requeue)
            except Exception:  # the status write itself failed (the API server is away): try again soon
                log.exception("reconcile of %s %s could not write its status", kind, body["metadata"]["name"])
                delay = settings.poll_fast_s
            await _sleep(stopped, wake, delay)

    @kopf.on.update(*resource, registry=registry, id="wake")
    async def changed(memo: kopf.Memo, **_):
        state(memo)[0].set()

    @kopf.on.delete(*resource, registry=registry, id="finalize")
    def cleanup(body, memo: kopf.Memo, **_):
        try:
            runner.finalize(kind, dict(body), _poster(body), state(memo)[1])
        except RetryLater as exc:
            raise kopf.TemporaryError(str(exc), delay=exc.delay) from None


def register(registry: kopf.OperatorRegistry, settings: Settings) -> Runner:
    """Register the startup settings and every kind's handlers; returns the Runner they share."""
    executor = ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="reconcile")

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_):
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = TolerantProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = TolerantDiffBaseStorage(prefix=GROUP, key="last-handled-configuration")
        settings.posting.level = logging.WARNING  # our own events say what happens; Kopf's add noise
        settings.execution.max_workers = max_workers
        settings.peering.lifetime = peering_lifetime

    @kopf.on.cleanup(registry=registry)
    def stop_workers(**_):
        executor.shutdown(wait=False, cancel_futures=True)

    @kopf.on.login(registry=registry)
    def login(**kwargs):
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    from kubernetes import config as kube_config

    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config()
    max_workers, peering_lifetime = settings.max_workers, settings.peering_lifetime_s
    runner = Runner(Context(Kube(), settings), BY_KIND)
    for controller in CONTROLLERS:
        _register_kind(registry, runner, settings, executor, controller)
    return runner
