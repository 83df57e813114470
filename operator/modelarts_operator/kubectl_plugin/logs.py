"""`logs TRAININGJOB [-f]`: the job's log through the ModelArts API (the log preview: the service's tail
of one task's log); `-f` polls it and prints only what is new until the job has finished."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from modelarts_operator.api.conditions import TERMINAL_REASONS, find_condition
from modelarts_operator.api.kinds import TRAINING_JOB
from modelarts_operator.cloud import CloudError, ModelArtsApi
from modelarts_operator.cloud.resources import JobPhase
from modelarts_operator.kubectl_plugin.errors import PluginError
from modelarts_operator.kubectl_plugin.kube import Cluster

ANCHOR_CHARS = 64  # how much of the new window's start is looked for in the text seen before
MAX_CANDIDATES = 1000  # places checked before giving up (a log of one line repeated)


def unseen(previous: str, current: str) -> tuple[str, bool]:
    """The text of `current` that `previous` did not show, and whether some was lost in between.

    The preview is a window over the end of the log: it grows, and once the log outgrows it, it slides.
    When it slid, `current` begins with an end of `previous`: the longest such overlap is found from the
    places where `current`'s first characters occur in `previous`. When there is none, the window moved
    past everything seen: all of `current` is new, with a gap before it."""
    if current.startswith(previous):
        return current[len(previous):], False
    head = current[:ANCHOR_CHARS]
    at = previous.find(head) if head else -1
    for _ in range(MAX_CANDIDATES):
        if at < 0:
            break
        if current.startswith(previous[at:]):
            return current[len(previous) - at:], False
        at = previous.find(head, at + 1)
    return current, True


def job_state(obj: dict) -> str:
    ready = find_condition(obj.get("status"))
    if not ready:
        return "no status yet"
    message = ready.get("message") or (obj.get("status") or {}).get("message")
    return f"Ready={ready.get('status')} {ready.get('reason')}{': ' + message if message else ''}"


def job_id_of(obj: dict) -> str | None:
    return (obj.get("status") or {}).get("jobId")


def wait_for_job_id(cluster: Cluster, name: str, interval: float, err: TextIO,
                    sleep: Callable[[float], None] = time.sleep) -> dict:
    """The TrainingJob once it has a ModelArts job; a line on stderr each time its state changes."""
    said = None
    while True:
        obj = cluster.get(TRAINING_JOB, name)
        if job_id_of(obj):
            return obj
        ready = find_condition(obj.get("status"))
        if ready.get("status") == "False" and ready.get("reason") in TERMINAL_REASONS:
            raise PluginError(f'{TRAINING_JOB.singular} "{name}" will not get a ModelArts job ({job_state(obj)})')
        state = job_state(obj)
        if state != said:
            print(f'waiting for {TRAINING_JOB.singular} "{name}" to start a ModelArts job ({state})', file=err,
                  flush=True)
            said = state
        sleep(interval)


def run(cluster: Cluster, name: str, follow: bool, task: str, interval: float, out: TextIO, err: TextIO) -> int:
    obj = wait_for_job_id(cluster, name, interval, err) if follow else cluster.get(TRAINING_JOB, name)
    job_id = job_id_of(obj)
    if not job_id:
        raise PluginError(f'{TRAINING_JOB.singular} "{name}" has no ModelArts job yet ({job_state(obj)}); '
                          "-f waits for it")
    credentials = cluster.credentials(obj)
    api = ModelArtsApi(lambda: credentials)
    if not follow:
        text = api.training_job_log(job_id, task)
        write(out, text if text.endswith("\n") or not text else text + "\n")
        return 0
    return follow_log(api, job_id, task, interval, out, err)


def follow_log(api: ModelArtsApi, job_id: str, task: str, interval: float, out: TextIO, err: TextIO,
               sleep: Callable[[float], None] = time.sleep) -> int:
    """Print new log text until the job has finished: 0 when it Completed, 1 otherwise."""
    shown = ""
    while True:
        try:
            job = api.get_training_job(job_id)  # the phase before the log: the last read then holds it all
            text = api.training_job_log(job_id, task)
        except CloudError as exc:
            if not exc.retryable:
                raise
            print(f"(the cloud did not answer, trying again: {exc})", file=err, flush=True)
            sleep(interval)
            continue
        new, gap = unseen(shown, text)
        if gap and shown:
            print("(log text was skipped: it grew faster than it was read)", file=err, flush=True)
        write(out, new)
        shown = text
        if job.finished:
            print(f"training job {job_id} ended: {job.phase}", file=err, flush=True)
            return 0 if job.phase == JobPhase.COMPLETED else 1
        sleep(interval)


def write(out: TextIO, text: str) -> None:
    if text:
        out.write(text)
        out.flush()
