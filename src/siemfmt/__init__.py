"""siemfmt: OT security alerts as the exact syslog messages SIEMs ingest, and back.

Quick use::

    import siemfmt
    line = siemfmt.format_alert(record, "cef")      # record: a dict or an Alert
    msg = siemfmt.parse(line)                       # Message: header fields + body fields
"""

from __future__ import annotations

from siemfmt.errors import AlertValidationError, FieldError, ParseError, SiemfmtError
from siemfmt.formats import (
    FORMATS,
    FormatName,
    Message,
    format_alert,
    format_cef,
    format_leef,
    format_object,
    format_text,
    make_formatter,
    parse,
)
from siemfmt.groups import DEFAULT_GROUPS, NO_GROUP, resolve_group
from siemfmt.model import Alert, AlertType, Device, Severity, load_alert, parse_time

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_GROUPS",
    "FORMATS",
    "NO_GROUP",
    "Alert",
    "AlertType",
    "AlertValidationError",
    "Device",
    "FieldError",
    "FormatName",
    "Message",
    "ParseError",
    "Severity",
    "SiemfmtError",
    "__version__",
    "format_alert",
    "format_cef",
    "format_leef",
    "format_object",
    "format_text",
    "load_alert",
    "make_formatter",
    "parse",
    "parse_time",
    "resolve_group",
]
