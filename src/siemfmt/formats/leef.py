"""IBM QRadar LEEF 1.0 / 2.0 (contract §9): writer for the Defender profile, and a general reader."""

from __future__ import annotations

import re

from siemfmt.errors import ParseError
from siemfmt.formats.base import CONTROL, Body, FormatOptions, alert_group, read_pipe_fields, render_time
from siemfmt.model import Alert

__all__ = ["delimiter_field", "escape_header", "format", "parse", "sanitize"]

VENDOR = "Microsoft Defender for IoT"  # docs F2-F7
PRODUCT = "Sensor"  # listed literally in every doc version (contract §9)
EVENT_ID = "Microsoft Defender for IoT Alert"
# dialect azure-2021: docs F1 (defender-formats.md §5).
_VENDOR = {"azure-2021": "Azure Defender for IoT"}
_EVENT_ID = {"azure-2021": "Azure Defender for IoT Alert"}


def escape_header(value: str) -> str:
    """LEEF header field: ``\\`` and ``|`` backslash-escaped (contract §9); controls -> space (one line)."""
    value = value.replace("\\", "\\\\").replace("|", "\\|")
    if CONTROL.search(value) is not None:
        value = CONTROL.sub(" ", value.replace("\r\n", " "))
    return value


def sanitize(value: str, delimiter: str = "\t") -> str:
    """LEEF has no escapes (LEEF 2.0 guide): CRLF, CR, LF, the delimiter and other controls -> one space.

    Lossy by design; documented in docs/formats/leef.md.
    """
    if delimiter != "\t" and delimiter in value:
        value = value.replace(delimiter, " ")
    if CONTROL.search(value) is not None:
        value = CONTROL.sub(" ", value.replace("\r\n", " "))
    return value


def delimiter_field(delimiter: str, as_hex: bool = False) -> str:
    """The LEEF 2.0 DelimiterCharacter field: the character, or ``x5E`` style hex (LEEF 2.0 guide)."""
    check_delimiter(delimiter)
    if as_hex or delimiter in "|\\" or CONTROL.match(delimiter):
        return f"x{ord(delimiter):02X}"
    return delimiter


_NOT_DELIMITERS = "= .:-+"


def check_delimiter(delimiter: str) -> None:
    # LEEF 2.0 guide: one character, or 1-4 hex digits (so up to U+FFFF). Text values are made free of
    # the delimiter by turning it into a space; IPs, MACs and times are not, so no character they use
    # (letters, digits, '.', ':', '-', '+', space) may be the delimiter, and neither may '='.
    # A control character other than TAB would put a raw control byte between every attribute.
    bad_control = delimiter != "\t" and CONTROL.fullmatch(delimiter) is not None
    if (
        len(delimiter) != 1
        or delimiter in _NOT_DELIMITERS
        or delimiter.isalnum()
        or ord(delimiter) > 0xFFFF
        or bad_control
    ):
        raise ValueError(
            f"leef_delimiter: {delimiter!r} must be one character up to U+FFFF, not a letter, a digit, a control"
            f" character other than TAB, or one of {' '.join(repr(c) for c in _NOT_DELIMITERS)}"
        )


def format(alert: Alert, opts: FormatOptions) -> str:
    """The LEEF body for ``alert``."""
    d = opts.leef_delimiter if opts.leef_version == "2.0" else "\t"
    attrs = [f"title={sanitize(alert.title, d)}", f"msg={sanitize(alert.message, d)}"]
    if alert.protocol:
        attrs.append(f"protocol={sanitize(alert.protocol, d)}")
    attrs.append(f"severity={alert.severity.value}")
    attrs.append(f"type={alert.type.value}")
    attrs.append(f"start={sanitize(render_time(alert.time, opts.tz, opts.time_format), d)}")
    if alert.source is not None and alert.source.ip:
        attrs.append(f"src_ip={alert.source.ip}")
    if alert.destination is not None and alert.destination.ip:
        attrs.append(f"dst_ip={alert.destination.ip}")
    group = alert_group(alert, opts)
    attrs.append(f"cat={sanitize(group, d)}")
    vendor, event_id = _VENDOR.get(opts.dialect, VENDOR), _EVENT_ID.get(opts.dialect, EVENT_ID)
    head = f"{vendor}|{PRODUCT}|{escape_header(alert.sensor_version)}|{event_id}|"
    if opts.leef_version == "2.0":
        return f"LEEF:2.0|{head}{delimiter_field(d, opts.leef_delimiter_hex)}|{d.join(attrs)}"
    return f"LEEF:1.0|{head}{d.join(attrs)}"


# --- reader ---------------------------------------------------------------------------------------

_VERSION = re.compile(r"LEEF:([12]\.0)\|")
_HEX_DELIMITER = re.compile(r"(?:0[xX]|[xX])([0-9A-Fa-f]{1,4})")
HEADER_NAMES = ("version", "vendor", "product", "product_version", "event_id")


def parse(body: str) -> Body:
    """A LEEF line (from ``LEEF:``) -> header (version, vendor, product, version, event id[, delimiter])
    and attributes in order. A 2.0 delimiter field may be a character, ``x5E`` or ``0x5E``; an empty one
    means TAB; anything else is taken as no delimiter field (as AxoSyslog does)."""
    m = _VERSION.match(body)
    if m is None:
        raise ParseError("expected 'LEEF:1.0|' or 'LEEF:2.0|' (LEEF 2.0 guide)", 0, body)
    header = [m.group(1)]
    pos = read_pipe_fields("LEEF", body, m.end(), HEADER_NAMES, header)
    delimiter = "\t"
    if header[0] == "2.0":
        bar = body.find("|", pos)
        candidate = body[pos:bar] if bar >= 0 else None
        if candidate is not None:
            hexed = _HEX_DELIMITER.fullmatch(candidate)
            if len(candidate) == 1:
                delimiter, pos = candidate, bar + 1
            elif hexed is not None:
                delimiter, pos = chr(int(hexed.group(1), 16)), bar + 1
            elif candidate == "":
                pos = bar + 1
        header.append(delimiter)
    fields: list[tuple[str, str]] = []
    for start, segment in _segments(body, pos, delimiter):
        if not segment:
            continue
        key, eq, value = segment.partition("=")
        if not eq or not key:
            raise ParseError(f"attribute {segment[:40]!r} is not key=value", start, body)
        fields.append((key, value))
    return Body("leef", tuple(header), tuple(fields))


def _segments(body: str, pos: int, delimiter: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for part in body[pos:].split(delimiter):
        out.append((pos, part))
        pos += len(part) + 1
    return out
