"""Byte-exact expectations: the reference alert and header examples of the output contract (§10)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

import siemfmt
from tests.conftest import fixed_clock

REFERENCE = {
    "sensor_name": "Plant A Sensor",
    "sensor_version": "24.1.3",
    "time": "2026-03-10T08:15:30.250Z",
    "title": "Unauthorized PLC Program Upload",
    "message": "Source device 10.1.2.3 uploaded a program to PLC 10.1.2.50.",
    "severity": "Major",
    "type": "Policy Violation",
    "protocol": "S7",
    "source": {"name": "eng-ws-01", "ip": "10.1.2.3", "mac": "00:1A:2B:3C:4D:5E"},
    "destination": {"name": "plc-50", "ip": "10.1.2.50", "mac": "00:1a:2b:3c:4d:60"},
    "uuid": "3-1773130530250",
}

# Contract §10, copied byte for byte ("\t" is the one TAB the contract shows as ⇥).
EXPECTED = {
    "text": (
        "<9>Mar 10 08:15:31 Plant_A_Sensor CyberX platform name: Plant A Sensor; Microsoft Defender for IoT Alert: "
        "Unauthorized PLC Program Upload; Type: Policy Violation; Severity: Major; Source: eng-ws-01; "
        "Source IP: 10.1.2.3; Destination: plc-50; Destination IP: 10.1.2.50; Message: Source device 10.1.2.3 "
        "uploaded a program to PLC 10.1.2.50.; Alert Group: Programming; UUID: 3-1773130530250"
    ),
    "object": (
        '<9>Mar 10 08:15:31 Plant_A_Sensor Sensor_name="Plant A Sensor" Alert_time="Mar 10 2026 08:15:30" '
        'Alert_title="Unauthorized PLC Program Upload" Alert_message="Source device 10.1.2.3 uploaded a program '
        'to PLC 10.1.2.50." Alert_severity=Major Alert_type="Policy Violation" Protocol=S7 '
        "Source_MAC=00:1a:2b:3c:4d:5e Source_IP=10.1.2.3 Source_name=eng-ws-01 Source_vendor=N/A Source_OS=N/A "
        "Destination_MAC=00:1a:2b:3c:4d:60 Destination_IP=10.1.2.50 Destination_name=plc-50 "
        "Destination_vendor=N/A Destination_OS=N/A alert_group=Programming"
    ),
    "cef": (
        "<9>Mar 10 08:15:31 Plant_A_Sensor CEF:0|Microsoft Defender for IoT|Plant A Sensor|24.1.3|"
        "Microsoft Defender for IoT Alert|Unauthorized PLC Program Upload|8|msg=Source device 10.1.2.3 uploaded "
        "a program to PLC 10.1.2.50. protocol=S7 severity=Major type=Policy Violation UUID=3-1773130530250 "
        "start=Mar 10 2026 08:15:30 src_ip=10.1.2.3 src_mac=00:1a:2b:3c:4d:5e dst_ip=10.1.2.50 "
        "dst_mac=00:1a:2b:3c:4d:60 cat=Programming"
    ),
    "leef": (
        "<9>Mar 10 08:15:31 Plant_A_Sensor LEEF:1.0|Microsoft Defender for IoT|Sensor|24.1.3|"
        "Microsoft Defender for IoT Alert|title=Unauthorized PLC Program Upload\tmsg=Source device 10.1.2.3 "
        "uploaded a program to PLC 10.1.2.50.\tprotocol=S7\tseverity=Major\ttype=Policy Violation\t"
        "start=Mar 10 2026 08:15:30\tsrc_ip=10.1.2.3\tdst_ip=10.1.2.50\tcat=Programming"
    ),
}


@pytest.mark.parametrize("fmt", ["text", "object", "cef", "leef"])
def test_reference_line_byte_for_byte(fmt: siemfmt.FormatName) -> None:
    assert siemfmt.format_alert(REFERENCE, fmt, clock=fixed_clock()) == EXPECTED[fmt]


@pytest.mark.parametrize("fmt", ["text", "object", "cef", "leef"])
def test_reference_line_from_alert_and_per_format_function(fmt: siemfmt.FormatName) -> None:
    alert = siemfmt.load_alert(REFERENCE)
    per_format = {
        "text": siemfmt.format_text,
        "object": siemfmt.format_object,
        "cef": siemfmt.format_cef,
        "leef": siemfmt.format_leef,
    }[fmt]
    assert per_format(alert, clock=fixed_clock()) == EXPECTED[fmt]


def test_the_reference_alert_group_comes_from_the_catalog() -> None:
    line = siemfmt.format_alert(REFERENCE, "cef", clock=fixed_clock(), infer_group=False)
    assert line.endswith(" cat=NA")


FIFTH = datetime(2026, 3, 5, 8, 15, 31, 42000, tzinfo=timezone.utc)


def test_rfc3164_header_pads_the_day_with_a_space() -> None:
    line = siemfmt.format_alert(REFERENCE, "cef", clock=fixed_clock(FIFTH))
    assert line.startswith("<9>Mar  5 08:15:31 Plant_A_Sensor CEF:0|")


def test_rfc5424_header_with_milliseconds() -> None:
    line = siemfmt.format_alert(REFERENCE, "cef", header="rfc5424", clock=fixed_clock(FIFTH))
    assert line.startswith("<9>1 2026-03-05T08:15:31.042Z Plant_A_Sensor - - - - CEF:0|")


def test_no_header() -> None:
    line = siemfmt.format_alert(REFERENCE, "cef", header="none", clock=fixed_clock())
    assert line == EXPECTED["cef"].split(" ", 4)[4]


def test_header_time_is_utc_whatever_the_clock_zone() -> None:
    from zoneinfo import ZoneInfo

    berlin = FIFTH.astimezone(ZoneInfo("Europe/Berlin"))
    line = siemfmt.format_alert(REFERENCE, "text", clock=fixed_clock(berlin))
    assert line.startswith("<9>Mar  5 08:15:31 ")


def test_start_in_europe_berlin() -> None:
    line = siemfmt.format_alert(REFERENCE, "cef", tz="Europe/Berlin", clock=fixed_clock())
    assert " start=Mar 10 2026 09:15:30 " in line
    obj = siemfmt.format_alert(REFERENCE, "object", tz="Europe/Berlin", clock=fixed_clock())
    assert 'Alert_time="Mar 10 2026 09:15:30"' in obj


def test_time_format_options() -> None:
    line = siemfmt.format_alert(REFERENCE, "cef", time_format="epoch-ms", clock=fixed_clock())
    assert " start=1773130530250 " in line
    line = siemfmt.format_alert(REFERENCE, "leef", time_format="iso", tz="Europe/Berlin", clock=fixed_clock())
    assert "\tstart=2026-03-10T09:15:30.250+01:00\t" in line


def test_pri_hostname_and_rfc5424_fields_are_options() -> None:
    line = siemfmt.format_alert(
        REFERENCE,
        "cef",
        header="rfc5424",
        hostname="sensor01.example.net",
        facility=16,
        severity=4,
        app_name="siemfmt",
        procid="42",
        msgid="ALERT",
        clock=fixed_clock(FIFTH),
    )
    assert line.startswith("<132>1 2026-03-05T08:15:31.042Z sensor01.example.net siemfmt 42 ALERT - CEF:0|")


def test_rfc5424_fields_are_cut_to_their_lengths() -> None:
    line = siemfmt.format_alert(
        REFERENCE, "cef", header="rfc5424", app_name="a" * 60, msgid="m" * 40, clock=fixed_clock()
    )
    parts = line.split(" ")
    assert parts[3] == "a" * 48
    assert parts[5] == "m" * 32


def test_leef_2_with_delimiter_as_character_or_hex() -> None:
    line = siemfmt.format_alert(REFERENCE, "leef", header="none", leef_version="2.0", clock=fixed_clock())
    assert line.startswith(
        "LEEF:2.0|Microsoft Defender for IoT|Sensor|24.1.3|Microsoft Defender for IoT Alert|^|title=Unauthorized"
    )
    assert "^msg=Source device" in line
    hexed = siemfmt.format_alert(
        REFERENCE, "leef", header="none", leef_version="2.0", leef_delimiter_hex=True, clock=fixed_clock()
    )
    assert "|Microsoft Defender for IoT Alert|x5E|title=" in hexed
    assert siemfmt.parse(hexed).fields == siemfmt.parse(line).fields


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("header", "rfc9999"),
        ("tz", "Mars/Olympus"),
        ("hostname", "has space"),
        ("facility", 24),
        ("severity", 8),
        ("time_format", "julian"),
        ("leef_version", "3.0"),
        ("leef_delimiter", "=="),
    ],
)
def test_bad_options_are_refused_with_the_option_name(option: str, value: object) -> None:
    options: dict[str, Any] = {option: value}
    with pytest.raises(ValueError, match=option):
        siemfmt.format_alert(REFERENCE, "leef", clock=fixed_clock(), **options)


def test_bad_format_name() -> None:
    with pytest.raises(ValueError, match="fmt"):
        siemfmt.format_alert(REFERENCE, "xml", clock=fixed_clock())  # type: ignore[arg-type]


def test_clock_is_not_read_without_a_header() -> None:
    def clock() -> datetime:
        raise AssertionError("clock read")

    siemfmt.format_alert(REFERENCE, "text", header="none", clock=clock)


@pytest.mark.parametrize("delimiter", [".", ":", "-", "+", " ", "=", "a", "7"])
def test_leef_delimiters_that_occur_in_addresses_and_times_are_refused(delimiter: str) -> None:
    with pytest.raises(ValueError, match="leef_delimiter"):
        siemfmt.format_alert(REFERENCE, "leef", leef_version="2.0", leef_delimiter=delimiter, clock=fixed_clock())


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("tz", None),
        ("tz", 5),
        ("pad_day", "no"),
        ("infer_group", "yes"),
        ("cef_header_space", 1),
        ("leef_delimiter", "\x00"),
    ],
)
def test_option_types_are_checked(option: str, value: object) -> None:
    options: dict[str, Any] = {option: value}
    if option == "leef_delimiter":
        options["leef_version"] = "2.0"
    with pytest.raises(ValueError, match=option):
        siemfmt.format_alert(REFERENCE, "leef", clock=fixed_clock(), **options)
