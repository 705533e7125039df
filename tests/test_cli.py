"""The command as a subprocess: the bundled samples, format, rejects and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import siemfmt
from tests.conftest import ALERT_FILES, INVALID_FILES, load_json
from tests.test_contract import EXPECTED, REFERENCE


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "siemfmt", *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_samples_prints_every_sample_in_every_format() -> None:
    result = run("samples")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5 * 4
    assert lines[:4] == [EXPECTED[f] for f in ("text", "object", "cef", "leef")]
    assert [siemfmt.parse(line).format for line in lines[:4]] == ["text", "object", "cef", "leef"]
    assert "read 5, written 20, rejected 0" in result.stderr


def test_format_from_stdin_with_fixed_time(tmp_path: Path) -> None:
    result = run("format", "--format", "cef", "--now", "2026-03-10T08:15:31Z", "-", stdin=json.dumps(REFERENCE) + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == EXPECTED["cef"] + "\n"


def test_format_files_keeps_going_past_bad_lines_and_exits_2(tmp_path: Path) -> None:
    good = [json.dumps(load_json(p)) for p in ALERT_FILES[:3]]
    bad = [json.dumps(load_json(p)) for p in INVALID_FILES[:2]]
    path = tmp_path / "alerts.jsonl"
    path.write_text("\n".join([good[0], bad[0], "{not json", good[1], "", bad[1], good[2]]) + "\n", encoding="utf-8")
    result = run("format", "--format", "leef", "--header", "none", str(path))
    assert result.returncode == 2
    assert len(result.stdout.splitlines()) == 3
    errors = [line for line in result.stderr.splitlines() if "rejected:" in line]
    assert [e.split(": rejected")[0] for e in errors] == [f"{path}:2", f"{path}:3", f"{path}:6"]
    assert "title: is required" in errors[0]
    assert "not JSON" in errors[1]
    assert "read 6, written 3, rejected 3" in result.stderr


def test_sensor_name_default() -> None:
    record = {k: v for k, v in REFERENCE.items() if k != "sensor_name"}
    result = run(
        "format", "--format", "text", "--header", "none", "--sensor-name", "Plant A Sensor", stdin=json.dumps(record)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("CyberX platform name: Plant A Sensor; ")


def test_missing_file_is_fatal() -> None:
    result = run("format", "/nonexistent/alerts.jsonl")
    assert result.returncode == 1
    assert "/nonexistent/alerts.jsonl" in result.stderr
