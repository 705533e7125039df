"""The Syslog object format (contract §7): ``key=value`` pairs joined by one space, logfmt quoting."""

from __future__ import annotations

import re

from siemfmt.errors import ParseError
from siemfmt.formats.base import (
    OTHER_CONTROL,
    Body,
    FormatOptions,
    alert_group,
    backslash_unescaper,
    hex_escape,
    render_time,
)
from siemfmt.model import Alert, Device

__all__ = ["KEYS", "format", "parse"]

NA = "N/A"  # contract §5: every missing field (defender-formats.md §1, "the value will be N/A")

# Contract §7, in order.
KEYS = (
    "Sensor_name",
    "Alert_time",
    "Alert_title",
    "Alert_message",
    "Alert_severity",
    "Alert_type",
    "Protocol",
    "Source_MAC",
    "Source_IP",
    "Source_name",
    "Source_vendor",
    "Source_OS",
    "Destination_MAC",
    "Destination_IP",
    "Destination_name",
    "Destination_vendor",
    "Destination_OS",
    "alert_group",
)

# A value is bare when non-empty and free of space, '"', '=', '\' and control characters (contract §7).
_NEEDS_QUOTES = re.compile(r'[ "=\\\x00-\x1f\x7f]')


def value(text: str | None) -> str:
    """One value, bare or double-quoted with ``\\\\ \\" \\n \\r \\t \\xHH`` escapes."""
    if text is None:
        return NA
    if text and _NEEDS_QUOTES.search(text) is None:
        return text
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    if OTHER_CONTROL.search(text) is not None:
        text = OTHER_CONTROL.sub(hex_escape, text)
    return f'"{text}"'


def _device(prefix: str, device: Device | None) -> str:
    if device is None:
        return f"{prefix}_MAC={NA} {prefix}_IP={NA} {prefix}_name={NA} {prefix}_vendor={NA} {prefix}_OS={NA}"
    return (
        f"{prefix}_MAC={value(device.mac)} {prefix}_IP={value(device.ip)} {prefix}_name={value(device.name)} "
        f"{prefix}_vendor={value(device.vendor)} {prefix}_OS={value(device.os)}"
    )


def format(alert: Alert, opts: FormatOptions) -> str:
    """The object body for ``alert``."""
    group = alert_group(alert, opts)
    return (
        f"Sensor_name={value(alert.sensor_name)} "
        f"Alert_time={value(render_time(alert.time, opts.tz, opts.time_format))} "
        f"Alert_title={value(alert.title)} Alert_message={value(alert.message)} "
        f"Alert_severity={alert.severity.value} Alert_type={value(alert.type.value)} "
        f"Protocol={value(alert.protocol)} {_device('Source', alert.source)} "
        f"{_device('Destination', alert.destination)} alert_group={value(group)}"
    )


# Only the ASCII space separates pairs (contract §7); other white space may stand in a bare value.
_PAIR = re.compile(r'([^ ="\x00-\x1f\x7f]+)=(?:"((?:[^"\\]|\\.)*)"|([^ "]*))(?: |\Z)', re.DOTALL)
_unescape = backslash_unescaper({"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'})


def parse(body: str) -> Body:
    """logfmt-style ``key=value key="quoted value"`` -> fields in order, unescaped."""
    fields: list[tuple[str, str]] = []
    pos = 0
    end = len(body)
    while pos < end:
        m = _PAIR.match(body, pos)
        if m is None:
            raise ParseError('expected key=value or key="quoted value" followed by a space', pos, body)
        quoted = m.group(2)
        if quoted is None:
            fields.append((m.group(1), m.group(3)))
        else:
            fields.append((m.group(1), _unescape(quoted)))
        pos = m.end()
    return Body("object", (), tuple(fields))
