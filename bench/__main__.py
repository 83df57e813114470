"""Run the benchmarks and rewrite docs/benchmarks.md from bench/results.json.

    python -m bench              # every benchmark
    python -m bench --only model # one group; the others keep their last results
    python -m bench idle         # the same, as a positional (several may be named)
    python -m bench distributed  # the boot file on 1 and on 2 workers, full MNIST, side by side
    python -m bench idle --sizes 100   # the idle benchmark at one size; the other sizes keep theirs
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os

from bench.common import SUMMARY, load_results, machine, save_results
from bench.report import render

GROUPS = ["model", "distributed", "cloud", "demo", "idle"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("groups", nargs="*", metavar="GROUP", help=f"run only these ({', '.join(GROUPS)})")
    parser.add_argument("--only", choices=GROUPS, action="append")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="idle: numbers of objects (default 100 250 500)")
    args = parser.parse_args()
    unknown = sorted(set(args.groups) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group {', '.join(unknown)} (choose from {', '.join(GROUPS)})")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results = load_results()
    for group in [*args.groups, *(args.only or [])] or GROUPS:
        print(f"bench: {group} ...", flush=True)
        options = {"sizes": args.sizes, "previous": results.get(group)} if group == "idle" else {}
        results[group] = importlib.import_module(f"bench.{group}").run(**options)
        results[group]["measured_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        results[group]["machine"] = machine()
        save_results(results)
    SUMMARY.write_text(render(results))
    print(f"bench: wrote {SUMMARY}")


if __name__ == "__main__":
    main()
