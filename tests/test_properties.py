"""Properties over arbitrary alerts, for every format and header: one line, every field parses back
exactly (LEEF and CEF after their documented control-character mapping), header fields RFC-valid."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import siemfmt
from siemfmt import Alert
from siemfmt.formats import cef as cef_mod
from siemfmt.formats import leef as leef_mod
from tests.conftest import fixed_clock
from tests.strategies import alert_records

HEADERS = ["rfc3164", "rfc5424", "none"]
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
RFC3164_TS = re.compile(r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123]\d \d\d:\d\d:\d\d")
RFC5424_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
PRINTUSASCII = re.compile(r"[\x21-\x7e]{1,255}")
NA = "N/A"


def ctl_to_space(value: str) -> str:
    """The documented mapping of CEF headers and LEEF values: CRLF, then each control, -> one space."""
    return CONTROL.sub(" ", value.replace("\r\n", " "))


def cef_ext(value: str) -> str:
    """CEF extension values keep CR and LF (escaped on the wire); TAB and other controls -> space."""
    return re.sub(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]", " ", value)


def group_of(a: Alert) -> str:
    return siemfmt.resolve_group(a.alert_group, a.title)


def expected_text(a: Alert) -> list[tuple[str, str]]:
    src, dst = a.source, a.destination
    out = [
        ("CyberX platform name", a.sensor_name),
        ("Microsoft Defender for IoT Alert", a.title),
        ("Type", a.type.value),
        ("Severity", a.severity.value),
        ("Source", src.name if src and src.name else NA),
        ("Source IP", src.ip if src and src.ip else NA),
    ]
    out += [(k, v) for k, v in (("Protocol", src and src.protocol), ("Address", src and src.address)) if v]
    out += [
        ("Destination", dst.name if dst and dst.name else NA),
        ("Destination IP", dst.ip if dst and dst.ip else NA),
    ]
    out += [(k, v) for k, v in (("Protocol", dst and dst.protocol), ("Address", dst and dst.address)) if v]
    out += [("Message", a.message), ("Alert Group", group_of(a))]
    if a.uuid:
        out.append(("UUID", a.uuid))
    return out


def expected_object(a: Alert) -> list[tuple[str, str]]:
    t = a.time.astimezone(siemfmt.formats.base.resolve_tz("UTC"))
    out = [
        ("Sensor_name", a.sensor_name),
        ("Alert_time", t.strftime("%b %d %Y %H:%M:%S")),
        ("Alert_title", a.title),
        ("Alert_message", a.message),
        ("Alert_severity", a.severity.value),
        ("Alert_type", a.type.value),
        ("Protocol", a.protocol or NA),
    ]
    for prefix, d in (("Source", a.source), ("Destination", a.destination)):
        for key, attr in (("MAC", "mac"), ("IP", "ip"), ("name", "name"), ("vendor", "vendor"), ("OS", "os")):
            out.append((f"{prefix}_{key}", (getattr(d, attr) if d else None) or NA))
    out.append(("alert_group", group_of(a)))
    return out


def expected_cef(a: Alert) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    header = (
        "0",
        "Microsoft Defender for IoT",
        ctl_to_space(a.sensor_name),
        ctl_to_space(a.sensor_version),
        "Microsoft Defender for IoT Alert",
        ctl_to_space(a.title),
        {"Warning": "1", "Minor": "4", "Major": "8", "Critical": "10"}[a.severity.value],
    )
    ext = [("msg", cef_ext(a.message))]
    if a.protocol:
        ext.append(("protocol", cef_ext(a.protocol)))
    ext += [("severity", a.severity.value), ("type", a.type.value)]
    if a.uuid:
        ext.append(("UUID", cef_ext(a.uuid)))
    ext.append(("start", a.time.astimezone(siemfmt.formats.base.resolve_tz("UTC")).strftime("%b %d %Y %H:%M:%S")))
    for prefix, d in (("src", a.source), ("dst", a.destination)):
        if d and d.ip:
            ext.append((f"{prefix}_ip", d.ip))
        if d and d.mac:
            ext.append((f"{prefix}_mac", d.mac))
    # CEF 1.2: trailing spaces of the final extension value are not preserved by readers (CR and LF
    # are escaped on the wire, TAB became a space).
    ext.append(("cat", cef_ext(group_of(a)).rstrip(" ")))
    return header, ext


def expected_leef(a: Alert, delimiter: str | None = None) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    """LEEF 1.0 when ``delimiter`` is None, else LEEF 2.0 with that delimiter."""
    version = "1.0" if delimiter is None else "2.0"
    delimiter = delimiter or "\t"

    def m(v: str) -> str:
        return ctl_to_space(v.replace(delimiter, " "))

    header: tuple[str, ...] = (
        version,
        "Microsoft Defender for IoT",
        "Sensor",
        ctl_to_space(a.sensor_version),
        "Microsoft Defender for IoT Alert",
    )
    if version == "2.0":
        header += (delimiter,)
    out = [("title", m(a.title)), ("msg", m(a.message))]
    if a.protocol:
        out.append(("protocol", m(a.protocol)))
    out += [("severity", a.severity.value), ("type", a.type.value)]
    out.append(("start", a.time.astimezone(siemfmt.formats.base.resolve_tz("UTC")).strftime("%b %d %Y %H:%M:%S")))
    if a.source and a.source.ip:
        out.append(("src_ip", a.source.ip))
    if a.destination and a.destination.ip:
        out.append(("dst_ip", a.destination.ip))
    out.append(("cat", m(group_of(a))))
    return header, out


def check_one_line(line: str, allow: str = "") -> None:
    """No CR, no LF, no control character but the attribute delimiter ``allow``."""
    assert "\n" not in line
    assert "\r" not in line
    controls = set(CONTROL.findall(line)) - set(allow)
    assert not controls, f"control characters {controls!r} in output"


def check_header(msg: siemfmt.Message, header: str, alert: Alert) -> None:
    h = msg.syslog
    assert h.kind == header
    if header == "none":
        assert h.pri is None
        return
    assert h.pri == 9
    assert h.hostname is not None
    assert PRINTUSASCII.fullmatch(h.hostname)
    assert h.hostname == siemfmt.syslog.hostname_from(alert.sensor_name)[:255]
    assert h.timestamp is not None
    if header == "rfc3164":
        assert RFC3164_TS.fullmatch(h.timestamp)
    else:
        assert RFC5424_TS.fullmatch(h.timestamp)
        assert (h.app_name, h.procid, h.msgid, h.structured_data) == ("-", "-", "-", "-")


@pytest.mark.parametrize("header", HEADERS)
@given(record=alert_records())
def test_text_round_trip(header: siemfmt.syslog.HeaderKind, record: dict[str, Any]) -> None:
    alert = siemfmt.load_alert(record)
    line = siemfmt.format_alert(alert, "text", header=header, clock=fixed_clock())
    check_one_line(line)
    msg = siemfmt.parse(line)
    check_header(msg, header, alert)
    assert msg.format == "text"
    assert list(msg.fields) == expected_text(alert)
    assert msg.alert_group == group_of(alert)


@pytest.mark.parametrize("header", HEADERS)
@given(record=alert_records())
def test_object_round_trip(header: siemfmt.syslog.HeaderKind, record: dict[str, Any]) -> None:
    alert = siemfmt.load_alert(record)
    line = siemfmt.format_alert(alert, "object", header=header, clock=fixed_clock())
    check_one_line(line)
    msg = siemfmt.parse(line)
    check_header(msg, header, alert)
    assert msg.format == "object"
    assert list(msg.fields) == expected_object(alert)


@pytest.mark.parametrize("header", HEADERS)
@given(record=alert_records())
def test_cef_round_trip(header: siemfmt.syslog.HeaderKind, record: dict[str, Any]) -> None:
    alert = siemfmt.load_alert(record)
    line = siemfmt.format_alert(alert, "cef", header=header, clock=fixed_clock())
    check_one_line(line)
    msg = siemfmt.parse(line)
    check_header(msg, header, alert)
    assert msg.format == "cef"
    want_header, want_fields = expected_cef(alert)
    assert msg.header == want_header
    assert list(msg.fields) == want_fields


@pytest.mark.parametrize("header", HEADERS)
@given(record=alert_records())
def test_leef_round_trip(header: siemfmt.syslog.HeaderKind, record: dict[str, Any]) -> None:
    alert = siemfmt.load_alert(record)
    line = siemfmt.format_alert(alert, "leef", header=header, clock=fixed_clock())
    check_one_line(line, allow="\t")
    msg = siemfmt.parse(line)
    check_header(msg, header, alert)
    assert msg.format == "leef"
    want_header, want_fields = expected_leef(alert)
    assert msg.header == want_header
    assert list(msg.fields) == want_fields


@given(
    record=alert_records(),
    delimiter=st.sampled_from(["^", "|", "\\", "@", "~", "\t", "§", "\u2603"]),
    as_hex=st.booleans(),
)
def test_leef2_round_trip_any_delimiter(record: dict[str, Any], delimiter: str, as_hex: bool) -> None:
    alert = siemfmt.load_alert(record)
    line = siemfmt.format_alert(
        alert, "leef", leef_version="2.0", leef_delimiter=delimiter, leef_delimiter_hex=as_hex, clock=fixed_clock()
    )
    check_one_line(line, allow=delimiter)
    msg = siemfmt.parse(line)
    want_header, want_fields = expected_leef(alert, delimiter)
    assert msg.header == want_header
    assert list(msg.fields) == want_fields


@given(record=alert_records(), fmt=st.sampled_from(["text", "object", "cef", "leef"]))
def test_no_field_value_can_forge_a_field(record: dict[str, Any], fmt: siemfmt.FormatName) -> None:
    """Whatever the values hold, the parsed keys are exactly the format's keys, in the format's order."""
    alert = siemfmt.load_alert(record)
    msg = siemfmt.parse(siemfmt.format_alert(alert, fmt, clock=fixed_clock()))
    keys = [k for k, _ in msg.fields]
    expected = {
        "text": [k for k, _ in expected_text(alert)],
        "object": [k for k, _ in expected_object(alert)],
        "cef": [k for k, _ in expected_cef(alert)[1]],
        "leef": [k for k, _ in expected_leef(alert)[1]],
    }[fmt]
    assert keys == expected
    assert keys.count({"text": "Alert Group", "object": "alert_group"}.get(fmt, "cat")) == 1


def test_escapers_are_the_documented_ones() -> None:
    assert cef_mod.escape_header("a\\b|c\r\nd\te") == "a\\\\b\\|c d e"
    assert cef_mod.escape_extension("a\\b=c\r\nd\te|f") == "a\\\\b\\=c\\r\\nd e|f"
    assert leef_mod.sanitize("a\tb\r\nc^d", "^") == "a b c d"
