"""Formatting benchmarks: siemfmt's four formats and JSON line -> CEF, against four baselines.

Baselines, all run in the same process on the same pool:

* ``hand-written CEF``: one f-string with chained ``str.replace`` escaping, byte-identical to
  ``siemfmt.format_alert(alert, "cef", clock=fixed)`` for the pool (checked before timing);
* ``cefevent``: its documented per-message use (``CEFEvent()``, ``set_field`` for each field,
  ``build_cef()``); it writes the CEF body only, no syslog header;
* ``rfc5424-logging-handler``: ``Rfc5424SysLogHandler.build_msg(record)`` (the bytes ``emit`` hands to
  its transport), on a LogRecord whose message is the CEF body;
* ``stdlib SysLogHandler``: ``handler.format(record)`` plus the NUL, PRI and UTF-8 encoding ``emit``
  adds, on the same records, with an RFC 3164-style ``%(asctime)s`` formatter.
"""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
from collections.abc import Callable
from datetime import datetime, timezone

from cefevent import CEFEvent  # type: ignore[import-untyped]
from rfc5424logging import Rfc5424SysLogHandler  # type: ignore[import-untyped]

import siemfmt
from benchmarks.pool import Pool, fixed_clock
from benchmarks.timing import Case, Result, Settings, cycled, interleaved, timed
from siemfmt import Alert, AlertType, Severity
from siemfmt.groups import catalog

__all__ = ["handwritten_cef", "run_formatting", "stdlib_syslog_bytes"]

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
VENDOR = "Microsoft Defender for IoT"
CLASS_ID = "Microsoft Defender for IoT Alert"
UTC = timezone.utc


def handwritten_cef(clock: Callable[[], datetime] = fixed_clock) -> Callable[[Alert], str]:
    """The pure-Python limit for siemfmt's CEF: f-strings, dict look-ups, chained ``str.replace``.

    Same output as siemfmt's defender CEF with the RFC 3164 header (PRI 9, UTC, host = sensor name
    with spaces as ``_``) for alerts whose header fields hold no control characters."""
    groups = catalog_groups()
    level = {Severity.WARNING: "1", Severity.MINOR: "4", Severity.MAJOR: "8", Severity.CRITICAL: "10"}
    sev_name = {s: s.value for s in Severity}
    type_name = {t: t.value for t in AlertType}

    def fmt(a: Alert) -> str:
        now = clock()
        if now.tzinfo is not UTC:
            now = now.astimezone(UTC)
        t = a.time
        if t.tzinfo is not UTC:
            t = t.astimezone(UTC)
        protocol, uuid, s, d, name, sev = a.protocol, a.uuid, a.source, a.destination, a.sensor_name, a.severity
        devices = ""
        if s is not None:
            if s.ip:
                devices += " src_ip=" + s.ip
            if s.mac:
                devices += " src_mac=" + s.mac
        if d is not None:
            if d.ip:
                devices += " dst_ip=" + d.ip
            if d.mac:
                devices += " dst_mac=" + d.mac
        product = name.replace("\\", "\\\\").replace("|", "\\|")
        version = a.sensor_version.replace("\\", "\\\\").replace("|", "\\|")
        title = a.title.replace("\\", "\\\\").replace("|", "\\|")
        msg = a.message.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n").replace("\r", "\\r")
        proto = " protocol=" + protocol.replace("\\", "\\\\").replace("=", "\\=") if protocol else ""
        uuid_ = " UUID=" + uuid.replace("\\", "\\\\").replace("=", "\\=") if uuid else ""
        return (
            f"<9>{MONTHS[now.month - 1]} {now.day:2d} {now.hour:02d}:{now.minute:02d}:{now.second:02d} "
            f"{name.replace(' ', '_')} CEF:0|{VENDOR}|{product}|{version}|{CLASS_ID}|{title}|{level[sev]}|"
            f"msg={msg}{proto} severity={sev_name[sev]} type={type_name[a.type]}{uuid_} "
            f"start={MONTHS[t.month - 1]} {t.day:02d} {t.year:04d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"
            f"{devices} cat={groups.get(a.title, 'NA')}"
        )

    return fmt


def catalog_groups() -> dict[str, str]:
    """Alert title -> alert group, from the shipped catalog (``NA`` when the catalog names none)."""
    return {entry.title: entry.group or "NA" for entry in catalog().values()}


_GROUPS = catalog_groups()


def cefevent_format(a: Alert) -> str:
    """cefevent's documented use, one new event per message."""
    event = CEFEvent()
    event.set_field("deviceVendor", VENDOR)
    event.set_field("deviceProduct", a.sensor_name)
    event.set_field("deviceVersion", a.sensor_version)
    event.set_field("signatureId", CLASS_ID)
    event.set_field("name", a.title)
    event.set_field("severity", {"Warning": 1, "Minor": 4, "Major": 8, "Critical": 10}[a.severity.value])
    event.set_field("message", a.message)
    if a.protocol:
        event.set_field("applicationProtocol", a.protocol)
    t = a.time.astimezone(UTC)
    event.set_field("startTime", f"{MONTHS[t.month - 1]} {t.day:02d} {t.year:04d} {t:%H:%M:%S}")
    if a.source is not None:
        if a.source.ip:
            event.set_field("sourceAddress", a.source.ip)
        if a.source.mac:
            event.set_field("sourceMacAddress", a.source.mac)
    if a.destination is not None:
        if a.destination.ip:
            event.set_field("destinationAddress", a.destination.ip)
        if a.destination.mac:
            event.set_field("destinationMac", a.destination.mac)
    event.set_field("deviceEventCategory", _GROUPS.get(a.title, "NA"))
    out: str = event.build_cef()
    return out


