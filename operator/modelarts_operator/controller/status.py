"""Pure status logic: conditions, reasons, and what a cloud state means for Ready.

No I/O here: every function maps inputs to status fields, so each rule is unit-tested directly.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

# Ready=False reasons that no amount of waiting will change: Argo CD shows these as Degraded.
TERMINAL_REASONS = frozenset({
    "Failed", "Terminated", "MaxRuntimeExceeded", "InvalidSpec", "CloudResourceMissing", "Stopped", "DependencyFailed",
})


@dataclass(frozen=True)
class Cond:
    """A condition to set: status True/False/Unknown with a CamelCase reason and a human message."""

    type: str
    status: str
    reason: str
    message: str = ""


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def merge_conditions(existing: list[dict] | None, updates: list[Cond], generation: int | None,
                     now: str | None = None) -> list[dict]:
    """Set each updated condition; lastTransitionTime moves only when the status value changes."""
    now = now or now_rfc3339()
    by_type = {c["type"]: dict(c) for c in existing or [] if isinstance(c, dict) and "type" in c}
    for cond in updates:
        previous = by_type.get(cond.type)
        changed = previous is None or previous.get("status") != cond.status
        by_type[cond.type] = {
            "type": cond.type,
            "status": cond.status,
            "reason": cond.reason,
            "message": cond.message[:1024],
            "lastTransitionTime": now if changed else previous.get("lastTransitionTime", now),
            "observedGeneration": generation,
        }
    order = {"Ready": 0, "Synced": 1}
    return sorted(by_type.values(), key=lambda c: (order.get(c["type"], 9), c["type"]))


def ready(reason: str = "Ready", message: str = "") -> Cond:
    return Cond("Ready", "True", reason, message)


def not_ready(reason: str, message: str) -> Cond:
    return Cond("Ready", "False", reason, message)


def synced(message: str = "") -> Cond:
    return Cond("Synced", "True", "Synced", message)


def not_synced(reason: str, message: str) -> Cond:
    return Cond("Synced", "False", reason, message)


def is_ready(status: dict | None) -> bool:
    for cond in (status or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def ready_reason(status: dict | None) -> str | None:
    for cond in (status or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("reason")
    return None


# --- cloud states -> Ready ---------------------------------------------------------------------

JOB_PROGRESS = {"Creating": "Creating", "Pending": "Pending", "Running": "Running", "Terminating": "Terminating"}


def training_job_ready(phase: str, secondary_phase: str, failure: str) -> Cond:
    """Completed is the only Ready; Failed, Terminated and Abnormal are terminal and say why."""
    if phase == "Completed":
        return ready("Completed", "training finished")
    if phase == "Failed":
        return not_ready("Failed", f"training failed: {failure}")
    if phase == "Abnormal":
        return not_ready("Failed", f"training job abnormal ({secondary_phase}): {failure}")
    if phase == "Terminated":
        return not_ready("Terminated", "training job was terminated")
    label = JOB_PROGRESS.get(phase, phase or "Creating")
    detail = f" ({secondary_phase})" if secondary_phase and secondary_phase != phase else ""
    return not_ready(label, f"training job {phase or 'Creating'}{detail}")


def model_ready(model_status: str, failure: str) -> Cond:
    if model_status == "published":
        return ready("Published", "model imported")
    if model_status in ("failed", "building_failed"):
        return not_ready("Failed", f"model import failed: {failure or model_status}")
    return not_ready("Importing", f"model {model_status or 'publishing'}")


def service_ready(status: str, progress: int | None, error: str) -> Cond:
    if status == "running":
        return ready("Running", "service running")
    if status == "failed":
        return not_ready("Failed", f"service failed: {error or 'no message'}")
    if status == "stopped":
        return not_ready("Stopped", "service stopped (auto-stop or manual); start it in ModelArts or recreate")
    if status == "concerning":
        return not_ready("Concerning", f"some instances are unhealthy: {error or 'no message'}")
    if status == "deploying":
        return not_ready("Deploying", f"deploying ({progress or 0}%)")
    return not_ready(status.capitalize() if status else "Deploying", f"service {status or 'deploying'}")


def parse_duration(text: str) -> int:
    """`1h30m`, `2h`, `90s`, `1d` -> seconds (the CRD pattern guarantees the form)."""
    total, number = 0, ""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    for char in text:
        if char.isdigit():
            number += char
        elif char in units and number:
            total += int(number) * units[char]
            number = ""
        else:
            raise ValueError(f"bad duration {text!r}: use forms like 90s, 45m, 1h30m, 2d")
    if number or total <= 0:
        raise ValueError(f"bad duration {text!r}: use forms like 90s, 45m, 1h30m, 2d")
    return total


def auto_stop_schedule(after: str | None) -> list[dict]:
    """ModelArts stops a service after `duration time_unit`; it knows MINUTES, HOURS and DAYS."""
    if not after:
        return []
    amount, unit = int(after[:-1]), {"m": "MINUTES", "h": "HOURS", "d": "DAYS"}[after[-1]]
    return [{"type": "stop", "time_unit": unit, "duration": amount}]


def next_version(existing_folders: list[str]) -> str:
    """Training runs write V0001, V0002, ...: the next after the highest present."""
    numbers = [int(name[1:]) for name in existing_folders if len(name) == 5 and name[0] == "V" and name[1:].isdigit()]
    return f"V{max(numbers, default=0) + 1:04d}"


def log_tail(log: str, lines: int = 20, max_chars: int = 2000) -> str:
    tail = "\n".join(log.rstrip().splitlines()[-lines:])
    return tail[-max_chars:]
