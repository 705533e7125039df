"""The ``arcsight`` profile: CEF with the standard dictionary keys ArcSight maps to its schema.

Also the profile for Microsoft Sentinel, whose CEF connector maps these keys to CommonSecurityLog
columns (docs/profiles.md has the table). Values longer than the CEF dictionary allows are cut to its
length, counted in characters of the unescaped value (CEF Implementation Standard, chapter 2).
"""

from __future__ import annotations

import ipaddress

from siemfmt.formats.base import FormatOptions, alert_group, render_time, truncate
from siemfmt.formats.cef import SEVERITY_LEVEL, escape_extension, escape_header
from siemfmt.model import Alert, Device

__all__ = ["LENGTHS", "format"]

VENDOR = "Microsoft"
PRODUCT = "Defender for IoT"

# CEF Implementation Standard: header field sizes, and the extension dictionary's lengths.
LENGTHS = {
    "deviceVendor": 63,
    "deviceProduct": 63,
    "deviceVersion": 31,
    "deviceEventClassId": 1023,
    "name": 512,
    "msg": 1023,
    "cat": 1023,
    "proto": 31,
    "shost": 1023,
    "dhost": 1023,
    "externalId": 40,
    "dvchost": 100,
    "cs": 4000,
    "csLabel": 1023,
}


def _ext(key: str, value: str, limit: int | None = None) -> str:
    return f"{key}={escape_extension(truncate(value, limit) if limit else value)}"


def _device(parts: list[str], d: Device | None, ip4: str, ip6: tuple[str, str], mac: str, host: str) -> None:
    """IPv4 in src/dst; IPv6 in c6a2/c6a3 with their labels (CEF dictionary: src/dst are IPv4)."""
    if d is None:
        return
    if d.ip:
        if isinstance(ipaddress.ip_address(d.ip), ipaddress.IPv4Address):
            parts.append(f"{ip4}={d.ip}")
        else:
            parts.append(f"{ip6[0]}={d.ip}")
            parts.append(f"{ip6[0]}Label={escape_extension(ip6[1])}")
    if d.mac:
        parts.append(f"{mac}={d.mac}")
    if d.name:
        parts.append(_ext(host, d.name, LENGTHS[host]))


def format(alert: Alert, opts: FormatOptions) -> str:
    """The arcsight-profile CEF body for ``alert``."""
    ms = render_time(alert.time, opts.tz, "epoch-ms")
    ext = [
        f"rt={ms}",
        _ext("msg", alert.message, LENGTHS["msg"]),
        _ext("cat", alert_group(alert, opts), LENGTHS["cat"]),
    ]
    if alert.protocol:
        ext.append(_ext("proto", alert.protocol, LENGTHS["proto"]))
    _device(ext, alert.source, "src", ("c6a2", "Source IPv6 Address"), "smac", "shost")
    _device(ext, alert.destination, "dst", ("c6a3", "Destination IPv6 Address"), "dmac", "dhost")
    if alert.uuid:
        ext.append(_ext("externalId", alert.uuid, LENGTHS["externalId"]))
    ext.append(_ext("dvchost", alert.sensor_name, LENGTHS["dvchost"]))
    if alert.sensor_ip:
        key = "dvc" if isinstance(ipaddress.ip_address(alert.sensor_ip), ipaddress.IPv4Address) else "c6a1"
        ext.append(f"{key}={alert.sensor_ip}")
        if key == "c6a1":
            ext.append("c6a1Label=Device IPv6 Address")
    ext += [
        f"cs1={alert.type.value}",
        "cs1Label=Alert Type",
        f"cs2={alert.severity.value}",
        "cs2Label=Alert Severity",
    ]
    header = "|".join(
        [
            "CEF:0",
            VENDOR,
            PRODUCT,
            escape_header(truncate(alert.sensor_version, LENGTHS["deviceVersion"])),
            escape_header(truncate(alert.title, LENGTHS["deviceEventClassId"])),
            escape_header(truncate(alert.title, LENGTHS["name"])),
            SEVERITY_LEVEL[alert.severity],
        ]
    )
    space = " " if opts.cef_header_space else ""
    return f"{header}|{space}{' '.join(ext)}"
