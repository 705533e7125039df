"""The alert record (contract section 1): ``Alert``, ``Device``, ``Severity``, ``AlertType``.

Input comes as our snake_case names or the Defender API's camelCase ones; a record that breaks a rule
raises :class:`~siemfmt.errors.AlertValidationError` naming the field, the value and the rule.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from dateutil import parser as dateutil_parser
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from siemfmt.errors import MISSING, AlertValidationError, FieldError

__all__ = ["Alert", "AlertType", "Device", "Severity", "load_alert", "normalize_record", "parse_time"]


class Severity(str, Enum):
    """The sensor's alert severity, in rising order (contract §1)."""

    WARNING = "Warning"
    MINOR = "Minor"
    MAJOR = "Major"
    CRITICAL = "Critical"

    @property
    def rank(self) -> int:
        """0 for Warning up to 3 for Critical: ``a.rank >= b.rank`` is "at least as severe"."""
        return _SEVERITY_RANK[self]

    @classmethod
    def coerce(cls, value: object) -> Severity:
        """Any letter case of a canonical spelling."""
        if isinstance(value, Severity):
            return value
        if isinstance(value, str):
            found = _SEVERITY_BY_KEY.get(value.strip().casefold())
            if found is not None:
                return found
        raise ValueError(f"is not a severity (one of {', '.join(s.value for s in cls)}, any letter case)")


_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}
_SEVERITY_BY_KEY = {s.value.casefold(): s for s in Severity}


class AlertType(str, Enum):
    """The detection engine (contract §1): ``type`` or the API's ``engine``."""

    PROTOCOL_VIOLATION = "Protocol Violation"
    POLICY_VIOLATION = "Policy Violation"
    MALWARE = "Malware"
    ANOMALY = "Anomaly"
    OPERATIONAL = "Operational"

    @classmethod
    def coerce(cls, value: object) -> AlertType:
        """Any letter case, and the API's ``POLICY_VIOLATION`` style."""
        if isinstance(value, AlertType):
            return value
        if isinstance(value, str):
            found = _TYPE_BY_KEY.get(_WS.sub(" ", value.replace("_", " ")).strip().casefold())
            if found is not None:
                return found
        raise ValueError(
            f"is not an alert type (one of {', '.join(t.value for t in cls)}, any case, or POLICY_VIOLATION style)"
        )


_WS = re.compile(r"\s+")
_TYPE_BY_KEY = {t.value.casefold(): t for t in AlertType}


# --- addresses ------------------------------------------------------------------------------------

_MAC_SEPARATED = re.compile(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}")
_MAC_CISCO = re.compile(r"[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}")
_MAC_BARE = re.compile(r"[0-9A-Fa-f]{12}")


