"""syrupy snapshots of every fixture alert in every format under every header (fixed send time).

Update deliberately with ``./dev test tests/test_snapshots.py --snapshot-update`` and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

import siemfmt
from tests.conftest import ALERT_FILES, fixed_clock, load_json


def test_there_are_enough_fixtures() -> None:
    assert len(ALERT_FILES) >= 25


@pytest.mark.parametrize("header", ["rfc3164", "rfc5424", "none"])
@pytest.mark.parametrize("fmt", ["text", "object", "cef", "leef"])
@pytest.mark.parametrize("path", ALERT_FILES, ids=lambda p: p.stem)
def test_fixture_snapshot(
    path: Path, fmt: siemfmt.FormatName, header: siemfmt.syslog.HeaderKind, snapshot: SnapshotAssertion
) -> None:
    line = siemfmt.format_alert(load_json(path), fmt, header=header, clock=fixed_clock())
    assert line == snapshot
    # Every snapshot line also reads back as the format it was written in.
    assert siemfmt.parse(line).format == fmt
