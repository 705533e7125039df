"""siemfmt benchmarks: formatting, transport over loopback and peak memory, each against baselines.

Run ``./dev bench`` (``python -m benchmarks``); ``--smoke`` for a seconds-long check, ``--only``,
``--json FILE``, ``--check``. See ``docs/performance.md``.
"""

from __future__ import annotations

__all__: list[str] = []
