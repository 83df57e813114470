"""Training progress from the log a boot file prints: its last complete epoch line.

The builtin boot file prints one line per epoch, `epoch=2/6 loss=0.0712 accuracy=0.9781 seconds=13.2`;
any boot file that prints the same shape gets the same status. Logs are user output: anything else on a
line, or in the log, is ignored, and no text makes this raise.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

# ASCII digits only: \d would take any script's digits, which int() and float() would then read.
EPOCH = re.compile(r"epoch=(\d{1,9})/(\d{1,9})", re.ASCII)
PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]{0,63})=([-+]?(?:\d{1,30}(?:\.\d{0,30})?|\.\d{1,30})(?:[eE][-+]?\d{1,3})?)",
                  re.ASCII)
MAX_METRICS = 16  # epochMetrics is a bounded map (the CRD's maxProperties)
MAX_LINE = 4096  # longer lines are no epoch line of any boot file: not worth a look


@dataclass(frozen=True)
class Epoch:
    """One epoch line: `epoch` of `epochs` done, with the figures printed for it."""

    epoch: int
    epochs: int
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def progress(self) -> str:
        return f"{self.epoch}/{self.epochs}"


def parse_epoch_line(line: str) -> Epoch | None:
    """`epoch=N/M name=number ...` (the line may start with `epoch=` after whitespace only), else None.
    Pairs that are no name=finite-number are skipped; at most MAX_METRICS are kept, the first ones."""
    if len(line) > MAX_LINE:
        return None
    tokens = line.split()
    if not tokens:
        return None
    head = EPOCH.fullmatch(tokens[0])
    if head is None:
        return None
    epoch, epochs = int(head[1]), int(head[2])
    if epochs < 1 or epoch > epochs:
        return None
    metrics: dict[str, float] = {}
    for token in tokens[1:]:
        pair = PAIR.fullmatch(token)
        if pair is None or pair[1] == "epoch" or pair[1] in metrics:
            continue
        value = float(pair[2])
        if math.isfinite(value) and len(metrics) < MAX_METRICS:
            metrics[pair[1]] = value
    return Epoch(epoch, epochs, metrics)


def last_epoch(log: str, complete: bool = False) -> Epoch | None:
    """The last epoch line of `log` that is complete: ended by a newline, since the line being written
    may be cut short (`loss=0.0` of `loss=0.0712`). `complete`: the job has ended, its last line too."""
    lines = log.split("\n")
    if not complete:
        lines = lines[:-1]  # the text after the last newline (empty when the log ends with one)
    for line in reversed(lines):
        found = parse_epoch_line(line)
        if found is not None:
            return found
    return None
