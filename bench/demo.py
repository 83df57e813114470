"""`modelarts-operator demo` timed end to end: the issue asks that it finish in a few minutes on 2 cores."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time

READY_LINE = re.compile(r"^\[\s*(\d+)s\] .*mnist-service: Ready", re.M)


def run() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "modelarts_operator.cli", "demo", "--folder", folder,
                                 "--image", "0"], capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"demo failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    ready = READY_LINE.search(result.stdout)
    return {
        "wall_s": round(wall, 1),
        "apply_to_service_ready_s": int(ready.group(1)) if ready else None,
        "predicted_correctly": "predicted digit: 7   true digit: 7" in result.stdout,
    }
