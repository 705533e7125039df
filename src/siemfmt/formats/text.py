"""The Syslog text format (contract §6): ``Label: value`` pairs joined by ``; ``."""

from __future__ import annotations

import re

from siemfmt.errors import ParseError
from siemfmt.formats.base import OTHER_CONTROL, Body, FormatOptions, alert_group, backslash_unescaper, hex_escape
from siemfmt.model import Alert

__all__ = ["LABELS", "format", "parse"]

NA = "N/A"  # contract §5: Source, Source IP, Destination, Destination IP when missing

# Contract §6 (docs F2-F7 labels, defender-formats.md §2); `Alert Group` as in the alert-group sections.
LABELS = (
    "CyberX platform name",
    "Microsoft Defender for IoT Alert",
    "Type",
    "Severity",
    "Source",
    "Source IP",
    "Protocol",
    "Address",
    "Destination",
    "Destination IP",
    "Message",
    "Alert Group",
    "UUID",
)


def escape(value: str) -> str:
    """Contract §6: ``\\`` ``;`` LF CR TAB by name, other control characters as ``\\xHH``."""
    value = (
        value.replace("\\", "\\\\").replace(";", "\\;").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    )
    if OTHER_CONTROL.search(value) is not None:
        value = OTHER_CONTROL.sub(hex_escape, value)
    return value


# Older sensors (dialect azure-2021; defender-formats.md §2, Google SecOps parser keys).
_TITLE_LABEL = {"azure-2021": "Azure Defender for IoT Alert"}
_IP_LABELS = {"azure-2021": ("Source ip", "Destination ip")}


def format(alert: Alert, opts: FormatOptions) -> str:
    """The text body for ``alert``."""
    src, dst = alert.source, alert.destination
    title_label = _TITLE_LABEL.get(opts.dialect, "Microsoft Defender for IoT Alert")
    src_ip_label, dst_ip_label = _IP_LABELS.get(opts.dialect, ("Source IP", "Destination IP"))
    parts = [
        f"CyberX platform name: {escape(alert.sensor_name)}",
        f"{title_label}: {escape(alert.title)}",
        f"Type: {alert.type.value}",
        f"Severity: {alert.severity.value}",
        f"Source: {escape(src.name) if src and src.name else NA}",
        f"{src_ip_label}: {src.ip if src and src.ip else NA}",
    ]
    if src is not None:
        if src.protocol:
            parts.append(f"Protocol: {escape(src.protocol)}")
        if src.address:
            parts.append(f"Address: {escape(src.address)}")
    parts.append(f"Destination: {escape(dst.name) if dst and dst.name else NA}")
    parts.append(f"{dst_ip_label}: {dst.ip if dst and dst.ip else NA}")
    if dst is not None:
        if dst.protocol:
            parts.append(f"Protocol: {escape(dst.protocol)}")
        if dst.address:
            parts.append(f"Address: {escape(dst.address)}")
    parts.append(f"Message: {escape(alert.message)}")
    parts.append(f"Alert Group: {escape(alert_group(alert, opts))}")
    if alert.uuid:
        parts.append(f"UUID: {escape(alert.uuid)}")
    return "; ".join(parts)


_PAIR = re.compile(r"((?:[^\\;]|\\.|;(?! ))*)(?:; |\Z)", re.DOTALL)
unescape = backslash_unescaper({"n": "\n", "r": "\r", "t": "\t", "\\": "\\", ";": ";"})


def parse(body: str) -> Body:
    """``Label: value; Label: value`` -> fields in order, unescaped (labels may repeat)."""
    fields: list[tuple[str, str]] = []
    pos = 0
    end = len(body)
    while pos < end:
        m = _PAIR.match(body, pos)
        if m is None or m.end() == pos:
            raise ParseError("expected 'Label: value' followed by '; ' or the end", pos, body)
        pair = m.group(1)
        label, sep, value = pair.partition(": ")
        if not sep:
            if pair.endswith(":"):
                label, value = pair[:-1], ""
            else:
                raise ParseError(f"pair {pair[:40]!r} has no ': ' between label and value", pos, body)
        fields.append((label, unescape(value)))
        pos = m.end()
    return Body("text", (), tuple(fields))
