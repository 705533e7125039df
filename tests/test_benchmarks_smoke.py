"""The benchmarks run end to end in smoke mode (tiny counts) and print every row; no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

ROWS = (
    "siemfmt cef from Alert",
    "siemfmt leef from Alert",
    "siemfmt text from Alert",
    "siemfmt object from Alert",
    "siemfmt JSON line -> cef",
    "baseline: hand-written CEF f-string",
    "baseline: cefevent 0.5.6",
    "baseline: rfc5424-logging-handler build_msg",
    "baseline: stdlib SysLogHandler format",
    "tcp: siemfmt send + flush",
    "tcp: siemfmt send_many + flush",
    "baseline: tcp stdlib SysLogHandler",
    "baseline: tcp raw sendall",
    "relp: siemfmt send + flush",
    "udp: siemfmt send",
    "udp: siemfmt send_many",
    "baseline: udp stdlib SysLogHandler",
    "baseline: udp raw sendto",
    "memory: siemfmt send 2,000 alerts (tcp, cef)",
)
TARGETS = (
    "CEF from Alert >= 0.5x hand-written",
    "CEF from Alert >= 10x cefevent",
    "JSON line -> CEF >= 0.15x hand-written",
    "TCP send >= 3x SysLogHandler TCP",
    "TCP send >= 0.5x raw sendall",
    "TCP send_many >= 3x SysLogHandler TCP",
    "TCP send_many >= 0.5x raw sendall",
    "RELP send >= 0.5x TCP send (default window)",
    "peak RSS of siemfmt send < 100 MB",
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc, out


def test_smoke_exits_0_and_prints_every_row(smoke: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, _ = smoke
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for row in ROWS:
        assert any(line.startswith(row) for line in lines), f"row {row!r} missing from:\n{proc.stdout}"
    for target in TARGETS:
        assert any(target in line and line[:4] in ("PASS", "FAIL") for line in lines), f"target {target!r} missing"


def test_smoke_writes_json(smoke: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, out = smoke
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["mode"] == "smoke"
    assert [r["name"] for r in doc["results"]] == list(ROWS)
    assert all(r["msgs_per_s"] > 0 for r in doc["results"])
    assert {t["target"] for t in doc["targets"]} == set(TARGETS)
    assert all(t["status"] in ("PASS", "FAIL") for t in doc["targets"])
