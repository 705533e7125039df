"""Syslog headers (RFC 3164, RFC 5424), PRI, the hostname rule, and framing helpers (RFC 6587).

Writers and readers live side by side; each rule cites the section it comes from.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import IntEnum
from functools import lru_cache
from typing import Literal

from siemfmt.errors import ParseError

__all__ = [
    "DEFAULT_PRI",
    "Facility",
    "HeaderKind",
    "LFDecoder",
    "OctetCountingDecoder",
    "Severity",
    "SyslogHeader",
    "frame_lf",
    "frame_octet_counting",
    "hostname_from",
    "parse_header",
    "parse_structured_data",
    "pri",
    "rfc3164_header",
    "rfc5424_header",
    "sd_element",
    "sd_escape",
    "system_clock",
]

HeaderKind = Literal["rfc3164", "rfc5424", "none"]
Clock = Callable[[], datetime]

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Facility(IntEnum):
    """RFC 5424 §6.2.1 Table 1."""

    KERN = 0
    USER = 1
    MAIL = 2
    DAEMON = 3
    AUTH = 4
    SYSLOG = 5
    LPR = 6
    NEWS = 7
    UUCP = 8
    CRON = 9
    AUTHPRIV = 10
    FTP = 11
    NTP = 12
    AUDIT = 13
    ALERT = 14
    CLOCK = 15
    LOCAL0 = 16
    LOCAL1 = 17
    LOCAL2 = 18
    LOCAL3 = 19
    LOCAL4 = 20
    LOCAL5 = 21
    LOCAL6 = 22
    LOCAL7 = 23


class Severity(IntEnum):
    """RFC 5424 §6.2.1 Table 2 (syslog severity, not the alert's severity)."""

    EMERGENCY = 0
    ALERT = 1
    CRITICAL = 2
    ERROR = 3
    WARNING = 4
    NOTICE = 5
    INFORMATIONAL = 6
    DEBUG = 7


def pri(facility: int = Facility.USER, severity: int = Severity.ALERT) -> int:
    """PRIVAL = facility * 8 + severity (RFC 5424 §6.2.1); user.alert is 9 (contract §3)."""
    if not 0 <= int(facility) <= 23:
        raise ValueError(f"facility: {facility!r} must be 0..23 (RFC 5424 §6.2.1)")
    if not 0 <= int(severity) <= 7:
        raise ValueError(f"severity: {severity!r} must be 0..7 (RFC 5424 §6.2.1)")
    return int(facility) * 8 + int(severity)


DEFAULT_PRI = pri()


def system_clock() -> datetime:
    """The default clock: now, in UTC. Pass your own ``clock`` for reproducible output."""
    return datetime.now(timezone.utc)


# --- hostname -------------------------------------------------------------------------------------

_WS_RUN = re.compile(r"\s+")
_NOT_PRINTUSASCII = re.compile(r"[^\x21-\x7e]")
_PRINTUSASCII = re.compile(r"[\x21-\x7e]+")


@lru_cache(maxsize=1024)
def hostname_from(sensor_name: str) -> str:
    """Contract §3: every run of white space -> ``_``, every char outside printable ASCII -> ``_``."""
    host = _NOT_PRINTUSASCII.sub("_", _WS_RUN.sub("_", sensor_name))
    return host or "-"


def check_header_token(name: str, value: str, max_len: int) -> str:
    """A caller-supplied header field: 1..max_len PRINTUSASCII (RFC 5424 §6, ABNF), else an error."""
    if not _PRINTUSASCII.fullmatch(value):
        raise ValueError(f"{name}: {value!r} must be 1 or more printable US-ASCII characters (RFC 5424 §6)")
    return value[:max_len]


# --- writers --------------------------------------------------------------------------------------


# Two-digit and space-padded numbers by table: much cheaper than format specs on the hot path.
D2 = tuple(f"{i:02d}" for i in range(100))
_DAY_PADDED = tuple(f"{i:2d}" for i in range(32))


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is timezone.utc:
        return ts
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"clock: {ts!r} must be timezone-aware")
    return ts.astimezone(timezone.utc)


def rfc3164_header(prival: int, ts: datetime, host: str, *, pad_day: bool = True) -> str:
    """``<PRI>Mmm dd HH:MM:SS HOST `` with the day padded by a space (RFC 3164 §4.1.2), time in UTC.

    ``pad_day=False`` writes ``May 5`` as the CyberX-era sensor did (a compatibility switch)."""
    t = _utc(ts)
    day = _DAY_PADDED[t.day] if pad_day else str(t.day)
    return f"<{prival}>{MONTHS[t.month - 1]} {day} {D2[t.hour]}:{D2[t.minute]}:{D2[t.second]} {host} "


