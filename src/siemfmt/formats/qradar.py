"""The ``qradar`` profile: LEEF 2.0 with the predefined attributes QRadar normalises.

``devTime`` in epoch milliseconds (needs no ``devTimeFormat``), ``sev`` 1-10, ``cat``, ``src``, ``dst``,
``srcMAC``, ``dstMAC``, ``proto``, ``usrName`` where the record has a user name (LEEF guide,
predefined attributes); the rest as custom keys. The profile's default header is RFC 5424.
"""

from __future__ import annotations

from siemfmt.formats.base import FormatOptions, alert_group, render_time, truncate
from siemfmt.formats.cef import SEVERITY_LEVEL
from siemfmt.formats.leef import delimiter_field, escape_header, sanitize
from siemfmt.model import Alert

__all__ = ["format"]

VENDOR = "Microsoft"
PRODUCT = "Defender for IoT"
EVENT_ID_MAX = 255  # LEEF guide, table 2
USER_KEYS = ("user_name", "usr_name", "username", "user")  # extra record fields that name a user


def format(alert: Alert, opts: FormatOptions) -> str:
    """The qradar-profile LEEF 2.0 body for ``alert``."""
    d = opts.leef_delimiter  # "^" unless the caller chose another (options() defaults it for qradar)
    ms = render_time(alert.time, opts.tz, "epoch-ms")
    attrs = [f"devTime={ms}", f"sev={SEVERITY_LEVEL[alert.severity]}", f"cat={sanitize(alert_group(alert, opts), d)}"]
    src, dst = alert.source, alert.destination
    if src is not None and src.ip:
        attrs.append(f"src={src.ip}")
    if dst is not None and dst.ip:
        attrs.append(f"dst={dst.ip}")
    if src is not None and src.mac:
        attrs.append(f"srcMAC={src.mac}")
    if dst is not None and dst.mac:
        attrs.append(f"dstMAC={dst.mac}")
    if alert.protocol:
        attrs.append(f"proto={sanitize(alert.protocol, d)}")
    extra = alert.model_extra or {}
    user = next((extra[k] for k in USER_KEYS if isinstance(extra.get(k), str) and extra[k].strip()), None)
    if user is not None:
        attrs.append(f"usrName={sanitize(truncate(user, 255), d)}")
    attrs += [f"title={sanitize(alert.title, d)}", f"msg={sanitize(alert.message, d)}", f"type={alert.type.value}"]
    if src is not None and src.name:
        attrs.append(f"srcName={sanitize(src.name, d)}")
    if dst is not None and dst.name:
        attrs.append(f"dstName={sanitize(dst.name, d)}")
    if alert.uuid:
        attrs.append(f"externalId={sanitize(alert.uuid, d)}")
    attrs.append(f"sensor={sanitize(alert.sensor_name, d)}")
    event_id = escape_header(truncate(alert.title, EVENT_ID_MAX))
    head = f"LEEF:2.0|{VENDOR}|{PRODUCT}|{escape_header(alert.sensor_version)}|{event_id}|"
    return f"{head}{delimiter_field(d, opts.leef_delimiter_hex)}|{d.join(attrs)}"
