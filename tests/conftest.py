"""Shared test configuration: hypothesis profiles, the fixture alerts, a fixed clock."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# quick by default; CI sets HYPOTHESIS_PROFILE=thorough (./dev test does when CI=true).
settings.register_profile("quick", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "thorough", max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
ALERT_FILES = sorted((FIXTURES / "alerts").glob("*.json"))
INVALID_FILES = sorted((FIXTURES / "invalid").glob("*.json"))
SEND_TIME = datetime(2026, 3, 10, 8, 15, 31, tzinfo=timezone.utc)


def load_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def fixed_clock(instant: datetime = SEND_TIME) -> Callable[[], datetime]:
    return lambda: instant


@pytest.fixture
def clock() -> Callable[[], datetime]:
    return fixed_clock()
