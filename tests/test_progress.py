"""Training progress from the log: the epoch line parser on a table of good and hostile lines, on
hypothesis-made text (it never raises, and what it returns fits the status schema), and into status."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelarts_operator.api.v1alpha1 import TrainingJobStatus
from modelarts_operator.controller.progress import MAX_METRICS, Epoch, last_epoch, parse_epoch_line
from modelarts_operator.controller.trainingjob import show_progress

BUILTIN = "epoch=2/6 accuracy=0.9802 loss=0.0650 seconds=11.8"


@pytest.mark.parametrize(("line", "expected"), [
    (BUILTIN, Epoch(2, 6, {"accuracy": 0.9802, "loss": 0.065, "seconds": 11.8})),
    ("epoch=6/6 loss=0.0712 accuracy=0.9781 val_loss=0.05 val_accuracy=0.99 seconds=13.2",
     Epoch(6, 6, {"loss": 0.0712, "accuracy": 0.9781, "val_loss": 0.05, "val_accuracy": 0.99, "seconds": 13.2})),
    ("  epoch=1/3\r", Epoch(1, 3, {})),  # no figures, a CRLF log
    ("epoch=0/3 loss=1e-3 gain=-2 step=+4 ratio=.5", Epoch(0, 3, {"loss": 0.001, "gain": -2.0, "step": 4.0,
                                                                  "ratio": 0.5})),
    ("epoch=2/6 loss=nan accuracy=inf x=1e999 y=0x10 z= =3 w=1,5 k=v epoch=9/9 loss=2 loss=3",
     Epoch(2, 6, {"loss": 2.0})),  # non-finite, non-numbers, a second epoch= and a repeated name: left out
    ("epoch=2/6 " + " ".join(f"m{i}={i}" for i in range(40)), Epoch(2, 6, {f"m{i}": float(i) for i in range(16)})),
    ("epoch=7/6 loss=1", None),  # past the end
    ("epoch=1/0", None),
    ("epoch=-1/6", None),
    ("epoch=1/6/7 loss=1", None),
    ("epoch=1234567890/1234567890", None),  # more digits than any run has
    ("Epoch 2/6 - loss: 0.07", None),  # Keras's own progress line is not this format
    ("step epoch=2/6 loss=1", None),  # epoch= must start the line
    ("data train=2000 test=10000 from=/data", None),
    ("test f1=0.98 accuracy=0.98", None),
    ("", None),
    ("\x00\x1b[31mepoch=2/6\x1b[0m", None),
    ("epoch=２/６ loss=1", None),  # full-width digits are no digits here
    ("epoch=2/6 loss=１ accuracy=0.5", Epoch(2, 6, {"accuracy": 0.5})),
    ("epoch=2/6 " + "x" * 5000, None),  # an absurdly long line
])
def test_epoch_lines(line, expected):
    assert parse_epoch_line(line) == expected


def test_the_last_complete_epoch_line_wins():
    log = "\n".join(["[ModelArts Service Log] running", "epoch=1/3 loss=0.5", "garbage \x00\xff",
                     "epoch=2/3 loss=0.3 accuracy=0.9", "noise after it", ""])
    assert last_epoch(log) == Epoch(2, 3, {"loss": 0.3, "accuracy": 0.9})
    partial = log + "epoch=3/3 loss=0.2"  # still being written: its loss may be cut short
    assert last_epoch(partial).progress == "2/3"
    assert last_epoch(partial, complete=True).progress == "3/3"  # the job has ended: the log is whole
    assert last_epoch("no epochs here\nat all\n", complete=True) is None
    assert last_epoch("") is None and last_epoch("", complete=True) is None


def test_progress_into_status():
    status = TrainingJobStatus()
    show_progress(status, None)  # a boot file that prints no epoch line: nothing set
    assert (status.progress, status.epoch, status.epochs, status.epoch_metrics) == (None, None, None, None)
    show_progress(status, last_epoch(BUILTIN + "\n"))
    assert (status.progress, status.epoch, status.epochs) == ("2/6", 2, 6)
    assert status.epoch_metrics == {"accuracy": 0.9802, "loss": 0.065, "seconds": 11.8}
    show_progress(status, None)  # the line left the log's tail window: the last one seen stays
    assert status.progress == "2/6"
    show_progress(status, Epoch(3, 6))
    assert status.epoch_metrics is None  # no figures: none, not last epoch's
    dumped = status.model_dump(by_alias=True, mode="json", exclude_none=True)
    assert dumped["progress"] == "3/6" and "epochMetrics" not in dumped


# Lines a boot file could print, made of the characters an epoch line uses, and any text at all.
NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
                   st.text("0123456789.eE+-", max_size=12))
PAIR = st.tuples(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,70}", fullmatch=True), NUMBER).map("=".join)
EPOCH_LINE = st.tuples(st.integers(-3, 10**10), st.integers(-3, 10**10), st.lists(PAIR, max_size=24)).map(
    lambda t: f"epoch={t[0]}/{t[1]} " + " ".join(t[2]))
LINE = st.one_of(EPOCH_LINE, st.text(), st.text("epoch=/0123456789 .\r\n\t=x"))


def fits_the_schema(epoch: Epoch) -> None:
    status = TrainingJobStatus()
    show_progress(status, epoch)
    TrainingJobStatus.model_validate(status.model_dump(by_alias=True, mode="json"))  # bounds: maxProperties, minimum
    assert 0 <= epoch.epoch <= epoch.epochs and len(epoch.metrics) <= MAX_METRICS
    assert all(math.isfinite(v) for v in epoch.metrics.values())


@settings(max_examples=400, deadline=None)
@given(LINE)
def test_any_line_parses_or_not_without_raising(line):
    found = parse_epoch_line(line)
    if found is not None:
        fits_the_schema(found)


@settings(max_examples=200, deadline=None)
@given(st.lists(LINE, max_size=30), st.booleans())
def test_any_log_gives_a_valid_progress_or_none(lines, complete):
    found = last_epoch("\n".join(lines), complete=complete)
    if found is not None:
        fits_the_schema(found)
        assert found.progress == f"{found.epoch}/{found.epochs}"
