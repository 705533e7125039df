"""Every CEF line we write, read by the independent parser cefp, gives the same fields as ours."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cefp
import pytest
from hypothesis import given

import siemfmt
from tests.conftest import ALERT_FILES, fixed_clock, load_json
from tests.strategies import alert_records


def same_as_cefp(line: str) -> None:
    ours = siemfmt.parse(line)
    body = line[line.index("CEF:") :] if ours.syslog.kind != "none" else line
    theirs: dict[str, Any] = cefp.parse(body)
    assert ours.header == (
        theirs["version"],
        theirs["device"]["vendor"],
        theirs["device"]["product"],
        theirs["device"]["version"],
        theirs["device"]["event_class_id"],
        theirs["name"],
        theirs["severity"],
    )
    extension = dict(theirs["extension"])
    last = next(reversed(extension), None)
    if last is not None:  # cefp keeps the final value's trailing white space; CEF 1.2 (and we) do not
        extension[last] = extension[last].rstrip(" ")
    assert ours.as_dict() == extension
    assert len(ours.fields) == len(theirs["extension"])  # no key twice


@pytest.mark.parametrize("header", ["rfc3164", "rfc5424", "none"])
@pytest.mark.parametrize("path", ALERT_FILES, ids=lambda p: p.stem)
def test_fixtures_agree_with_cefp(path: Path, header: siemfmt.syslog.HeaderKind) -> None:
    same_as_cefp(siemfmt.format_alert(load_json(path), "cef", header=header, clock=fixed_clock()))


@given(record=alert_records())
def test_arbitrary_alerts_agree_with_cefp(record: dict[str, Any]) -> None:
    alert = siemfmt.load_alert(record)
    same_as_cefp(siemfmt.format_alert(alert, "cef", header="none", clock=fixed_clock()))
