"""The results table, the targets with PASS/FAIL, the machine description."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.timing import Result

__all__ = ["BASELINES", "Target", "TargetOutcome", "evaluate", "machine", "ratio", "ratio_text", "table"]

HAND = "baseline: hand-written CEF f-string"
CEFEVENT = "baseline: cefevent 0.5.6"
TCP_STDLIB = "baseline: tcp stdlib SysLogHandler"
TCP_RAW = "baseline: tcp raw sendall"
UDP_STDLIB = "baseline: udp stdlib SysLogHandler"
UDP_RAW = "baseline: udp raw sendto"

# Per group: the rows every other row of the group is compared with, and their short labels.
BASELINES: dict[str, tuple[tuple[str, str], ...]] = {
    "formatting": ((HAND, "hand"), (CEFEVENT, "cefevent")),
    "tcp": ((TCP_STDLIB, "SysLogHandler"), (TCP_RAW, "raw")),
    "udp": ((UDP_STDLIB, "SysLogHandler"), (UDP_RAW, "raw")),
}


@dataclass(frozen=True, slots=True)
class Target:
    """``row`` must reach ``factor`` times ``baseline`` (msgs/s), or a custom check."""

    text: str
    row: str
    baseline: str | None = None
    factor: float = 0.0
    check: Callable[[Result], tuple[bool, str]] | None = None


@dataclass(frozen=True, slots=True)
class TargetOutcome:
    text: str
    passed: bool | None  # None: not measured in this run
    measured: str

    @property
    def status(self) -> str:
        return "n/a" if self.passed is None else ("PASS" if self.passed else "FAIL")

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.text, "status": self.status, "measured": self.measured}


def _peak_rss(limit_mb: float) -> Callable[[Result], tuple[bool, str]]:
    def check(result: Result) -> tuple[bool, str]:
        peak = float(result.extra["peak_rss_mb"])
        return peak < limit_mb, f"{peak:.1f} MB ({result.n:,} alerts)"

    return check


TARGETS = (
    Target("CEF from Alert >= 0.5x hand-written", "siemfmt cef from Alert", HAND, 0.5),
    Target("CEF from Alert >= 10x cefevent", "siemfmt cef from Alert", CEFEVENT, 10.0),
    Target("JSON line -> CEF >= 0.15x hand-written", "siemfmt JSON line -> cef", HAND, 0.15),
    Target("TCP send >= 3x SysLogHandler TCP", "tcp: siemfmt send + flush", TCP_STDLIB, 3.0),
    Target("TCP send >= 0.5x raw sendall", "tcp: siemfmt send + flush", TCP_RAW, 0.5),
    Target("TCP send_many >= 3x SysLogHandler TCP", "tcp: siemfmt send_many + flush", TCP_STDLIB, 3.0),
    Target("TCP send_many >= 0.5x raw sendall", "tcp: siemfmt send_many + flush", TCP_RAW, 0.5),
    Target(
        "RELP send >= 0.5x TCP send (default window)", "relp: siemfmt send + flush", "tcp: siemfmt send + flush", 0.5
    ),
    Target("peak RSS of siemfmt send < 100 MB", "memory", check=_peak_rss(100.0)),
)


def _find(results: list[Result], name: str) -> Result | None:
    for r in results:
        if r.name == name or (name == "memory" and r.group == "memory"):
            return r
    return None


def ratio(row: Result, base: Result) -> float:
    """``row``'s rate over ``base``'s: the median of the ratios round by round when both ran in the same
    rounds (``interleaved``), so that a slow spell of the machine, which slows both rows of a round,
    cancels out; otherwise the ratio of the medians."""
    if len(row.rates) == len(base.rates) > 1 and all(r > 0 for r in base.rates):
        return statistics.median(a / b for a, b in zip(row.rates, base.rates, strict=True))
    return row.rate / base.rate


def evaluate(results: list[Result]) -> list[TargetOutcome]:
    out: list[TargetOutcome] = []
    for t in TARGETS:
        row = _find(results, t.row)
        if row is None:
            out.append(TargetOutcome(t.text, None, "not run"))
            continue
        if t.check is not None:
            passed, measured = t.check(row)
            out.append(TargetOutcome(t.text, passed, measured))
            continue
        base = _find(results, t.baseline or "")
        if base is None:
            out.append(TargetOutcome(t.text, None, "baseline not run"))
            continue
        value = ratio(row, base)
        out.append(TargetOutcome(t.text, value >= t.factor, f"{value:.2f}x"))
    return out


def ratio_text(row: Result, results: list[Result]) -> str:
    parts = []
    for name, label in BASELINES.get(row.group, ()):
        base = _find(results, name)
        if base is not None and base is not row and base.rate > 0:
            parts.append(f"{ratio(row, base):.2f}x {label}")
    return ", ".join(parts)


def table(results: list[Result]) -> str:
    head = ("benchmark", "msgs/s", "ratio", "note")
    rows = [(r.name, f"{r.rate:,.0f}", ratio_text(r, results), r.note) for r in results]
    widths = [max(len(head[i]), *(len(row[i]) for row in rows)) for i in range(3)]
    lines = [f"{head[0]:<{widths[0]}}  {head[1]:>{widths[1]}}  {head[2]:<{widths[2]}}  {head[3]}"]
    lines.append("-" * (sum(widths) + 6 + len(head[3])))
    group = None
    for r, row in zip(results, rows, strict=True):
        if group is not None and r.group != group:
            lines.append("")
        group = r.group
        lines.append(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}".rstrip())
    return "\n".join(lines)


def targets_table(outcomes: list[TargetOutcome]) -> str:
    width = max(len(o.text) for o in outcomes)
    return "\n".join(f"{o.status:<4}  {o.text:<{width}}  {o.measured}" for o in outcomes)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 0
    return {
        "cpus": cpus,
        "cpu_model": _cpu_model(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "executable": sys.executable,
    }
