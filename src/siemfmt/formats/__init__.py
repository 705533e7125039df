"""The four formats, both directions: ``format_alert`` (alert -> line) and ``parse`` (line -> Message).

Pure functions: no I/O, no global state; the only clock is the one passed in (used for the header).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Literal

from siemfmt.errors import ParseError
from siemfmt.formats import arcsight, cef, cyberx, leef, object, qradar, sd, text
from siemfmt.formats.base import Body, Dialect, FormatOptions, Profile, TimeFormat, resolve_tz
from siemfmt.model import Alert, load_alert
from siemfmt.syslog import (
    Clock,
    HeaderKind,
    SyslogHeader,
    check_header_token,
    hostname_from,
    parse_header,
    parse_structured_data,
    pri,
    rfc3164_header,
    rfc5424_header,
    system_clock,
)

__all__ = [
    "DIALECTS",
    "FORMATS",
    "PROFILES",
    "Body",
    "FormatName",
    "FormatOptions",
    "Message",
    "format_alert",
    "format_cef",
    "format_leef",
    "format_object",
    "format_text",
    "make_formatter",
    "parse",
]

FormatName = Literal["text", "object", "cef", "leef", "sd"]
FORMATS: dict[str, Callable[[Alert, FormatOptions], str]] = {
    "text": text.format,
    "object": object.format,
    "cef": cef.format,
    "leef": leef.format,
}
HEADERS = ("rfc3164", "rfc5424", "none")
# The field that carries the alert group, per format (defender-formats.md §1).
GROUP_FIELD = {"cef": "cat", "leef": "cat", "text": "Alert Group", "object": "alert_group", "sd": "alert_group"}


@dataclass(frozen=True, slots=True)
class ProfileSpec:
    """What a profile writes: its formats (the first is its default) and its default header."""

    writers: dict[str, Callable[[Alert, FormatOptions], str]]
    header: HeaderKind
    headers: tuple[HeaderKind, ...] = ("rfc3164", "rfc5424", "none")


PROFILES: dict[str, ProfileSpec] = {
    "defender": ProfileSpec(FORMATS, "rfc3164"),
    "arcsight": ProfileSpec({"cef": arcsight.format}, "rfc3164"),
    "qradar": ProfileSpec({"leef": qradar.format}, "rfc5424"),
    "rfc5424-sd": ProfileSpec({"sd": sd.format}, "rfc5424", ("rfc5424",)),
}
DIALECTS = ("current", "azure-2021", "cyberx-qradar")


def options(
    *,
    profile: Profile = "defender",
    dialect: Dialect = "current",
    header: HeaderKind | None = None,
    hostname: str | None = None,
    tz: str | tzinfo = "UTC",
    clock: Clock | None = None,
    facility: int = 1,
    severity: int = 1,
    app_name: str | None = None,
    procid: str | None = None,
    msgid: str | None = None,
    time_format: TimeFormat = "default",
    infer_group: bool = True,
    leef_version: Literal["1.0", "2.0"] = "1.0",
    leef_delimiter: str | None = None,
    leef_delimiter_hex: bool = False,
    cef_header_space: bool = False,
    pad_day: bool | None = None,
    enterprise_number: int = 32473,
) -> FormatOptions:
    """Validate keyword options once; raises ValueError naming the option, the value and the rule."""
    for name, flag in (
        ("infer_group", infer_group),
        ("leef_delimiter_hex", leef_delimiter_hex),
        ("cef_header_space", cef_header_space),
    ):
        if not isinstance(flag, bool):
            raise ValueError(f"{name}: {flag!r} must be True or False")
    if pad_day is not None and not isinstance(pad_day, bool):
        raise ValueError(f"pad_day: {pad_day!r} must be True, False or None")
    if not isinstance(tz, (str, tzinfo)):
        raise ValueError(f"tz: {tz!r} must be an IANA time zone name or a tzinfo")
    spec = PROFILES.get(profile)
    if spec is None:
        raise ValueError(f"profile: {profile!r} must be one of {', '.join(PROFILES)}")
    if dialect not in DIALECTS:
        raise ValueError(f"dialect: {dialect!r} must be one of {', '.join(DIALECTS)}")
    if dialect != "current" and profile != "defender":
        raise ValueError(f"dialect: {dialect!r} applies to the defender profile only, not {profile!r}")
    header = spec.header if header is None else header
    if header not in spec.headers:
        raise ValueError(f"header: {header!r} must be one of {', '.join(spec.headers)} for profile {profile!r}")
    if time_format not in ("default", "epoch-ms", "iso"):
        raise ValueError(f"time_format: {time_format!r} must be one of default, epoch-ms, iso")
    if leef_version not in ("1.0", "2.0"):
        raise ValueError(f"leef_version: {leef_version!r} must be '1.0' or '2.0'")
    if leef_delimiter is None:
        leef_delimiter = "^" if leef_version == "2.0" or profile == "qradar" else "\t"
    elif leef_version == "1.0" and profile != "qradar" and leef_delimiter != "\t":
        raise ValueError("leef_delimiter: LEEF 1.0 always separates attributes with TAB; use leef_version='2.0'")
    leef.check_delimiter(leef_delimiter)
    if not isinstance(enterprise_number, int) or isinstance(enterprise_number, bool) or enterprise_number < 1:
        raise ValueError(f"enterprise_number: {enterprise_number!r} must be a positive integer (IANA PEN)")
    return FormatOptions(
        header=header,
        hostname=None if hostname is None else check_header_token("hostname", hostname, 255),
        tz=resolve_tz(tz),
        clock=clock or system_clock,
        prival=pri(facility, severity),
        app_name="-" if app_name is None else check_header_token("app_name", app_name, 48),
        procid="-" if procid is None else check_header_token("procid", procid, 128),
        msgid="-" if msgid is None else check_header_token("msgid", msgid, 32),
        time_format=time_format,
        infer_group=infer_group,
        leef_version=leef_version,
        leef_delimiter=leef_delimiter,
        leef_delimiter_hex=leef_delimiter_hex,
        profile=profile,
        dialect=dialect,
        cef_header_space=cef_header_space,
        # The CyberX-era sensor wrote "May 5" (defender-formats.md §6).
        pad_day=(dialect != "cyberx-qradar") if pad_day is None else pad_day,
        sd_id=f"alert@{enterprise_number}",
    )


def syslog_header(alert: Alert, opts: FormatOptions) -> str:
    """The header of contract §3 for one message (reads the clock once, unless ``none``)."""
    if opts.header == "none":
        return ""
    host = opts.hostname or hostname_from(alert.sensor_name)
    if opts.header == "rfc5424":
        sd_field = sd.structured_data(alert, opts) if opts.profile == "rfc5424-sd" else "-"
        return rfc5424_header(opts.prival, opts.clock(), host, opts.app_name, opts.procid, opts.msgid, sd_field)
    return rfc3164_header(opts.prival, opts.clock(), host, pad_day=opts.pad_day)


def _writer(fmt: str | None, opts: FormatOptions) -> Callable[[Alert, FormatOptions], str]:
    writers = PROFILES[opts.profile].writers
    if fmt is None:
        if opts.profile == "defender":
            raise ValueError(f"fmt: the defender profile needs one of {', '.join(writers)}")
        fmt = next(iter(writers))
    writer = writers.get(fmt)
    if writer is None:
        raise ValueError(f"fmt: {fmt!r} must be one of {', '.join(writers)} for profile {opts.profile!r}")
    if opts.dialect == "cyberx-qradar":
        if fmt != "leef":
            raise ValueError(f"fmt: dialect 'cyberx-qradar' is the QRadar action's LEEF; {fmt!r} is not available")
        return cyberx.format
    return writer


def _header_writer(opts: FormatOptions) -> Callable[[Alert], str]:
    """``syslog_header`` with the options bound once (the common RFC 3164 case without per-call lookups)."""
    if opts.header != "rfc3164":
        return lambda alert: syslog_header(alert, opts)
    clock, prival, pad_day, fixed_host = opts.clock, opts.prival, opts.pad_day, opts.hostname

    def header(alert: Alert) -> str:
        return rfc3164_header(prival, clock(), fixed_host or hostname_from(alert.sensor_name), pad_day=pad_day)

    return header


# Writers that can bind their options once, for make_formatter's hot path.
_COMPILERS: dict[Callable[[Alert, FormatOptions], str], Callable[[FormatOptions], Callable[[Alert], str]]] = {
    cef.format: cef.writer_for,
}


def make_formatter(fmt: FormatName | None, **kwargs: Any) -> Callable[[Alert | Mapping[str, Any]], str]:
    """A reusable ``alert -> line`` function with options validated once (the fast way for many alerts)."""
    opts = options(**kwargs)
    writer = _writer(fmt, opts)
    compiler = _COMPILERS.get(writer)
    body: Callable[[Alert], str] = compiler(opts) if compiler else (lambda alert: writer(alert, opts))
    header = _header_writer(opts)

    def formatter(alert: Alert | Mapping[str, Any]) -> str:
        record = alert if type(alert) is Alert else load_alert(alert)
        return header(record) + body(record)

    return formatter


def format_alert(
    alert: Alert | Mapping[str, Any],
    fmt: FormatName | None = None,
    *,
    header: HeaderKind | None = None,
    hostname: str | None = None,
    tz: str | tzinfo = "UTC",
    clock: Clock | None = None,
    profile: Profile = "defender",
    **kwargs: Any,
) -> str:
    """One alert as one syslog line.

    ``fmt``: ``text``, ``object``, ``cef`` or ``leef`` for the default ``defender`` profile (the
    sensor's own output); the ``arcsight`` (CEF), ``qradar`` (LEEF 2.0) and ``rfc5424-sd`` profiles have
    one format each and need no ``fmt``. ``header``: ``rfc3164`` (the default, but ``rfc5424`` for
    qradar and rfc5424-sd), ``rfc5424`` or ``none``. ``hostname``: the header HOST (default: the sensor
    name, white space and non-printable characters as ``_``). ``tz``: IANA zone of the alert time in the
    body. ``clock``: zero-argument callable returning an aware datetime, the header's send time.

    Further options: ``dialect`` (``current``, ``azure-2021``, ``cyberx-qradar``), ``facility``,
    ``severity`` (PRI), ``app_name``, ``procid``, ``msgid`` (RFC 5424), ``time_format`` (``default``,
    ``epoch-ms``, ``iso``), ``infer_group`` (catalog lookup, default on), ``leef_version``
    (``1.0``/``2.0``), ``leef_delimiter``, ``leef_delimiter_hex``, ``cef_header_space`` and
    ``pad_day`` (receiver compatibility switches), ``enterprise_number`` (rfc5424-sd SD-ID).
    """
    return make_formatter(fmt, header=header, hostname=hostname, tz=tz, clock=clock, profile=profile, **kwargs)(alert)


def format_text(alert: Alert | Mapping[str, Any], **kwargs: Any) -> str:
    """``format_alert(alert, "text", ...)``."""
    return format_alert(alert, "text", **kwargs)


def format_object(alert: Alert | Mapping[str, Any], **kwargs: Any) -> str:
    """``format_alert(alert, "object", ...)``."""
    return format_alert(alert, "object", **kwargs)


def format_cef(alert: Alert | Mapping[str, Any], **kwargs: Any) -> str:
    """``format_alert(alert, "cef", ...)``."""
    return format_alert(alert, "cef", **kwargs)


def format_leef(alert: Alert | Mapping[str, Any], **kwargs: Any) -> str:
    """``format_alert(alert, "leef", ...)``."""
    return format_alert(alert, "leef", **kwargs)


# --- reading --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """A parsed line: its syslog header, its body format, the body's header fields and fields in order.

    ``header`` holds the CEF header (version, vendor, product, device version, signature id, name,
    severity) or the LEEF header (version, vendor, product, version, event id[, delimiter]), unescaped.
    ``prefix`` is any text between the syslog header and a CEF/LEEF body (an RFC 3164 TAG, say).
    Format ``sd``: an RFC 5424 line whose MSG is none of the others but which has structured data; its
    fields are the SD-PARAMs of every SD-ELEMENT in order, and ``body`` is the MSG.
    """

    syslog: SyslogHeader
    format: Literal["cef", "leef", "text", "object", "sd", "raw"]
    header: tuple[str, ...]
    fields: tuple[tuple[str, str], ...]
    body: str
    prefix: str = ""

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of ``key``, or ``default``."""
        for k, v in self.fields:
            if k == key:
                return v
        return default

    def getall(self, key: str) -> list[str]:
        """Every value of ``key`` in order (the text format repeats ``Protocol`` and ``Address``)."""
        return [v for k, v in self.fields if k == key]

    def as_dict(self) -> dict[str, str]:
        """Fields as a dict; the first of repeated keys wins."""
        out: dict[str, str] = {}
        for k, v in self.fields:
            out.setdefault(k, v)
        return out

    @property
    def alert_group(self) -> str | None:
        """The alert-group field of the format (``cat``, ``Alert Group``, ``alert_group``)."""
        key = GROUP_FIELD.get(self.format)
        return None if key is None else self.get(key)


_PARSERS: dict[str, Callable[[str], Body]] = {
    "cef": cef.parse,
    "leef": leef.parse,
    "text": text.parse,
    "object": object.parse,
}
_EVENT_START = re.compile(r"CEF:\d+\||LEEF:[12]\.0\|")
_TEXT_START = ("CyberX platform name: ", "Sensor: ")
_OBJECT_START = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*=")


def parse(line: str, fmt: FormatName | None = None) -> Message:
    """Read one line: optional PRI, RFC 5424 or RFC 3164 header, then the body.

    The body is CEF or LEEF when it starts with ``CEF:n|`` / ``LEEF:n.0|``; text when it starts with the
    text format's first label; object when it is all ``key=value`` pairs; CEF or LEEF again when such a
    message follows other text (a TAG) and parses; ``sd`` when an RFC 5424 line carries structured data
    and its MSG is none of these (with structured data, a MSG that starts like CEF or LEEF but does not
    parse as such, starts with a text-format label or looks like ``key=value`` is free text); else
    ``raw``. ``fmt`` forces a format (``text``, ``object``, ``cef``, ``leef``, ``sd``). Raises
    ParseError saying what is wrong and where.
    """
    line = line.rstrip("\r\n")
    syslog, start = parse_header(line)
    rest = line[start:]
    try:
        has_sd = syslog.structured_data not in (None, "-")
        kind, prefix_len = _detect(rest, has_sd) if fmt is None else (fmt, 0)
        if kind not in _PARSERS and kind not in ("raw", "sd"):
            raise ValueError(f"fmt: {fmt!r} must be one of {', '.join(_PARSERS)}, sd")
        body_text = rest[prefix_len:]
        if fmt is None and (prefix_len or has_sd) and kind in ("cef", "leef"):
            # Found after other text (an RFC 3164 TAG, say), or as the MSG of a line with structured data
            # (free text there: the rfc5424-sd profile's alert message): a MSG that does not parse as
            # CEF/LEEF is some other text that happens to start with or mention it.
            try:
                _PARSERS[kind](body_text)
            except ParseError:
                kind, prefix_len, body_text = "raw", 0, rest
        if kind == "raw" and syslog.structured_data not in (None, "-"):
            kind = "sd"
        if kind == "sd":
            params = tuple(p for _, element in parse_structured_data(syslog.structured_data or "-") for p in element)
            return Message(syslog, "sd", (), params, rest)
        if kind == "raw":
            return Message(syslog, "raw", (), (), rest)
        body = _PARSERS[kind](body_text)
    except ParseError as exc:
        raise ParseError(exc.reason, exc.position + start + (prefix_len if fmt is None else 0), line) from None
    return Message(syslog, body.format, body.header, body.fields, body_text, rest[:prefix_len])


def _detect(rest: str, has_sd: bool = False) -> tuple[str, int]:
    """(format, where its body starts). An object line is recognised before a CEF/LEEF search, so a value
    holding ``CEF:0|`` cannot turn it into something else."""
    if rest.startswith("CEF:"):
        return "cef", 0
    if rest.startswith("LEEF:"):
        return "leef", 0
    # With structured data the MSG is free text (the rfc5424-sd profile's alert message): a text-format
    # label or "a=b" there is not a text or object line (neither format is ever sent with SD).
    if not has_sd and rest.startswith(_TEXT_START):
        return "text", 0
    if not has_sd and _OBJECT_START.match(rest):
        try:
            object.parse(rest)
        except ParseError:
            pass
        else:
            return "object", 0
    m = _EVENT_START.search(rest)
    if m is not None:
        return ("cef" if rest[m.start()] == "C" else "leef"), m.start()
    return "raw", 0
