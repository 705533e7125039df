"""``python -m benchmarks [--smoke] [--only formatting|transport|memory] [--json FILE] [--check]``.

Runs in one process (the memory benchmark starts ``siemfmt send`` as a child, which is what it
measures), prints a table of messages/s with ratios to baselines measured in the same run, then the
targets with PASS/FAIL. Exits 0 whatever the timings, unless ``--check`` is given and a target fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import siemfmt
from benchmarks.formatting import run_formatting
from benchmarks.loopback import run_transport
from benchmarks.memory import run_memory
from benchmarks.pool import Pool, make_pool
from benchmarks.report import evaluate, machine, table, targets_table
from benchmarks.timing import Result, Settings

SUITES: dict[str, Callable[[Pool, Settings], list[Result]]] = {
    "formatting": run_formatting,
    "transport": run_transport,
    "memory": run_memory,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description="siemfmt benchmarks against baselines")
    p.add_argument("--smoke", action="store_true", help="tiny counts, one repetition: checks it runs (seconds)")
    p.add_argument(
        "--only", action="append", choices=list(SUITES), default=None, help="run only this suite (repeatable)"
    )
    p.add_argument("--json", metavar="FILE", default=None, help="also write the results as JSON to FILE")
    p.add_argument("--check", action="store_true", help="exit 1 if a target fails (timings are noisy: not for CI)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.for_mode(args.smoke)
    suites = args.only or list(SUITES)
    info = machine()
    mode = "smoke" if settings.smoke else "full"
    print(
        f"siemfmt {siemfmt.__version__} benchmarks ({mode}): {info['python']}, {info['cpus']} CPU(s), "
        f"{info['cpu_model']}; median of {settings.repeat} repetition(s)",
        flush=True,
    )
    pool = make_pool(settings.pool_size)
    results: list[Result] = []
    started = time.perf_counter()
    for name in suites:
        t0 = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results += SUITES[name](pool, settings)
        print(f"  {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    outcomes = evaluate(results)
    print()
    print(table(results))
    print()
    print("targets:")
    print(targets_table(outcomes))
    total = time.perf_counter() - started
    print(f"\ntotal {total:.1f} s", flush=True)
    if args.json:
        doc = {
            "siemfmt": siemfmt.__version__,
            "mode": mode,
            "machine": info,
            "settings": dataclasses.asdict(settings),
            "seconds": total,
            "results": [r.as_dict() for r in results],
            "targets": [o.as_dict() for o in outcomes],
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    if args.check and any(o.passed is False for o in outcomes):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
