"""The ``rfc5424-sd`` profile: the alert as one RFC 5424 SD-ELEMENT, the alert message as MSG.

The SD-ID is ``alert@<private enterprise number>`` (32473 by default: RFC 5612 reserves it for
documentation; use your organisation's PEN in production). PARAM-VALUEs escape ``\\``, ``"`` and ``]``
(RFC 5424 §6.3.3); control characters, for which RFC 5424 has no escape, become spaces so the message
stays one line (lossy, like LEEF). Parameter names are the record's own field names; ``time`` is
RFC 3339 with milliseconds in the configured zone (or epoch ms with ``time_format="epoch-ms"``).
"""

from __future__ import annotations

from siemfmt.formats.base import CONTROL, FormatOptions, alert_group, controls_to_space, render_time
from siemfmt.model import Alert, Device
from siemfmt.syslog import sd_element

__all__ = ["format", "params", "structured_data"]


def _device(out: list[tuple[str, str]], prefix: str, d: Device | None) -> None:
    if d is None:
        return
    for attr in ("name", "ip", "mac", "vendor", "os", "protocol", "address"):
        value = getattr(d, attr)
        if value:
            out.append((f"{prefix}_{attr}", value))


def params(alert: Alert, opts: FormatOptions) -> list[tuple[str, str]]:
    """The SD-PARAMs, in order, before escaping and control-character mapping."""
    out = [("sensor_name", alert.sensor_name)]
    if alert.sensor_ip:
        out.append(("sensor_ip", alert.sensor_ip))
    if alert.sensor_version:
        out.append(("sensor_version", alert.sensor_version))
    out += [
        ("time", render_time(alert.time, opts.tz, "iso" if opts.time_format == "default" else opts.time_format)),
        ("title", alert.title),
        ("severity", alert.severity.value),
        ("type", alert.type.value),
    ]
    if alert.protocol:
        out.append(("protocol", alert.protocol))
    _device(out, "src", alert.source)
    _device(out, "dst", alert.destination)
    if alert.uuid:
        out.append(("uuid", alert.uuid))
    out.append(("alert_group", alert_group(alert, opts)))
    return out


def structured_data(alert: Alert, opts: FormatOptions) -> str:
    """The SD-ELEMENT for the RFC 5424 header's STRUCTURED-DATA field."""
    return sd_element(opts.sd_id, [(k, controls_to_space(v)) for k, v in params(alert, opts)])


def format(alert: Alert, opts: FormatOptions) -> str:
    """MSG: the alert message, control characters as spaces (the SD goes in the header)."""
    return controls_to_space(alert.message) if CONTROL.search(alert.message) else alert.message
