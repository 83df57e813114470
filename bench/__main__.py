"""Run the benchmarks and rewrite docs/benchmarks.md from bench/results.json.

    python -m bench              # every benchmark
    python -m bench --only model # one group; the others keep their last results
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os

from bench.common import SUMMARY, load_results, machine, save_results
from bench.report import render

GROUPS = ["model", "cloud", "demo"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=GROUPS, action="append")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results = load_results()
    for group in args.only or GROUPS:
        print(f"bench: {group} ...", flush=True)
        results[group] = importlib.import_module(f"bench.{group}").run()
        results[group]["measured_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        results[group]["machine"] = machine()
        save_results(results)
    SUMMARY.write_text(render(results))
    print(f"bench: wrote {SUMMARY}")


if __name__ == "__main__":
    main()
