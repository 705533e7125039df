"""Dialect ``cyberx-qradar``: the QRadar action of CyberX 2.5, the one real captured sensor line.

defender-formats.md §6 quotes it; this writer reproduces it from the alert it describes, with TABs
between attributes (LEEF 1.0) where the published copy shows spaces. Facts inferred from that line:
``sev`` is the severity's rank from 0 (Warning) to 3 (Critical) (the Major alert has ``sev=2``);
``cat`` is the constant ``XSense Alerts``; ``reporter`` is the sensor IP; ``score``, ``rta``,
``alertId`` (the record's ``id``), ``site``, ``zone`` and ``actions`` come from the record's extra
fields and are left out when it has none; ``srcName``/``dstName`` fall back to the device's IP.
"""

from __future__ import annotations

from typing import Any

from siemfmt.formats.base import FormatOptions, render_time
from siemfmt.formats.leef import escape_header, sanitize
from siemfmt.model import Alert, Device

__all__ = ["format"]

HEADER = "LEEF:1.0|CyberX|CyberX platform|{version}|CyberX platform Alert|"
DEV_TIME_FORMAT = "MMM dd yyyy HH:mm:ss"
CATEGORY = "XSense Alerts"


def _extra(alert: Alert, *names: str) -> str | None:
    extra: dict[str, Any] = alert.model_extra or {}
    for name in names:
        value = extra.get(name)
        if value is not None and not isinstance(value, (dict, list)) and str(value).strip():
            return str(value)
    return None


def _device(attrs: list[tuple[str, str | None]], prefix: str, d: Device | None) -> None:
    if d is not None and (d.ip or d.name):
        attrs.append((prefix, d.ip))
        attrs.append((f"{prefix}Name", d.name or d.ip))


def format(alert: Alert, opts: FormatOptions) -> str:
    """The CyberX 2.5 QRadar-action LEEF body for ``alert``."""
    attrs: list[tuple[str, str | None]] = [
        ("devTime", render_time(alert.time, opts.tz, "default")),
        ("devTimeFormat", DEV_TIME_FORMAT),
        ("sev", str(alert.severity.rank)),
        ("cat", CATEGORY),
        ("title", alert.title),
        ("score", _extra(alert, "score")),
        ("reporter", alert.sensor_ip),
        ("rta", _extra(alert, "rta")),
        ("alertId", _extra(alert, "id", "alert_id")),
        ("engine", alert.type.value),
        ("senderName", alert.sensor_name),
        ("UUID", alert.uuid),
        ("site", _extra(alert, "site", "site_name")),
        ("zone", _extra(alert, "zone", "zone_name")),
        ("actions", _extra(alert, "actions")),
    ]
    _device(attrs, "src", alert.source)
    _device(attrs, "dst", alert.destination)
    attrs.append(("msg", alert.message))
    body = "\t".join(f"{k}={sanitize(v)}" for k, v in attrs if v is not None)
    return HEADER.format(version=escape_header(alert.sensor_version)) + body
