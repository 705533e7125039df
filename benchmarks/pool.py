"""The benchmark input: a pool of distinct alert records, the fixed clock, and big JSON Lines files."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import siemfmt
from siemfmt.groups import catalog

__all__ = ["FIXED_NOW", "Pool", "fixed_clock", "make_pool", "make_records", "write_jsonl"]

FIXED_NOW = datetime(2026, 3, 10, 8, 15, 30, tzinfo=timezone.utc)

SENSORS = (
    ("Plant A Sensor", "24.1.3"),
    ("Plant B Sensor", "24.1.3"),
    ("Substation 7 Sensor", "23.2.0"),
    ("Water Works North", "24.1.5"),
    ("Refinery-Unit-3", "22.3.9"),
    ("HQ OT Sensor 01", "24.1.3"),
    ("Pipeline Compressor 12", "23.1.2"),
    ("Line 4 Packaging", "24.1.4"),
)
PROTOCOLS = ("S7", "Modbus", "DNP3", "IEC 60870-5-104", "EtherNet/IP", "OPC UA", "BACnet", "HTTP", None)
SEVERITIES = ("Warning", "Minor", "Major", "Critical")
TYPES = ("Protocol Violation", "Policy Violation", "Malware", "Anomaly", "Operational")
# Message templates: most plain, some with the characters CEF escapes (= \ | and LF).
MESSAGES = (
    "Source device {src} uploaded a program to PLC {dst}.",
    "Suspicious network activity was detected.\nDestination: {dst}",
    "Device {dst} is suspected to be disconnected (unresponsive).",
    "Unauthorized write to register {n} on {dst} by {src}.",
    "Login failed for user=operator{n} from {src} to {dst}.",
    "Path C:\\Program Files\\Vendor\\app{n}.exe started on {src}.",
    "Function code 0x{n:02x} | unit {n} rejected by {dst}.",
    "New asset {src} seen talking to {dst} on port {port}.",
)


def fixed_clock() -> datetime:
    """The header's send time for every benchmark message (reproducible output)."""
    return FIXED_NOW


def _ip(rng: random.Random) -> str:
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _mac(rng: random.Random) -> str:
    return ":".join(f"{rng.randrange(256):02x}" for _ in range(6))


def make_records(count: int, seed: int = 5) -> list[dict[str, Any]]:
    """``count`` distinct alert records (plain JSON-ready dicts): titles from the shipped catalog,
    times, addresses and messages varied."""
    rng = random.Random(seed)
    titles = sorted(entry.title for entry in catalog().values())
    base = datetime(2026, 3, 1, tzinfo=timezone.utc)
    records: list[dict[str, Any]] = []
    for i in range(count):
        sensor, version = SENSORS[i % len(SENSORS)]
        src, dst = _ip(rng), _ip(rng)
        stamp = base + timedelta(seconds=rng.randrange(30 * 86400), milliseconds=rng.randrange(1000))
        record: dict[str, Any] = {
            "sensor_name": sensor,
            "sensor_version": version,
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "title": titles[rng.randrange(len(titles))],
            "message": MESSAGES[i % len(MESSAGES)].format(src=src, dst=dst, n=i % 250, port=rng.randrange(1, 65536)),
            "severity": SEVERITIES[rng.randrange(len(SEVERITIES))],
            "type": TYPES[rng.randrange(len(TYPES))],
            "source": {"name": f"ws-{i % 97:02d}", "ip": src},
            "destination": {"name": f"plc-{i % 89:02d}", "ip": dst},
        }
        protocol = PROTOCOLS[rng.randrange(len(PROTOCOLS))]
        if protocol is not None:
            record["protocol"] = protocol
        if rng.random() < 0.6:
            record["source"]["mac"] = _mac(rng)
        if rng.random() < 0.4:
            record["destination"]["mac"] = _mac(rng)
        if rng.random() < 0.8:
            record["uuid"] = f"{i % 9 + 1}-{int(stamp.timestamp() * 1000)}"
        records.append(record)
    return records


class Pool:
    """The same ``size`` distinct alerts as records, JSON lines and validated ``Alert`` objects."""

    def __init__(self, size: int = 1000, seed: int = 5) -> None:
        self.records = make_records(size, seed)
        self.json_lines = [json.dumps(r) for r in self.records]
        self.alerts = [siemfmt.load_alert(r) for r in self.records]
        if len({a.model_dump_json() for a in self.alerts}) != len(self.alerts):
            raise AssertionError("the pool's alerts are not distinct")

    def __len__(self) -> int:
        return len(self.alerts)


def make_pool(size: int = 1000) -> Pool:
    """A pool of ``size`` distinct alerts."""
    return Pool(size)


def write_jsonl(path: Path, count: int, pool: Pool) -> int:
    """Write ``count`` distinct JSON lines (the pool's records, each with its own ``uuid``); return bytes."""
    bases = [json.dumps({k: v for k, v in r.items() if k != "uuid"})[:-1] for r in pool.records]
    written = 0
    with path.open("w", encoding="utf-8") as out:
        chunk: list[str] = []
        for i in range(count):
            chunk.append(f'{bases[i % len(bases)]}, "uuid": "bench-{i}"}}\n')
            if len(chunk) == 10_000:
                written += out.write("".join(chunk))
                chunk.clear()
        written += out.write("".join(chunk))
    return written