def canonical_ip(value: str) -> str:
    """An IPv4 or IPv6 address in canonical (compressed, lower-case) form."""
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        raise ValueError("is not an IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"  # RFC 5952 §5, the same on every Python version
    return str(address)


def canonical_mac(value: str) -> str:
    """A 48-bit MAC (``aa:bb:..``, ``aa-bb-..``, ``aabb.ccdd.eeff`` or 12 hex digits) as ``aa:bb:cc:dd:ee:ff``."""
    text = value.strip()
    if _MAC_SEPARATED.fullmatch(text) or _MAC_CISCO.fullmatch(text) or _MAC_BARE.fullmatch(text):
        digits = re.sub(r"[^0-9A-Fa-f]", "", text).lower()
        return ":".join(digits[i : i + 2] for i in range(0, 12, 2))
    raise ValueError("is not a 48-bit MAC address (six hex pairs)")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return True


# --- time -----------------------------------------------------------------------------------------

_EPOCH_SECONDS_BELOW = 10**11  # contract §1: numbers below 10^11 are epoch seconds, others milliseconds
_DIGITS = re.compile(r"-?\d+")


def parse_time(value: object) -> datetime:
    """An instant from epoch ms/s (int or digit string), ISO 8601, or any text dateutil reads; naive = UTC."""
    if isinstance(value, bool):
        raise ValueError("is a boolean, not a time")
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, (int, float)):
        result = _from_epoch(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("is empty, not a time")
        if _DIGITS.fullmatch(text):
            result = _from_epoch(int(text))
        else:
            try:  # fast path: ISO 8601 (3.10's fromisoformat lacks 'Z')
                result = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
            except ValueError:
                try:
                    result = dateutil_parser.parse(text)
                except (ValueError, OverflowError):
                    raise ValueError("is not a time (epoch ms/s, ISO 8601 or a date dateutil reads)") from None
    else:
        raise ValueError("is not a time (expected epoch number, ISO 8601 or date text)")
    if result.tzinfo is None or result.utcoffset() is None:
        result = result.replace(tzinfo=timezone.utc)
    return result


# One day inside datetime's range at each end, so the instant can be shown in any time zone (±26 h).
_EARLIEST = datetime(1, 1, 3, tzinfo=timezone.utc)
_LATEST = datetime(9999, 12, 29, tzinfo=timezone.utc)


def _in_range(instant: datetime) -> datetime:
    """The instant in UTC, if every time zone can show it; else a ValueError naming the rule."""
    try:
        utc = instant.astimezone(timezone.utc)
    except OverflowError:
        utc = None
    if utc is None or not _EARLIEST <= utc <= _LATEST:
        raise ValueError("is out of range (0001-01-03 to 9999-12-29 UTC, so every time zone can show it)")
    return utc


def _from_epoch(number: float) -> datetime:
    seconds = number if abs(number) < _EPOCH_SECONDS_BELOW else number / 1000
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise ValueError("is out of range for an epoch time") from None


# --- records --------------------------------------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def _snake(name: str) -> str:
    return _CAMEL.sub(r"_\1", name).lower()


def _blank_to_none(value: object) -> object:
    """Optional text fields: an empty or all-blank string counts as absent (contract §5)."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


class Device(BaseModel):
    """A source or destination device; every field optional."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    name: str | None = None
    ip: str | None = None
    mac: str | None = None
    vendor: str | None = None
    os: str | None = None
    protocol: str | None = None
    address: str | None = None

    @field_validator("name", "vendor", "os", "protocol", "address", "ip", "mac", mode="before")
    @classmethod
    def _blank(cls, value: object) -> object:
        return _blank_to_none(value)

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        return None if value is None else canonical_ip(value)

    @field_validator("mac")
    @classmethod
    def _mac(cls, value: str | None) -> str | None:
        return None if value is None else canonical_mac(value)

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, f) for f in type(self).model_fields)


# Defender API / webhook names -> ours (contract §1). Other camelCase keys are snake_cased and kept.
_ALIASES = {
    "sensorName": "sensor_name",
    "sensorIp": "sensor_ip",
    "sensorIP": "sensor_ip",
    "sensorVersion": "sensor_version",
    "engine": "type",
    "alertGroup": "alert_group",
}
_DEVICE_ADDRESS = {"sourceDeviceAddress": "source", "destinationDeviceAddress": "destination"}


