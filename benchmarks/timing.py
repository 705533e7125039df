"""Timing: warm-up, then the median of several repetitions, garbage collection off while timing."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["Case", "Result", "Settings", "cycled", "interleaved", "rate_of", "timed"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Settings:
    """How much work each benchmark does."""

    smoke: bool
    format_n: int  # messages per repetition, fast formatters
    slow_n: int  # messages per repetition, slow baselines (cefevent, logging handlers, JSON line -> CEF)
    transport_n: int  # messages per repetition, TCP and UDP
    memory_n: int  # alerts in the memory run
    repeat: int
    pool_size: int = 1000

    @classmethod
    def for_mode(cls, smoke: bool) -> Settings:
        if smoke:
            return cls(smoke=True, format_n=200, slow_n=200, transport_n=200, memory_n=2_000, repeat=1)
        return cls(smoke=False, format_n=150_000, slow_n=30_000, transport_n=100_000, memory_n=1_000_000, repeat=5)


@dataclass(slots=True)
class Result:
    """One benchmark row: messages per second (median), the count and the repetitions' rates."""

    name: str
    group: str
    rate: float
    n: int
    rates: list[float] = field(default_factory=list)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "group": self.group,
            "msgs_per_s": self.rate,
            "n": self.n,
            "rates": self.rates,
            "note": self.note,
            **self.extra,
        }


def cycled(pool: Sequence[T], n: int) -> list[T]:
    """``n`` items taken from ``pool`` round-robin (a list, so the loop does no slicing)."""
    reps, rest = divmod(n, len(pool))
    return list(pool) * reps + list(pool[:rest])


def rate_of(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


@dataclass(slots=True)
class Case:
    """One benchmark row to measure: ``trial()`` handles ``n`` messages and returns the seconds it took
    (``timed`` makes one from a plain loop); ``warmup()`` runs once first (default: one trial)."""

    name: str
    group: str
    n: int
    trial: Callable[[], float]
    warmup: Callable[[], object] | None = None
    note: str = ""


def timed(run: Callable[[], object]) -> Callable[[], float]:
    """A trial that times one call of ``run`` with ``time.perf_counter``."""

    def trial() -> float:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start

    return trial


def interleaved(cases: Sequence[Case], repeat: int) -> list[Result]:
    """Warm every case up, then run ``repeat`` rounds of one trial of each case in turn; one Result per
    case with the median rate. Taking turns, rather than all repetitions of one case and then the
    next, spreads a slow spell of a shared machine over every row compared in the same run. Garbage
    collection is off during each trial."""
    for case in cases:
        (case.warmup or case.trial)()
    rates: list[list[float]] = [[] for _ in cases]
    for _ in range(repeat):
        for case, case_rates in zip(cases, rates, strict=True):
            gc.collect()
            gc.disable()
            try:
                seconds = case.trial()
            finally:
                gc.enable()
            case_rates.append(rate_of(case.n, seconds))
    return [Result(c.name, c.group, median(r), c.n, r, c.note) for c, r in zip(cases, rates, strict=True)]


def median(rates: list[float]) -> float:
    return statistics.median(rates)