def log_records(bodies: list[str]) -> list[logging.LogRecord]:
    """One LogRecord per message (CRITICAL, message = the given text), made before timing."""
    return [
        logging.LogRecord("siemfmt", logging.CRITICAL, __file__, 1, body, None, None, func="bench") for body in bodies
    ]


def stdlib_syslog_bytes(handler: logging.handlers.SysLogHandler, record: logging.LogRecord) -> bytes:
    """What ``SysLogHandler.emit`` builds before it sends (Python 3.10-3.13): format, ident, NUL, PRI, UTF-8."""
    msg = handler.format(record)
    if handler.ident:
        msg = handler.ident + msg
    if handler.append_nul:
        msg += "\000"
    prio = f"<{handler.encodePriority(handler.facility, handler.mapPriority(record.levelname))}>"
    return prio.encode("utf-8") + msg.encode("utf-8")


def _check_identical(pool: Pool, hand: Callable[[Alert], str]) -> None:
    for alert in pool.alerts:
        ours = siemfmt.format_alert(alert, "cef", clock=fixed_clock)
        theirs = hand(alert)
        if ours != theirs:
            raise AssertionError(f"hand-written CEF differs from siemfmt:\n  siemfmt: {ours!r}\n  hand:    {theirs!r}")


def run_formatting(pool: Pool, settings: Settings) -> list[Result]:
    """Every formatting row, siemfmt first, then the baselines, measured in turns (``interleaved``)."""
    n, slow, rep = settings.format_n, settings.slow_n, settings.repeat
    alerts = cycled(pool.alerts, n)
    alerts_slow = cycled(pool.alerts, slow)
    lines_slow = cycled(pool.json_lines, slow)
    warm = pool.alerts
    cases: list[Case] = []

    def bench(name: str, fmt: Callable[[Alert], object], items: list[Alert], note: str = "") -> None:
        def run() -> None:
            for a in items:
                fmt(a)

        def warmup() -> None:
            for a in warm:
                fmt(a)

        cases.append(Case(name, "formatting", len(items), timed(run), warmup, note))

    for fmt_name in ("cef", "leef", "text", "object"):
        formatter = siemfmt.make_formatter(fmt_name, clock=fixed_clock)
        bench(f"siemfmt {fmt_name} from Alert", formatter, alerts)

    cef = siemfmt.make_formatter("cef", clock=fixed_clock)
    load = siemfmt.load_alert
    loads = json.loads

    def end_to_end() -> None:
        for line in lines_slow:
            cef(load(loads(line)))

    def end_to_end_warm() -> None:
        for line in pool.json_lines:
            cef(load(loads(line)))

    cases.append(
        Case(
            "siemfmt JSON line -> cef",
            "formatting",
            slow,
            timed(end_to_end),
            end_to_end_warm,
            "json.loads + load_alert",
        )
    )

    hand = handwritten_cef()
    _check_identical(pool, hand)
    bench("baseline: hand-written CEF f-string", hand, alerts, "byte-identical to siemfmt cef (checked)")
    bench("baseline: cefevent 0.5.6", cefevent_format, alerts_slow, "body only, no syslog header")

    bodies = [siemfmt.format_alert(a, "cef", header="none", clock=fixed_clock) for a in pool.alerts]
    records = cycled(log_records(bodies), slow)
    rfc = Rfc5424SysLogHandler(
        stream=io.BytesIO(), hostname="Plant_A_Sensor", appname="siemfmt", procid="-", utc_timestamp=True
    )
    stdlib = logging.handlers.SysLogHandler(address=("127.0.0.1", 9))  # UDP: nothing is sent
    stdlib.setFormatter(logging.Formatter("%(asctime)s Plant_A_Sensor %(message)s", datefmt="%b %d %H:%M:%S"))
    try:
        for name, fn, note in (
            ("baseline: rfc5424-logging-handler build_msg", rfc.build_msg, "LogRecord -> bytes, no socket"),
            (
                "baseline: stdlib SysLogHandler format",
                lambda r: stdlib_syslog_bytes(stdlib, r),
                "format + PRI + encode, no socket",
            ),
        ):

            def run_records(fn: Callable[[logging.LogRecord], object] = fn) -> None:
                for r in records:
                    fn(r)

            cases.append(Case(name, "formatting", slow, timed(run_records), note=note))
        return interleaved(cases, rep)
    finally:
        rfc.close()
        stdlib.close()
