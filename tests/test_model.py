"""The alert record: names and aliases, time parsing, addresses, severities, types, and errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import siemfmt
from siemfmt import Alert, AlertType, AlertValidationError, Severity, load_alert, parse_time
from tests.conftest import ALERT_FILES, INVALID_FILES, load_json

BASE: dict[str, Any] = {
    "sensor_name": "S",
    "time": "2026-03-10T08:15:30Z",
    "title": "T",
    "message": "M",
    "severity": "Major",
    "type": "Malware",
}


def alert(**changes: Any) -> Alert:
    return load_alert({**BASE, **changes})


@pytest.mark.parametrize("path", ALERT_FILES, ids=lambda p: p.stem)
def test_every_fixture_is_a_valid_alert(path: Path) -> None:
    assert isinstance(load_alert(load_json(path)), Alert)


# fixture -> (field, the words of the rule)
INVALID = {
    "01-missing-title": ("title", "is required"),
    "02-severity-high": ("severity", "is not a severity"),
    "03-type-intrusion": ("type", "is not an alert type"),
    "04-bad-ip-octet": ("source.ip", "is not an IPv4 or IPv6 address"),
    "05-bad-mac-five-octets": ("destination.mac", "is not a 48-bit MAC"),
    "06-time-garbage": ("time", "is not a time"),
    "07-missing-sensor-name": ("sensor_name", "is required"),
    "08-time-boolean": ("time", "is a boolean"),
}


@pytest.mark.parametrize("path", INVALID_FILES, ids=lambda p: p.stem)
def test_invalid_fixtures_name_field_value_and_rule(path: Path) -> None:
    field, rule = INVALID[path.stem]
    record = load_json(path)
    with pytest.raises(AlertValidationError) as err:
        load_alert(record)
    assert [e.field for e in err.value.errors] == [field]
    assert rule in str(err.value)
    assert field in str(err.value)
    top = field.split(".")[0]
    if top in record:  # the offending value is quoted in the message
        value = record[top] if "." not in field else record[top][field.split(".")[1]]
        assert err.value.errors[0].value == value
        assert repr(value)[:40] in str(err.value)


def test_errors_are_value_errors_and_siemfmt_errors() -> None:
    with pytest.raises(ValueError):
        alert(severity="High")
    with pytest.raises(siemfmt.SiemfmtError):
        alert(severity="High")


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(AlertValidationError) as err:
        load_alert({"time": "x", "severity": "y"})
    fields = {e.field for e in err.value.errors}
    assert fields == {"sensor_name", "time", "title", "message", "severity", "type"}


def test_not_a_mapping() -> None:
    with pytest.raises(AlertValidationError, match="must be a JSON object"):
        load_alert(["not", "a", "record"])  # type: ignore[arg-type]


def test_defaults_fill_missing_fields_only() -> None:
    record = {k: v for k, v in BASE.items() if k != "sensor_name"}
    assert load_alert(record, defaults={"sensor_name": "Default"}).sensor_name == "Default"
    assert load_alert(BASE, defaults={"sensor_name": "Default"}).sensor_name == "S"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Major", Severity.MAJOR),
        ("MAJOR", Severity.MAJOR),
        ("critical", Severity.CRITICAL),
        (" minor ", Severity.MINOR),
    ],
)
def test_severity_any_case(given: str, expected: Severity) -> None:
    assert alert(severity=given).severity is expected


def test_severity_rank_orders_warning_to_critical() -> None:
    assert [s.rank for s in Severity] == [0, 1, 2, 3]
    assert Severity.MAJOR.rank > Severity.MINOR.rank


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Policy Violation", AlertType.POLICY_VIOLATION),
        ("POLICY_VIOLATION", AlertType.POLICY_VIOLATION),
        ("protocol violation", AlertType.PROTOCOL_VIOLATION),
        ("ANOMALY", AlertType.ANOMALY),
        ("operational", AlertType.OPERATIONAL),
    ],
)
def test_type_any_case_and_api_style(given: str, expected: AlertType) -> None:
    assert alert(type=given).type is expected


def test_engine_is_an_alias_of_type_and_both_is_an_error() -> None:
    record = {k: v for k, v in BASE.items() if k != "type"}
    assert load_alert({**record, "engine": "MALWARE"}).type is AlertType.MALWARE
    with pytest.raises(AlertValidationError, match="type: 'MALWARE' is given twice, as 'engine' and as 'type'") as err:
        load_alert({**BASE, "engine": "MALWARE"})
    assert [e.field for e in err.value.errors] == ["type"]


def test_defaults_fill_fields_whatever_the_record_calls_them() -> None:
    api_record = {"sensorName": "From record", **{k: v for k, v in BASE.items() if k != "sensor_name"}}
    assert load_alert(api_record, defaults={"sensor_name": "Default"}).sensor_name == "From record"
    assert load_alert(BASE, defaults={"sensorName": "Default"}).sensor_name == "S"
    record = {k: v for k, v in BASE.items() if k != "sensor_name"}
    assert load_alert(record, defaults={"sensorName": "Default"}).sensor_name == "Default"


@pytest.mark.parametrize(
    ("address", "rule"),
    [("not-an-address", "is neither an IP nor a MAC address"), (42, "must be an IP or MAC address as text")],
)
def test_bad_device_address_is_refused_even_when_the_device_has_one(address: object, rule: str) -> None:
    with pytest.raises(AlertValidationError, match=rule) as err:
        alert(source={"ip": "10.0.0.1"}, sourceDeviceAddress=address)
    assert err.value.errors[0].field == "sourceDeviceAddress"
    assert err.value.errors[0].value == address


def test_blank_required_text_is_refused_and_blank_version_is_empty() -> None:
    with pytest.raises(AlertValidationError, match="title: '   ' must not be empty or blank"):
        alert(title="   ")
    with pytest.raises(AlertValidationError, match="sensor_name"):
        alert(sensor_name="\t")
    assert alert(sensor_version="  ").sensor_version == ""


def test_defender_api_names() -> None:
    a = load_alert(
        {
            "sensorName": "S",
            "sensorIp": "10.0.0.1",
            "sensorVersion": "22.3",
            "time": 1509881077000,
            "title": "Internet Access Detected",
            "message": "m",
            "severity": "Major",
            "engine": "Policy Violation",
            "sourceDeviceAddress": "192.168.0.13",
            "destinationDeviceAddress": "00-1A-2B-3C-4D-5E",
            "remediationSteps": ["step"],
            "zoneName": "Z",
            "id": 1,
        }
    )
    assert (a.sensor_name, a.sensor_ip, a.sensor_version) == ("S", "10.0.0.1", "22.3")
    assert a.source is not None and a.source.ip == "192.168.0.13"
    assert a.destination is not None and a.destination.mac == "00:1a:2b:3c:4d:5e"
    assert a.model_extra == {"remediation_steps": ["step"], "zone_name": "Z", "id": 1}


def test_device_address_does_not_override_an_explicit_device_field() -> None:
    a = alert(source={"ip": "10.0.0.1", "name": "n"}, sourceDeviceAddress="10.0.0.2")
    assert a.source is not None and (a.source.ip, a.source.name) == ("10.0.0.1", "n")


UTC_INSTANT = datetime(2026, 3, 10, 8, 15, 30, 250000, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "given",
    [
        1773130530250,
        "1773130530250",
        "2026-03-10T08:15:30.250Z",
        "2026-03-10T08:15:30.250z",
        "2026-03-10T11:15:30.250+03:00",
        "2026-03-10T08:15:30.250",  # naive means UTC
        "2026-03-10 08:15:30.250",
        "Tue, 10 Mar 2026 08:15:30.250 GMT",
        "March 10, 2026 8:15:30.250 AM",
        UTC_INSTANT,
    ],
)
def test_time_forms(given: object) -> None:
    assert parse_time(given) == UTC_INSTANT


def test_epoch_seconds_below_10_to_the_11() -> None:
    assert parse_time(1773130530) == UTC_INSTANT.replace(microsecond=0)
    assert parse_time("99999999999").year == 5138  # still seconds
    assert parse_time(10**11) == datetime(1973, 3, 3, 9, 46, 40, tzinfo=timezone.utc)


def test_offsets_are_kept_and_naive_datetimes_are_utc() -> None:
    t = parse_time("2026-03-10T11:15:30+03:00")
    assert t.utcoffset() == timedelta(hours=3)
    assert parse_time(datetime(2026, 3, 10)).tzinfo is timezone.utc


@pytest.mark.parametrize("given", [True, "", "soon", 10**30, None, [1]])
def test_bad_times(given: object) -> None:
    with pytest.raises(ValueError):
        parse_time(given)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("10.1.2.3", "10.1.2.3"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("::FFFF:10.1.2.3", "::ffff:10.1.2.3"),
        (" 10.1.2.3 ", "10.1.2.3"),
    ],
)
def test_ip_canonical_form(given: str, canonical: str) -> None:
    a = alert(source={"ip": given}, sensor_ip=given)
    assert a.source is not None and a.source.ip == canonical
    assert a.sensor_ip == canonical


@pytest.mark.parametrize(
    "given", ["00:1A:2B:3C:4D:5E", "00-1a-2b-3c-4d-5e", "001A.2B3C.4D5E", "001a2b3c4d5e", "00:1a:2b:3c:4d:5e"]
)
def test_mac_canonical_form(given: str) -> None:
    a = alert(destination={"mac": given})
    assert a.destination is not None and a.destination.mac == "00:1a:2b:3c:4d:5e"


@pytest.mark.parametrize("given", ["00:1A:2B:3C:4D", "00:1A-2B:3C:4D:5E", "gg:1a:2b:3c:4d:5e", "00:1a:2b:3c:4d:5e:6f"])
def test_bad_macs(given: str) -> None:
    with pytest.raises(AlertValidationError, match=r"destination\.mac"):
        alert(destination={"mac": given})


def test_blank_optional_fields_are_absent_and_empty_devices_vanish() -> None:
    a = alert(protocol="  ", uuid="", alert_group=" ", source={"name": "", "ip": None}, sensor_version=None)
    assert (a.protocol, a.uuid, a.alert_group, a.source, a.sensor_version) == (None, None, None, None, "")


def test_required_text_must_not_be_empty_but_message_may_be() -> None:
    assert alert(message="").message == ""
    with pytest.raises(AlertValidationError, match="title: '' must not be empty"):
        alert(title="")
    with pytest.raises(AlertValidationError, match="sensor_name"):
        alert(sensor_name="")


def test_unknown_device_field_is_refused() -> None:
    with pytest.raises(AlertValidationError, match=r"source\.colour: 'red' is not a known field"):
        alert(source={"colour": "red"})


def test_alert_is_immutable() -> None:
    a = alert()
    with pytest.raises(Exception, match="frozen"):
        a.title = "x"


# --- the fast path agrees with full validation ----------------------------------------------------

from hypothesis import given  # noqa: E402

from siemfmt.model import _fast_alert  # noqa: E402
from tests.strategies import alert_records  # noqa: E402


def full(record: dict[str, Any]) -> Alert | None:
    try:
        return Alert.model_validate(record)
    except Exception:
        return None


def same(a: Alert, b: Alert) -> bool:
    return (
        a == b
        and a.model_fields_set == b.model_fields_set
        and all(type(getattr(a, f)) is type(getattr(b, f)) for f in Alert.model_fields)
        and (a.source is None or a.source.model_fields_set == b.source.model_fields_set)  # type: ignore[union-attr]
        and a.model_dump() == b.model_dump()
    )


@given(record=alert_records())
def test_fast_path_equals_full_validation(record: dict[str, Any]) -> None:
    fast = _fast_alert(record)
    if fast is not None:
        slow = full(record)
        assert slow is not None
        assert same(fast, slow)


@pytest.mark.parametrize("path", ALERT_FILES + INVALID_FILES, ids=lambda p: p.stem)
def test_fast_path_on_fixtures(path: Path) -> None:
    record = load_json(path)
    fast = _fast_alert(record)
    slow = full(record)
    if fast is not None:
        assert slow is not None
        assert same(fast, slow)


def test_fast_path_is_taken_for_plain_records_only() -> None:
    from tests.test_contract import REFERENCE

    assert _fast_alert(dict(REFERENCE)) is not None
    assert _fast_alert({**REFERENCE, "engine": "Malware"}) is None  # alias: full path
    assert _fast_alert({**REFERENCE, "source": {"ip": "2001:DB8::1"}}) is None  # not canonical
    assert _fast_alert({**REFERENCE, "severity": "major"}) is None  # needs coercion
    assert _fast_alert({**REFERENCE, "time": True}) is None