def rfc5424_header(
    prival: int,
    ts: datetime,
    host: str,
    app_name: str = "-",
    procid: str = "-",
    msgid: str = "-",
    structured_data: str = "-",
) -> str:
    """``<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD `` (RFC 5424 §6), millisecond UTC time (§6.2.3)."""
    t = _utc(ts)
    stamp = (
        f"{t.year:04d}-{D2[t.month]}-{D2[t.day]}T{D2[t.hour]}:{D2[t.minute]}:{D2[t.second]}"
        f".{t.microsecond // 1000:03d}Z"
    )
    # Field lengths: HOSTNAME 255, APP-NAME 48, PROCID 128, MSGID 32 (RFC 5424 §6).
    return f"<{prival}>1 {stamp} {host[:255]} {app_name[:48]} {procid[:128]} {msgid[:32]} {structured_data} "


# --- structured data (RFC 5424 §6.3) ----------------------------------------------------------------

_SD_NAME = re.compile(r"[\x21-\x7e]{1,32}")


def check_sd_name(kind: str, name: str) -> str:
    """SD-ID / PARAM-NAME: 1-32 PRINTUSASCII except ``=``, SP, ``]``, ``"`` (RFC 5424 §6.3.2-6.3.3)."""
    if not _SD_NAME.fullmatch(name) or any(c in name for c in '="]'):
        raise ValueError(f'{kind}: {name!r} must be 1-32 printable US-ASCII characters without = ] " (RFC 5424 §6.3)')
    return name


