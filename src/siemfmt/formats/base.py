"""What the four format modules share: options, the parsed-body type, times, control characters."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from siemfmt.errors import ParseError
from siemfmt.groups import resolve_group
from siemfmt.model import Alert
from siemfmt.syslog import D2, Clock, HeaderKind, system_clock

__all__ = [
    "CONTROL",
    "Body",
    "FormatOptions",
    "TimeFormat",
    "render_time",
    "resolve_tz",
    "truncate",
]

TimeFormat = Literal["default", "epoch-ms", "iso"]
Profile = Literal["defender", "arcsight", "qradar", "rfc5424-sd"]
Dialect = Literal["current", "azure-2021", "cyberx-qradar"]
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)

# Contract §5: a control character is U+0000..U+001F or U+007F.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Control characters other than TAB, LF and CR (which several formats escape by name).
OTHER_CONTROL = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")


def hex_escape(match: re.Match[str]) -> str:
    """``\\xHH`` for one control character (text and object formats, contract §6-7)."""
    return f"\\x{ord(match.group()):02x}"


def controls_to_space(value: str) -> str:
    """CRLF, then every remaining control character, each become one space (contract §8-9)."""
    if CONTROL.search(value) is None:
        return value
    return CONTROL.sub(" ", value.replace("\r\n", " "))


def truncate(value: str, limit: int) -> str:
    """At most ``limit`` characters of the unescaped value (profiles that enforce dictionary lengths)."""
    return value if len(value) <= limit else value[:limit]


def resolve_tz(tz: str | tzinfo) -> tzinfo:
    """An IANA zone name (``"UTC"``, ``"Europe/Berlin"``) or a tzinfo."""
    if isinstance(tz, tzinfo):
        return tz
    if tz.upper() in ("UTC", "Z"):
        return timezone.utc
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"tz: {tz!r} is not an IANA time zone name") from None


def render_time(ts: datetime, tz: tzinfo, style: TimeFormat) -> str:
    """Contract §4: ``MMM dd yyyy HH:mm:ss`` (English month, zero-padded day, seconds truncated)."""
    if style == "epoch-ms":
        return str((ts - _EPOCH) // _MS)
    local = ts if ts.tzinfo is tz else ts.astimezone(tz)
    if style == "iso":
        return local.isoformat(timespec="milliseconds")
    return (
        f"{MONTHS[local.month - 1]} {D2[local.day]} {local.year:04d} "
        f"{D2[local.hour]}:{D2[local.minute]}:{D2[local.second]}"
    )


@dataclass(frozen=True, slots=True)
class FormatOptions:
    """Every knob of the formatters, validated once. See ``siemfmt.format_alert`` for meanings."""

    header: HeaderKind = "rfc3164"
    hostname: str | None = None
    tz: tzinfo = timezone.utc
    clock: Clock = system_clock
    prival: int = 9
    app_name: str = "-"
    procid: str = "-"
    msgid: str = "-"
    time_format: TimeFormat = "default"
    infer_group: bool = True
    leef_version: Literal["1.0", "2.0"] = "1.0"
    leef_delimiter: str = "\t"
    leef_delimiter_hex: bool = False
    profile: Profile = "defender"
    dialect: Dialect = "current"
    cef_header_space: bool = False  # compat: liblognorm's cef parser needs a space after the last '|'
    pad_day: bool = True  # RFC 3164 §4.1.2 pads a one-digit day with a space; False for old sensors
    sd_id: str = "alert@32473"  # rfc5424-sd profile: SD-ID name@PEN (RFC 5612's example PEN by default)


def alert_group(alert: Alert, opts: FormatOptions) -> str:
    """The value of the format's alert-group field (contract §2)."""
    return resolve_group(alert.alert_group, alert.title, use_catalog=opts.infer_group)


@dataclass(frozen=True, slots=True)
class Body:
    """A parsed message body: its format, its header fields (CEF, LEEF) and its fields, in order."""

    format: Literal["cef", "leef", "text", "object", "sd", "raw"]
    header: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = field(default_factory=tuple)


# --- shared reader pieces ---------------------------------------------------------------------------

_BACKSLASH = re.compile(r"\\(x[0-9A-Fa-f]{2}|.)", re.DOTALL)


def backslash_unescaper(named: dict[str, str]) -> Callable[[str], str]:
    """An unescaper for ``\\c`` (``named[c]``) and ``\\xHH``; an unknown pair is kept as it is."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) == 3:
            return chr(int(code[1:], 16))
        return named.get(code, "\\" + code)

    def unescape(value: str) -> str:
        return _BACKSLASH.sub(one, value) if "\\" in value else value

    return unescape


_PIPE_FIELD = re.compile(r"((?:[^\\|]|\\.)*)\|", re.DOTALL)
_PIPE_UNESCAPE = re.compile(r"\\([\\|])")


def read_pipe_fields(what: str, body: str, pos: int, names: tuple[str, ...], header: list[str]) -> int:
    """Append the pipe-terminated header fields after ``header[0]`` (``\\|`` and ``\\\\`` unescaped, CEF 1.2
    and LEEF); return where the rest starts. A missing field raises ParseError naming it."""
    while len(header) < len(names):
        f = _PIPE_FIELD.match(body, pos)
        if f is None:
            present = len(header) + (1 if body[pos:] else 0)  # an unterminated last field still counts
            missing = names[present] if present < len(names) else f"the '|' after {names[-1]}"
            raise ParseError(f"{what} header has {present} of {len(names)} fields: {missing} is missing", pos, body)
        header.append(_PIPE_UNESCAPE.sub(r"\1", f.group(1)))
        pos = f.end()
    return pos
