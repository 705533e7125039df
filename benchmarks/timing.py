"""Timing: warm-up, then the median of several repetitions, garbage collection off while timing."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["Result", "Settings", "cycled", "rate_of", "time_loop"]

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


def time_loop(
    run: Callable[[], object], n: int, repeat: int, warmup: Callable[[], object] | None = None
) -> list[float]:
    """Rates (messages/s) of ``repeat`` calls of ``run`` (each handles ``n`` messages), after one warm-up."""
    (warmup or run)()
    rates: list[float] = []
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            run()
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
        rates.append(rate_of(n, elapsed))
    return rates


def median(rates: list[float]) -> float:
    return statistics.median(rates)
