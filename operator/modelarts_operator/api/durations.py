"""Durations as the specs write them (`90s`, `45m`, `1h30m`, `2d`)."""

from __future__ import annotations

UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> int:
    """`1h30m`, `2h`, `90s`, `1d` -> seconds (the CRD pattern guarantees the form)."""
    total, number = 0, ""
    for char in text:
        if char.isdigit():
            number += char
        elif char in UNITS and number:
            total += int(number) * UNITS[char]
            number = ""
        else:
            raise ValueError(f"bad duration {text!r}: use forms like 90s, 45m, 1h30m, 2d")
    if number or total <= 0:
        raise ValueError(f"bad duration {text!r}: use forms like 90s, 45m, 1h30m, 2d")
    return total