class Alert(BaseModel):
    """One alert, validated and canonical. Unknown fields are kept (``alert.model_extra``)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    sensor_name: str
    sensor_ip: str | None = None
    sensor_version: str = ""
    time: datetime
    title: str
    message: str
    severity: Severity
    type: AlertType
    protocol: str | None = None
    source: Device | None = None
    destination: Device | None = None
    uuid: str | None = None
    alert_group: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _rename(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        out, errors = normalize_record(data)
        if errors:
            raise ValueError(str(errors[0]))
        return out

    @field_validator("sensor_name", "title")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty or blank")
        return value

    @field_validator("sensor_ip", "protocol", "uuid", "alert_group", mode="before")
    @classmethod
    def _blank(cls, value: object) -> object:
        return _blank_to_none(value)

    @field_validator("sensor_version", mode="before")
    @classmethod
    def _version(cls, value: object) -> object:
        return "" if value is None or (isinstance(value, str) and not value.strip()) else value

    @field_validator("sensor_ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        return None if value is None else canonical_ip(value)

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: object) -> datetime:
        # Stored as the same instant in UTC: every output renders from UTC or the configured zone.
        return _in_range(parse_time(value))

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: object) -> Severity:
        return Severity.coerce(value)

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: object) -> AlertType:
        return AlertType.coerce(value)

    @field_validator("source", "destination", mode="after")
    @classmethod
    def _empty_device(cls, value: Device | None) -> Device | None:
        return None if value is None or value.is_empty else value

    @classmethod
    def from_record(cls, record: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> Alert:
        """Validate a plain record; ``defaults`` fill fields it lacks. Raises AlertValidationError."""
        return load_alert(record, defaults=defaults)


def normalize_record(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """Our names for the Defender API's (contract §1): aliases renamed, other camelCase keys snake_cased,
    ``sourceDeviceAddress`` / ``destinationDeviceAddress`` put in the device (an IP to ``ip``, a MAC to
    ``mac``, never over a value the device already has). Returns the record and what was wrong."""
    out: dict[str, Any] = {}
    errors: list[FieldError] = []
    addresses: list[tuple[str, str, Any]] = []
    for key, value in data.items():
        if not isinstance(key, str):
            out[key] = value
        elif key in _DEVICE_ADDRESS:
            addresses.append((key, _DEVICE_ADDRESS[key], value))
        elif key in _ALIASES:
            target = _ALIASES[key]
            if target in data:
                errors.append(FieldError(target, value, f"is given twice, as {key!r} and as {target!r}; use one"))
            out[target] = value
        else:
            out[key if key in Alert.model_fields else _snake(key)] = value
    for key, side, address in addresses:
        if address is None or (isinstance(address, str) and not address.strip()):
            continue
        if not isinstance(address, str):
            errors.append(FieldError(key, address, "must be an IP or MAC address as text"))
            continue
        slot = "ip" if _is_ip(address) else "mac"
        if slot == "mac":
            try:
                canonical_mac(address)
            except ValueError:
                errors.append(FieldError(key, address, "is neither an IP nor a MAC address"))
                continue
        device = out.get(side)
        if device is None:
            out[side] = {slot: address}
        elif isinstance(device, Mapping):
            out[side] = {slot: address, **device}  # the device's own value wins
    return out, errors


def load_alert(record: Alert | Mapping[str, Any], *, defaults: Mapping[str, Any] | None = None) -> Alert:
    """An :class:`Alert` from an Alert or a plain mapping; errors become AlertValidationError."""
    if isinstance(record, Alert):
        return record
    if not isinstance(record, Mapping):
        raise AlertValidationError([FieldError("<record>", record, "must be a JSON object / mapping")])
    data: Mapping[str, Any] = record
    if defaults or not (type(record) is dict and record.keys() <= _ALERT_KEYS):
        data, errors = normalize_record(record)
        if defaults:
            given, default_errors = normalize_record(defaults)
            errors += default_errors
            data = {**given, **data}  # defaults fill only what the record lacks, whatever its names
        if errors:
            raise AlertValidationError(errors)
    fast = _fast_alert(data)
    if fast is not None:
        return fast
    try:
        return Alert.model_validate(data)
    except ValidationError as exc:
        raise AlertValidationError(_field_errors(exc, data)) from None


def _field_errors(exc: ValidationError, data: Mapping[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not isinstance(p, int)) or "<record>"
        rule = str(err["msg"])
        if rule.startswith("Value error, "):
            rule = rule[len("Value error, ") :]
        elif err["type"] == "missing":
            errors.append(FieldError(loc, MISSING, "is required"))
            continue
        elif err["type"] == "extra_forbidden":
            rule = "is not a known field"
        elif err["type"] == "string_type":
            rule = "must be text"
        elif err["type"] in ("model_type", "dict_type", "model_attributes_type"):
            rule = "must be an object (a mapping of device fields)"
        else:
            rule = f"is not valid: {rule[:1].lower()}{rule[1:]}"
        value = err.get("input")
        errors.append(FieldError(loc, value, rule))
    return errors


# --- fast path ---------------------------------------------------------------------------------------
# Records in our own snake_case shape with plain values are by far the common case. They are checked
# here by the same rules, without pydantic's per-field machinery; anything else (aliases, extra fields,
# odd types, an address that is not already canonical, any error) goes through ``Alert.model_validate``
# so that errors are reported exactly once, in one way. tests/test_model.py proves both paths agree.

_ALERT_KEYS = frozenset(Alert.model_fields)
_DEVICE_KEYS = frozenset(Device.model_fields)
_REQUIRED = ("sensor_name", "time", "title", "message", "severity", "type")
_OPTIONAL_TEXT = ("protocol", "uuid", "alert_group")
_IPV4_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_IPV4_OCTET}(?:\.{_IPV4_OCTET}){{3}}")
_MAC_COLON = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")
_SEVERITY_EXACT = {s.value: s for s in Severity}
_TYPE_EXACT = {t.value: t for t in AlertType}


def _new(cls: type[BaseModel], values: dict[str, Any], given: Iterable[str]) -> Any:
    """A model instance from values that are already valid and canonical (what model_construct does,
    without its per-call overhead); ``given`` are the fields the input named."""
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    object.__setattr__(obj, "__pydantic_fields_set__", set(given))
    object.__setattr__(obj, "__pydantic_extra__", {} if cls is Alert else None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


def _fast_text(value: Any) -> tuple[bool, str | None]:
    """(ok, value) for an optional text field: absent/None/blank -> None."""
    if value is None:
        return True, None
    if type(value) is not str:
        return False, None
    return True, (value if value.strip() else None)


def _fast_device(value: Any) -> tuple[bool, Device | None]:
    if value is None:
        return True, None
    if type(value) is not dict or not value.keys() <= _DEVICE_KEYS:
        return False, None
    values: dict[str, Any] = {}
    for key in ("name", "ip", "mac", "vendor", "os", "protocol", "address"):
        ok, text = _fast_text(value.get(key))
        if not ok:
            return False, None
        if text is not None and key == "ip" and not _CANONICAL_IPV4.fullmatch(text):
            return False, None  # IPv6, or not canonical: let the full path canonicalise or refuse it
        if text is not None and key == "mac":
            if not _MAC_COLON.fullmatch(text):
                return False, None
            text = text.lower()
        values[key] = text
    if not any(values.values()):
        return True, None
    return True, _new(Device, values, value)


def _fast_alert(data: Mapping[str, Any]) -> Alert | None:
    """The Alert for a plain, valid, snake_case record; None means "use the full validation"."""
    if type(data) is not dict or not data.keys() <= _ALERT_KEYS:
        return None
    sensor_name, title, message = data.get("sensor_name"), data.get("title"), data.get("message")
    if type(sensor_name) is not str or not sensor_name.strip() or type(title) is not str or not title.strip():
        return None
    if type(message) is not str:
        return None
    raw_severity, raw_type = data.get("severity"), data.get("type")
    if type(raw_severity) is not str or type(raw_type) is not str:
        return None  # lists, numbers, ...: the full path reports them
    severity, kind = _SEVERITY_EXACT.get(raw_severity), _TYPE_EXACT.get(raw_type)
    if severity is None or kind is None:
        return None
    raw_time = data.get("time")
    if type(raw_time) is not str and type(raw_time) is not int:
        return None
    try:
        when = _in_range(parse_time(raw_time))
    except (ValueError, OverflowError):
        return None
    version = data.get("sensor_version", "")
    if version is None:
        version = ""
    if type(version) is not str:
        return None
    if not version.strip():
        version = ""
    ok_ip, sensor_ip = _fast_text(data.get("sensor_ip"))
    if not ok_ip or (sensor_ip is not None and not _CANONICAL_IPV4.fullmatch(sensor_ip)):
        return None
    values: dict[str, Any] = {
        "sensor_name": sensor_name,
        "sensor_ip": sensor_ip,
        "sensor_version": version,
        "time": when,
        "title": title,
        "message": message,
        "severity": severity,
        "type": kind,
    }
    for key in _OPTIONAL_TEXT:
        ok, text = _fast_text(data.get(key))
        if not ok:
            return None
        values[key] = text
    for key in ("source", "destination"):
        ok, device = _fast_device(data.get(key))
        if not ok:
            return None
        values[key] = device
    order = {k: values[k] for k in Alert.model_fields}
    alert: Alert = _new(Alert, order, data)
    return alert
