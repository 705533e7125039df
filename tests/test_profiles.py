"""Profiles (arcsight, qradar, rfc5424-sd), dialects (azure-2021, cyberx-qradar), compatibility switches."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cefp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from syrupy.assertion import SnapshotAssertion

import siemfmt
from siemfmt import Alert
from siemfmt.formats.arcsight import LENGTHS
from tests.conftest import ALERT_FILES, fixed_clock, load_json
from tests.strategies import alert_records
from tests.test_contract import EXPECTED, REFERENCE
from tests.test_properties import CONTROL, check_one_line, ctl_to_space, group_of

PROFILES = ["arcsight", "qradar", "rfc5424-sd"]
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch_ms(a: Alert) -> str:
    return str((a.time - EPOCH) // timedelta(milliseconds=1))


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("path", ALERT_FILES, ids=lambda p: p.stem)
def test_profile_snapshot(path: Path, profile: str, snapshot: SnapshotAssertion) -> None:
    line = siemfmt.format_alert(load_json(path), profile=profile, clock=fixed_clock())  # type: ignore[arg-type]
    assert line == snapshot


@pytest.mark.parametrize("dialect", ["azure-2021"])
@pytest.mark.parametrize("fmt", ["text", "object", "cef", "leef"])
@pytest.mark.parametrize("path", ALERT_FILES[:12], ids=lambda p: p.stem)
def test_dialect_snapshot(path: Path, fmt: siemfmt.FormatName, dialect: str, snapshot: SnapshotAssertion) -> None:
    line = siemfmt.format_alert(load_json(path), fmt, dialect=dialect, clock=fixed_clock())
    assert line == snapshot
    assert siemfmt.parse(line).format == fmt


# --- arcsight ---------------------------------------------------------------------------------------


def ip_key(ip: str, v4: str, v6: str) -> str:
    return v4 if isinstance(ipaddress.ip_address(ip), ipaddress.IPv4Address) else v6


def expected_arcsight(a: Alert) -> list[tuple[str, str]]:
    def ext(value: str, limit: int | None = None) -> str:
        value = value[:limit] if limit else value
        return CONTROL.sub(lambda m: m.group() if m.group() in "\r\n" else " ", value)

    out = [("rt", epoch_ms(a)), ("msg", ext(a.message, 1023))]
    out.append(("cat", ext(group_of(a), 1023)))
    if a.protocol:
        out.append(("proto", ext(a.protocol, 31)))
    for d, v4, v6, label, mac, host in (
        (a.source, "src", "c6a2", "Source IPv6 Address", "smac", "shost"),
        (a.destination, "dst", "c6a3", "Destination IPv6 Address", "dmac", "dhost"),
    ):
        if d is None:
            continue
        if d.ip:
            key = ip_key(d.ip, v4, v6)
            out.append((key, d.ip))
            if key == v6:
                out.append((f"{v6}Label", label))
        if d.mac:
            out.append((mac, d.mac))
        if d.name:
            out.append((host, ext(d.name, 1023)))
    if a.uuid:
        out.append(("externalId", ext(a.uuid, 40)))
    out.append(("dvchost", ext(a.sensor_name, 100)))
    if a.sensor_ip:
        key = ip_key(a.sensor_ip, "dvc", "c6a1")
        out.append((key, a.sensor_ip))
        if key == "c6a1":
            out.append(("c6a1Label", "Device IPv6 Address"))
    out += [
        ("cs1", a.type.value),
        ("cs1Label", "Alert Type"),
        ("cs2", a.severity.value),
        ("cs2Label", "Alert Severity"),
    ]
    return out


@given(record=alert_records())
def test_arcsight_round_trip_and_cefp(record: dict[str, Any]) -> None:
    alert = siemfmt.load_alert(record)
    line = siemfmt.format_alert(alert, profile="arcsight", header="none", clock=fixed_clock())
    check_one_line(line)
    msg = siemfmt.parse(line)
    assert msg.header == (
        "0",
        "Microsoft",
        "Defender for IoT",
        ctl_to_space(alert.sensor_version[:31]),
        ctl_to_space(alert.title[:1023]),
        ctl_to_space(alert.title[:512]),
        {"Warning": "1", "Minor": "4", "Major": "8", "Critical": "10"}[alert.severity.value],
    )
    assert list(msg.fields) == expected_arcsight(alert)
    assert all(k.isalnum() for k, _ in msg.fields)
    theirs = cefp.parse(line)
    assert dict(msg.fields) == theirs["extension"]


def test_arcsight_lengths_are_enforced() -> None:
    line = siemfmt.format_alert(
        {**REFERENCE, "uuid": "u" * 100, "sensor_name": "s" * 200, "message": "m" * 2000, "protocol": "p" * 50},
        profile="arcsight",
        clock=fixed_clock(),
    )
    msg = siemfmt.parse(line)
    assert msg.get("externalId") == "u" * LENGTHS["externalId"] == "u" * 40
    assert msg.get("dvchost") == "s" * 100
    assert msg.get("msg") == "m" * 1023
    assert msg.get("proto") == "p" * 31


# --- qradar -----------------------------------------------------------------------------------------


@given(record=alert_records())
def test_qradar_round_trip(record: dict[str, Any]) -> None:
    alert = siemfmt.load_alert(record)
    line = siemfmt.format_alert(alert, profile="qradar", clock=fixed_clock())
    check_one_line(line, allow="^")
    msg = siemfmt.parse(line)
    assert msg.syslog.kind == "rfc5424"
    assert msg.format == "leef"
    assert msg.header[0] == "2.0"
    assert msg.header[5] == "^"
    fields = dict(msg.fields)
    assert fields["devTime"] == epoch_ms(alert)
    assert fields["sev"] == {"Warning": "1", "Minor": "4", "Major": "8", "Critical": "10"}[alert.severity.value]
    assert fields["cat"] == ctl_to_space(group_of(alert).replace("^", " "))
    assert fields["msg"] == ctl_to_space(alert.message.replace("^", " "))
    if alert.source and alert.source.ip:
        assert fields["src"] == alert.source.ip
    if alert.destination and alert.destination.mac:
        assert fields["dstMAC"] == alert.destination.mac
    assert len(fields) == len(msg.fields)


def test_qradar_header_has_milliseconds_and_usrname_when_known() -> None:
    line = siemfmt.format_alert(
        {**REFERENCE, "user_name": "operator1"},
        profile="qradar",
        clock=fixed_clock(datetime(2026, 3, 10, 8, 15, 31, 250000, tzinfo=timezone.utc)),
    )
    assert line.startswith("<9>1 2026-03-10T08:15:31.250Z Plant_A_Sensor - - - - LEEF:2.0|Microsoft|Defender for IoT|")
    assert siemfmt.parse(line).get("usrName") == "operator1"


# --- rfc5424-sd -------------------------------------------------------------------------------------


@given(record=alert_records())
def test_rfc5424_sd_round_trip(record: dict[str, Any]) -> None:
    alert = siemfmt.load_alert(record)
    line = siemfmt.format_alert(alert, profile="rfc5424-sd", clock=fixed_clock())
    check_one_line(line)
    msg = siemfmt.parse(line)
    assert msg.format == "sd"
    assert msg.syslog.sd[0][0] == "alert@32473"
    fields = dict(msg.fields)
    assert fields["sensor_name"] == ctl_to_space(alert.sensor_name)
    assert fields["title"] == ctl_to_space(alert.title)
    assert fields["alert_group"] == ctl_to_space(group_of(alert)) == msg.alert_group
    assert fields["severity"] == alert.severity.value
    # (compare as epoch ms: PEP 495 makes inter-zone == False for times in a DST fold)
    assert str((siemfmt.parse_time(fields["time"]) - EPOCH) // timedelta(milliseconds=1)) == epoch_ms(alert)
    if alert.uuid:
        assert fields["uuid"] == ctl_to_space(alert.uuid)
    assert msg.body == ctl_to_space(alert.message)


def test_rfc5424_sd_enterprise_number_and_header_rule() -> None:
    line = siemfmt.format_alert(REFERENCE, profile="rfc5424-sd", enterprise_number=4242, clock=fixed_clock())
    assert ' [alert@4242 sensor_name="Plant A Sensor" ' in line
    with pytest.raises(ValueError, match="header"):
        siemfmt.format_alert(REFERENCE, profile="rfc5424-sd", header="rfc3164", clock=fixed_clock())


def test_sd_values_are_escaped() -> None:
    line = siemfmt.format_alert({**REFERENCE, "title": 'a"b]c\\d'}, profile="rfc5424-sd", clock=fixed_clock())
    assert 'title="a\\"b\\]c\\\\d"' in line
    assert siemfmt.parse(line).get("title") == 'a"b]c\\d'


# --- dialects ---------------------------------------------------------------------------------------

CYBERX_SAMPLE = (
    "<9>May 5 12:29:23 sensor_Agent LEEF:1.0|CyberX|CyberX platform|2.5.0|CyberX platform Alert|"
    "devTime=May 05 2019 15:28:54 devTimeFormat=MMM dd yyyy HH:mm:ss sev=2 cat=XSense Alerts "
    "title=Device is Suspected to be Disconnected (Unresponsive) score=81 reporter=192.168.219.50 rta=0 "
    "alertId=6 engine=Operational senderName=sensor Agent UUID=5-1557059334000 site=Site zone=Zone "
    "actions=handle dst=192.168.2.2 dstName=192.168.2.2 msg=Device 192.168.2.2 is suspected to be "
    "disconnected (unresponsive)."
)


def test_cyberx_qradar_reproduces_the_only_real_line() -> None:
    """defender-formats.md §6, byte for byte but for the attribute separator (TAB here, spaces there)."""
    alert = {
        "sensor_name": "sensor Agent",
        "sensor_ip": "192.168.219.50",
        "sensor_version": "2.5.0",
        "time": 1557059334000,
        "title": "Device is Suspected to be Disconnected (Unresponsive)",
        "message": "Device 192.168.2.2 is suspected to be disconnected (unresponsive).",
        "severity": "Major",
        "type": "Operational",
        "destination": {"ip": "192.168.2.2"},
        "uuid": "5-1557059334000",
        "id": 6,
        "score": 81,
        "rta": 0,
        "site": "Site",
        "zone": "Zone",
        "actions": "handle",
    }
    line = siemfmt.format_alert(
        alert,
        "leef",
        dialect="cyberx-qradar",
        tz="Etc/GMT-3",  # UTC+3, the rule's time zone in the sample
        clock=fixed_clock(datetime(2019, 5, 5, 12, 29, 23, tzinfo=timezone.utc)),
    )
    assert line.count("\t") == 17
    assert line.replace("\t", " ") == CYBERX_SAMPLE
    assert siemfmt.parse(line).get("sev") == "2"


def test_cyberx_qradar_is_leef_only() -> None:
    with pytest.raises(ValueError, match="cyberx-qradar"):
        siemfmt.format_alert(REFERENCE, "cef", dialect="cyberx-qradar", clock=fixed_clock())


def test_azure_2021_labels() -> None:
    text = siemfmt.format_alert(REFERENCE, "text", dialect="azure-2021", clock=fixed_clock())
    assert "; Azure Defender for IoT Alert: Unauthorized PLC Program Upload; " in text
    assert "; Source ip: 10.1.2.3; " in text
    assert "; Destination ip: 10.1.2.50; " in text
    cef = siemfmt.format_alert(REFERENCE, "cef", dialect="azure-2021", clock=fixed_clock())
    assert "CEF:0|Azure Defender for IoT|Plant A Sensor|24.1.3|Azure Defender for IoT Alert|" in cef
    leef = siemfmt.format_alert(REFERENCE, "leef", dialect="azure-2021", clock=fixed_clock())
    assert "LEEF:1.0|Azure Defender for IoT|Sensor|24.1.3|Azure Defender for IoT Alert|" in leef
    obj = siemfmt.format_alert(REFERENCE, "object", dialect="azure-2021", clock=fixed_clock())
    assert obj == EXPECTED["object"]


def test_dialects_belong_to_the_defender_profile() -> None:
    with pytest.raises(ValueError, match="dialect"):
        siemfmt.format_alert(REFERENCE, profile="arcsight", dialect="azure-2021", clock=fixed_clock())
    with pytest.raises(ValueError, match="dialect"):
        siemfmt.format_alert(REFERENCE, "cef", dialect="azure-2019", clock=fixed_clock())


# --- compatibility switches --------------------------------------------------------------------------


def test_cef_header_space_switch() -> None:
    line = siemfmt.format_alert(REFERENCE, "cef", cef_header_space=True, clock=fixed_clock())
    assert "|Unauthorized PLC Program Upload|8| msg=Source device" in line
    assert siemfmt.parse(line).fields == siemfmt.parse(EXPECTED["cef"]).fields
    arcsight = siemfmt.format_alert(REFERENCE, profile="arcsight", cef_header_space=True, clock=fixed_clock())
    assert "|8| rt=" in arcsight


def test_unpadded_day_switch() -> None:
    fifth = fixed_clock(datetime(2026, 3, 5, 8, 15, 31, tzinfo=timezone.utc))
    assert siemfmt.format_alert(REFERENCE, "cef", pad_day=False, clock=fifth).startswith("<9>Mar 5 08:15:31 ")
    assert siemfmt.format_alert(REFERENCE, "cef", clock=fifth).startswith("<9>Mar  5 08:15:31 ")
    line = siemfmt.format_alert(REFERENCE, "cef", pad_day=False, clock=fifth)
    assert siemfmt.parse(line).syslog.timestamp == "Mar 5 08:15:31"


def test_profile_format_rules() -> None:
    with pytest.raises(ValueError, match="profile"):
        siemfmt.format_alert(REFERENCE, profile="splunk", clock=fixed_clock())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fmt"):
        siemfmt.format_alert(REFERENCE, "leef", profile="arcsight", clock=fixed_clock())
    with pytest.raises(ValueError, match="defender profile needs"):
        siemfmt.format_alert(REFERENCE, clock=fixed_clock())
    assert siemfmt.format_alert(REFERENCE, "cef", profile="arcsight", clock=fixed_clock()) == siemfmt.format_alert(
        REFERENCE, profile="arcsight", clock=fixed_clock()
    )


@pytest.mark.parametrize("path", ALERT_FILES[:12], ids=lambda p: p.stem)
def test_cyberx_dialect_snapshot(path: Path, snapshot: SnapshotAssertion) -> None:
    line = siemfmt.format_alert(load_json(path), "leef", dialect="cyberx-qradar", clock=fixed_clock())
    assert line == snapshot


AZURE_LABELS = {
    "Microsoft Defender for IoT Alert": "Azure Defender for IoT Alert",
    "Source IP": "Source ip",
    "Destination IP": "Destination ip",
}


@given(record=alert_records(), fmt=st.sampled_from(["text", "object", "cef", "leef"]))
def test_azure_2021_round_trip(record: dict[str, Any], fmt: siemfmt.FormatName) -> None:
    """The dialect changes labels and vendor strings, never a value."""
    alert = siemfmt.load_alert(record)
    current = siemfmt.parse(siemfmt.format_alert(alert, fmt, clock=fixed_clock()))
    old = siemfmt.parse(siemfmt.format_alert(alert, fmt, dialect="azure-2021", clock=fixed_clock()))
    assert old.fields == tuple((AZURE_LABELS.get(k, k) if fmt == "text" else k, v) for k, v in current.fields)
    if fmt in ("cef", "leef"):
        assert old.header[1] == "Azure Defender for IoT"
        assert old.header[4] == "Azure Defender for IoT Alert"


@given(record=alert_records())
def test_cyberx_round_trip(record: dict[str, Any]) -> None:
    alert = siemfmt.load_alert(record)
    line = siemfmt.format_alert(alert, "leef", dialect="cyberx-qradar", clock=fixed_clock())
    check_one_line(line, allow="\t")
    msg = siemfmt.parse(line)
    assert msg.header == (
        "1.0",
        "CyberX",
        "CyberX platform",
        ctl_to_space(alert.sensor_version),
        "CyberX platform Alert",
    )
    fields = dict(msg.fields)
    assert fields["title"] == ctl_to_space(alert.title)
    assert fields["msg"] == ctl_to_space(alert.message)
    assert fields["senderName"] == ctl_to_space(alert.sensor_name)
    assert fields["sev"] == str(alert.severity.rank)
    assert fields["engine"] == alert.type.value
    assert list(fields)[:4] == ["devTime", "devTimeFormat", "sev", "cat"]
    assert len(fields) == len(msg.fields)
