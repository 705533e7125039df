"""Shared test configuration: hypothesis profiles, the fixture alerts, a fixed clock."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from siemfmt.testing import ReceiverFactory, receivers
from tests.tls_pki import PKI, have_openssl, make_pki

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


# --- shared by the transport, RELP, rsyslog and CLI tests -------------------------------------------


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    """A throwaway CA, server and client certificates, and an untrusted CA with its own server."""
    if not have_openssl():
        pytest.skip("the openssl command is needed to make test certificates")
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def make_receiver() -> Iterator[ReceiverFactory]:
    """Like the plugin's ``syslog_receiver``, without needing the package's entry point installed."""
    with receivers() as make:
        yield make


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    """Every sender, receiver and helper thread started by a test is gone when it ends."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t not in before and t.name.startswith(("siemfmt", "test-"))]
    for t in left:
        t.join(5)
    assert not [t.name for t in left if t.is_alive()]


def closed_port() -> int:
    """A TCP port on 127.0.0.1 where nothing listens (connects are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