def sd_escape(value: str) -> str:
    """PARAM-VALUE: ``\\``, ``"`` and ``]`` escaped with a backslash, ``\\`` first (RFC 5424 §6.3.3)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def sd_element(sd_id: str, params: list[tuple[str, str]]) -> str:
    """``[SD-ID PARAM="VALUE" ...]`` (RFC 5424 §6.3.1); names are checked, values escaped."""
    check_sd_name("SD-ID", sd_id)
    body = "".join(f' {check_sd_name("PARAM-NAME", n)}="{sd_escape(v)}"' for n, v in params)
    return f"[{sd_id}{body}]"


_SD_ELEMENT = re.compile(r'\[([^\s\]="]+)((?: [^\s\]="]+="(?:[^"\\]|\\.)*")*)\]', re.DOTALL)
_SD_PARAM = re.compile(r' ([^\s\]="]+)="((?:[^"\\]|\\.)*)"', re.DOTALL)
_SD_UNESCAPE = re.compile(r'\\([\\"\]])')


def parse_structured_data(sd: str) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """``-`` or SD-ELEMENTs -> ((SD-ID, ((name, value), ...)), ...), values unescaped (RFC 5424 §6.3.3:
    ``\\"``, ``\\\\``, ``\\]``; any other backslash is kept)."""
    if sd in ("", "-"):
        return ()
    out: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    pos = 0
    while pos < len(sd):
        m = _SD_ELEMENT.match(sd, pos)
        if m is None:
            raise ParseError("malformed SD-ELEMENT (RFC 5424 §6.3)", pos, sd)
        params = tuple((p.group(1), _SD_UNESCAPE.sub(r"\1", p.group(2))) for p in _SD_PARAM.finditer(m.group(2)))
        out.append((m.group(1), params))
        pos = m.end()
    return tuple(out)


# --- reader ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyslogHeader:
    """The syslog header of a parsed line. ``kind`` is ``rfc5424``, ``rfc3164`` or ``none``."""

    kind: HeaderKind
    pri: int | None = None
    version: int | None = None
    timestamp: str | None = None
    hostname: str | None = None
    app_name: str | None = None
    procid: str | None = None
    msgid: str | None = None
    structured_data: str | None = None

    @property
    def sd(self) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
        """The structured data parsed: ((SD-ID, ((name, value), ...)), ...)."""
        return parse_structured_data(self.structured_data or "-")

    @property
    def facility(self) -> int | None:
        return None if self.pri is None else self.pri // 8

    @property
    def severity(self) -> int | None:
        return None if self.pri is None else self.pri % 8


_PRI_RE = re.compile(r"<(\d{1,3})>")
_5424_RE = re.compile(r"([1-9]\d{0,2}) (\S+) (\S+) (\S+) (\S+) (\S+) ")
# RFC 3164 §4.1.2 TIMESTAMP; a single space before a one-digit day is accepted (the real sensor sample).
_3164_RE = re.compile(
    r"((?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (?: ?\d|\d\d) \d\d:\d\d:\d\d) ([\x21-\x7e]+) "
)
_TS_5424_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")
BOM = "\ufeff"


def _structured_data(line: str, pos: int) -> int:
    """End offset of STRUCTURED-DATA starting at ``pos`` (RFC 5424 §6.3): ``-`` or 1*SD-ELEMENT."""
    if line.startswith("-", pos):
        return pos + 1
    if not line.startswith("[", pos):
        raise ParseError("structured data must be '-' or start with '[' (RFC 5424 §6.3)", pos, line)
    i = pos
    n = len(line)
    while i < n and line[i] == "[":
        i += 1
        in_value = False
        while True:
            if i >= n:
                raise ParseError("unterminated SD-ELEMENT (RFC 5424 §6.3)", pos, line)
            ch = line[i]
            if in_value:
                if ch == "\\":
                    i += 2
                    continue
                if ch == '"':
                    in_value = False
            elif ch == '"':
                in_value = True
            elif ch == "]":
                i += 1
                break
            i += 1
    return i


def parse_header(line: str) -> tuple[SyslogHeader, int]:
    """Read an optional PRI and an RFC 5424 or RFC 3164 header; return it and where the body starts."""
    pos = 0
    prival: int | None = None
    m = _PRI_RE.match(line)
    if m:
        prival = int(m.group(1))
        if prival > 191:
            raise ParseError(f"PRI {prival} is out of range 0..191 (RFC 5424 §6.2.1)", 1, line)
        pos = m.end()
    m5 = _5424_RE.match(line, pos)
    if m5 and m:
        version, ts, host, app, procid, msgid = m5.groups()
        if ts != "-" and not _TS_5424_RE.fullmatch(ts):
            raise ParseError(f"TIMESTAMP {ts!r} is not RFC 3339 (RFC 5424 §6.2.3)", m5.start(2), line)
        end = _structured_data(line, m5.end())
        sd = line[m5.end() : end]
        if end < len(line):
            if line[end] != " ":
                raise ParseError("expected a space after STRUCTURED-DATA (RFC 5424 §6)", end, line)
            end += 1
            if line.startswith(BOM, end):
                end += 1
        header = SyslogHeader("rfc5424", prival, int(version), ts, host, app, procid, msgid, sd)
        return header, end
    m3 = _3164_RE.match(line, pos)
    if m3:
        return SyslogHeader("rfc3164", prival, None, m3.group(1), m3.group(2)), m3.end()
    return SyslogHeader("none", prival), pos


# --- framing (RFC 6587 §3.4) ------------------------------------------------------------------------


def frame_octet_counting(message: bytes) -> bytes:
    """``MSG-LEN SP SYSLOG-MSG``, MSG-LEN in octets (RFC 6587 §3.4.1, RFC 5425 §4.3)."""
    return b"%d %s" % (len(message), message)


def frame_lf(message: bytes) -> bytes:
    """Non-transparent framing with an LF trailer (RFC 6587 §3.4.2); refuses an embedded LF."""
    if b"\n" in message:
        raise ValueError("message holds an LF, which would split it under LF framing (RFC 6587 §3.4.2)")
    return message + b"\n"


class OctetCountingDecoder:
    """Incremental reader of an octet-counted stream (RFC 6587 §3.4.1): ``feed`` bytes, get messages."""

    def __init__(self, max_size: int = 1 << 20) -> None:
        self._buf = bytearray()
        self.max_size = max_size

    def feed(self, data: bytes) -> list[bytes]:
        """The complete messages so far. A bad frame header raises ValueError, but only once the
        messages decoded before it have been returned (the next call raises)."""
        self._buf += data
        out: list[bytes] = []
        while True:
            sp = self._buf.find(b" ", 0, 12)
            if sp < 0:
                if len(self._buf) >= 12 or (self._buf and not self._buf[:1].isdigit()):
                    if out:
                        return out
                    raise ValueError(f"bad octet-count frame header {bytes(self._buf[:12])!r}")
                return out
            head = bytes(self._buf[:sp])
            size = int(head) if head.isdigit() and not head.startswith(b"0") else -1
            if size < 0 or size > self.max_size:
                if out:
                    return out
                if size < 0:
                    raise ValueError(f"bad octet-count MSG-LEN {head!r} (RFC 6587 §3.4.1)")
                raise ValueError(f"frame of {size} octets exceeds max_size {self.max_size}")
            if len(self._buf) < sp + 1 + size:
                return out
            out.append(bytes(self._buf[sp + 1 : sp + 1 + size]))
            del self._buf[: sp + 1 + size]

    @property
    def pending(self) -> int:
        return len(self._buf)


class LFDecoder:
    """Incremental reader of LF-framed messages (RFC 6587 §3.4.2); a trailing CR is kept."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        *complete, rest = bytes(self._buf).split(b"\n")
        self._buf = bytearray(rest)
        return complete

    @property
    def pending(self) -> int:
        return len(self._buf)
