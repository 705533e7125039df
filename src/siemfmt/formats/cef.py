"""ArcSight CEF (contract §8): writer for the Defender profile, and a general CEF reader."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from siemfmt.errors import ParseError
from siemfmt.formats.base import CONTROL, Body, FormatOptions, read_pipe_fields, render_time
from siemfmt.groups import resolve_group
from siemfmt.model import Alert, AlertType, Severity

__all__ = ["SEVERITY_LEVEL", "escape_extension", "escape_header", "format", "parse"]

VENDOR = "Microsoft Defender for IoT"  # docs F2-F7 (contract §8 settles the "/CyberX" ambiguity)
EVENT_CLASS_ID = "Microsoft Defender for IoT Alert"
# dialect azure-2021: docs F0/F1 vendor, and the signature id seen in 2021 field data (defender-formats.md §4).
_VENDOR = {"azure-2021": "Azure Defender for IoT"}
_EVENT_CLASS_ID = {"azure-2021": "Azure Defender for IoT Alert"}

# Contract §8 / docs F2-F7: Warning 1, Minor 4, Major 8, Critical 10.
SEVERITY_LEVEL = {Severity.WARNING: "1", Severity.MINOR: "4", Severity.MAJOR: "8", Severity.CRITICAL: "10"}


_HEADER_SPECIAL = re.compile(r"[\\|\x00-\x1f\x7f]")
_EXT_SPECIAL = re.compile(r"[\\=\x00-\x1f\x7f]")
_EXT_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")  # all but LF and CR, which are escaped


@lru_cache(maxsize=4096)  # sensor names, versions and titles repeat: a stream has few of each
def escape_header(value: str) -> str:
    """CEF header field: ``\\`` then ``|`` escaped; CRLF and each control character -> one space (CEF 1.2)."""
    if _HEADER_SPECIAL.search(value) is None:
        return value
    value = value.replace("\\", "\\\\").replace("|", "\\|")
    if CONTROL.search(value) is not None:
        value = CONTROL.sub(" ", value.replace("\r\n", " "))
    return value


def escape_extension(value: str) -> str:
    """CEF extension value: ``\\`` ``=`` LF CR escaped; TAB and other controls -> space; ``|`` as is."""
    if _EXT_SPECIAL.search(value) is None:
        return value
    value = value.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n").replace("\r", "\\r")
    if _EXT_CONTROL.search(value) is not None:
        value = _EXT_CONTROL.sub(" ", value)
    return value


# Protocols and alert groups take few distinct values: their escaped form is worth keeping.
_escape_repeated = lru_cache(maxsize=1024)(escape_extension)
_SEVERITY = {s: s.value for s in Severity}
_TYPE = {t: t.value for t in AlertType}


def writer_for(opts: FormatOptions) -> Callable[[Alert], str]:
    """The CEF writer for ``opts``: constants and option look-ups done once, not per alert."""
    head = f"CEF:0|{_VENDOR.get(opts.dialect, VENDOR)}|"
    class_id = f"|{_EVENT_CLASS_ID.get(opts.dialect, EVENT_CLASS_ID)}|"
    msg = " msg=" if opts.cef_header_space else "msg="
    tz, style, infer = opts.tz, opts.time_format, opts.infer_group
    level, severity_word, type_word = SEVERITY_LEVEL, _SEVERITY, _TYPE
    esc_h, esc_x, esc_few = escape_header, escape_extension, _escape_repeated

    def write(alert: Alert) -> str:
        protocol, uuid, src, dst = alert.protocol, alert.uuid, alert.source, alert.destination
        devices = ""
        if src is not None:
            if src.ip:
                devices += f" src_ip={src.ip}"
            if src.mac:
                devices += f" src_mac={src.mac}"
        if dst is not None:
            if dst.ip:
                devices += f" dst_ip={dst.ip}"
            if dst.mac:
                devices += f" dst_mac={dst.mac}"
        severity = alert.severity
        return (
            f"{head}{esc_h(alert.sensor_name)}|{esc_h(alert.sensor_version)}{class_id}{esc_h(alert.title)}|"
            f"{level[severity]}|{msg}{esc_x(alert.message)}"
            f"{f' protocol={esc_few(protocol)}' if protocol else ''}"
            f" severity={severity_word[severity]} type={type_word[alert.type]}"
            f"{f' UUID={esc_x(uuid)}' if uuid else ''}"
            f" start={render_time(alert.time, tz, style)}{devices}"
            f" cat={esc_few(resolve_group(alert.alert_group, alert.title, use_catalog=infer))}"
        )

    return write


def format(alert: Alert, opts: FormatOptions) -> str:
    """The CEF body for ``alert`` (``writer_for(opts)`` gives the same writer with options bound once)."""
    return writer_for(opts)(alert)


# --- reader ---------------------------------------------------------------------------------------

_VERSION = re.compile(r"CEF:(\d+)\|")
# A key: starts the extension or follows a space; Beats' key alphabet (alnum _ . , [ ] -).
_KEY = re.compile(r"(?:^|(?<= ))([A-Za-z0-9_][A-Za-z0-9_.,\[\]-]*)=")
_EXT_UNESCAPE = re.compile(r"\\([\\=nr])")
_EXT_NAMED = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}
HEADER_NAMES = ("version", "device_vendor", "device_product", "device_version", "signature_id", "name", "severity")


def _unescape_ext(value: str) -> str:
    # CEF 1.2: \\ \= \n \r; any other backslash pair is kept literally (as Logstash does).
    if "\\" not in value:
        return value
    return _EXT_UNESCAPE.sub(lambda m: _EXT_NAMED[m.group(1)], value)


def parse(body: str) -> Body:
    """A CEF line (from ``CEF:``) -> header (version, vendor, product, version, id, name, severity) and
    extension fields in order, unescaped.

    CEF 1.2 "The Extension Field": of several spaces before a key all but the last belong to the previous
    value; trailing white space of the final value is not preserved."""
    m = _VERSION.match(body)
    if m is None:
        raise ParseError("expected 'CEF:<version>|' (CEF 1.1)", 0, body)
    header = [m.group(1)]
    pos = read_pipe_fields("CEF", body, m.end(), HEADER_NAMES, header)
    ext = body[pos:]
    fields: list[tuple[str, str]] = []
    # A key's '=' is never escaped: the character before it is a key character, not a backslash.
    keys = list(_KEY.finditer(ext))
    if ext.strip() and (not keys or ext[: keys[0].start()].strip()):
        raise ParseError("extension does not start with key=value", pos, body)
    for i, k in enumerate(keys):
        # Spaces before a key but one belong to the value; the final value's trailing white space is dropped.
        raw = ext[k.end() : keys[i + 1].start() - 1] if i + 1 < len(keys) else ext[k.end() :].rstrip(" \t\r\n")
        fields.append((k.group(1), _unescape_ext(raw)))
    return Body("cef", tuple(header), tuple(fields))
