"""The command as a subprocess: the bundled samples, format, profiles and options, rejects and exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import siemfmt
from siemfmt import cli
from tests.conftest import ALERT_FILES, INVALID_FILES, fixed_clock, load_json
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


# --- profiles, dialects, compatibility switches -----------------------------------------------------

NOW = "2026-03-10T08:15:31Z"


@pytest.mark.parametrize(
    ("args", "options", "fmt", "group"),
    [
        (["--profile", "arcsight"], {"profile": "arcsight"}, "cef", "Programming"),
        (["--profile", "qradar"], {"profile": "qradar"}, "leef", "Programming"),
        (
            ["--profile", "rfc5424-sd", "--enterprise-number", "99999"],
            {"profile": "rfc5424-sd", "enterprise_number": 99999},
            "sd",
            "Programming",
        ),
        (["--format", "leef", "--dialect", "azure-2021"], {"dialect": "azure-2021"}, "leef", "Programming"),
        (["--dialect", "cyberx-qradar"], {"dialect": "cyberx-qradar"}, "leef", "XSense Alerts"),  # its only format
        (
            ["--profile", "qradar", "--leef-delimiter", "x7C", "--leef-delimiter-hex", "--header", "none"],
            {"profile": "qradar", "leef_delimiter": "|", "leef_delimiter_hex": True, "header": "none"},
            "leef",
            "Programming",
        ),
        (
            ["--format", "object", "--time-format", "iso", "--no-infer-group", "--tz", "Europe/Berlin"],
            {"time_format": "iso", "infer_group": False, "tz": "Europe/Berlin"},
            "object",
            "NA",
        ),
    ],
)
def test_format_profiles_and_dialects_parse_back(
    args: list[str], options: dict[str, Any], fmt: siemfmt.FormatName, group: str
) -> None:
    result = run("format", *args, "--now", NOW, stdin=json.dumps(REFERENCE))
    assert result.returncode == 0, result.stderr
    assert result.stdout == siemfmt.format_alert(REFERENCE, fmt, clock=fixed_clock(), **options) + "\n"
    message = siemfmt.parse(result.stdout)
    assert message.format == fmt
    assert message.alert_group == group


def test_compatibility_switches() -> None:
    march5 = "2026-03-05T08:15:31Z"
    result = run("format", "--cef-header-space", "--no-pad-day", "--now", march5, stdin=json.dumps(REFERENCE))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("<9>Mar 5 08:15:31 Plant_A_Sensor CEF:0|")
    assert "|8| msg=" in result.stdout
    assert (siemfmt.parse(result.stdout).get("msg") or "").startswith("Source device")
    result = run("format", "--dialect", "cyberx-qradar", "--pad-day", "--now", march5, stdin=json.dumps(REFERENCE))
    assert result.stdout.startswith("<9>Mar  5 08:15:31 ")  # --pad-day overrides the dialect's default


def test_format_all_writes_every_format_of_the_profile() -> None:
    result = run("format", "--format", "all", "--header", "none", stdin=json.dumps(REFERENCE))
    assert [siemfmt.parse(line).format for line in result.stdout.splitlines()] == ["text", "object", "cef", "leef"]
    result = run("format", "--format", "all", "--profile", "arcsight", stdin=json.dumps(REFERENCE))
    assert [siemfmt.parse(line).format for line in result.stdout.splitlines()] == ["cef"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "arcsight", "--format", "leef"], "fmt: 'leef' must be one of cef for profile 'arcsight'"),
        (["--profile", "rfc5424-sd", "--header", "rfc3164"], "header: 'rfc3164' must be one of rfc5424 for profile"),
        (["--profile", "qradar", "--dialect", "azure-2021"], "dialect: 'azure-2021' applies to the defender profile"),
        (["--format", "leef", "--leef-delimiter", "|"], "leef_delimiter: LEEF 1.0 always separates attributes"),
        (["--profile", "rfc5424-sd", "--enterprise-number", "0"], "enterprise_number: 0 must be a positive integer"),
    ],
)
def test_option_errors_are_reported_without_a_traceback(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # in-process (cheap); the subprocess path is covered by test_send_with_a_profile_and_a_bad_combination
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(REFERENCE)))
    assert cli.main(["format", *args]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"siemfmt: error: {message}") and err.count("\n") == 1


def test_parse_an_rfc5424_sd_line() -> None:
    line = siemfmt.format_alert(REFERENCE, profile="rfc5424-sd", clock=fixed_clock())
    result = run("parse", "--strict", stdin=line + "\n")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["format"] == "sd" and out["alert_group"] == "Programming" and out["header"] == []
    assert ["title", "Unauthorized PLC Program Upload"] in out["fields"]
    assert out["body"] == "Source device 10.1.2.3 uploaded a program to PLC 10.1.2.50."  # the MSG
    assert [element["id"] for element in out["sd"]] == ["alert@32473"]
    assert out["sd"][0]["params"] == out["fields"]
    assert out["syslog"]["kind"] == "rfc5424" and out["syslog"]["hostname"] == "Plant_A_Sensor"


def test_usage_errors_are_fatal_exit_1() -> None:
    result = run("format", "--profile", "nope")
    assert result.returncode == 1
    assert "invalid choice: 'nope'" in result.stderr


# --- review fixes: bad input never crashes a run and is never dropped silently ----------------------

VALID = json.dumps(REFERENCE)


def test_non_string_severity_is_rejected_not_a_crash() -> None:
    bad = json.dumps({**REFERENCE, "severity": ["Major"]})
    result = run("format", "--header", "none", stdin=f"{bad}\n{VALID}\n")
    assert result.returncode == 2
    assert "severity: ['Major'] is not a severity" in result.stderr
    assert "read 2, written 1, rejected 1" in result.stderr


def test_times_no_zone_can_show_are_rejected() -> None:
    lines = [json.dumps({**REFERENCE, "time": t}) for t in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00")]
    result = run("format", "--tz", "America/New_York", stdin="\n".join([*lines, VALID]) + "\n")
    assert result.returncode == 2
    assert result.stderr.count("is out of range") == 2
    assert len(result.stdout.splitlines()) == 1


def test_huge_numbers_and_bad_utf8_are_rejected_per_line(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(('{"time": ' + "1" * 5000 + "}\n").encode() + b'{"title": "\xff"}\n' + (VALID + "\n").encode())
    rejects = tmp_path / "rejects.jsonl"
    result = run("format", "--rejects", str(rejects), str(path))
    assert result.returncode == 2
    assert f"{path}:1: rejected: not JSON" in result.stderr
    assert f"{path}:2: rejected: not UTF-8 (byte 0xff) at column 12" in result.stderr
    assert "read 3, written 1, rejected 2" in result.stderr
    assert rejects.read_bytes().splitlines()[1] == b'{"title": "\xff"}'  # written back byte for byte


def test_lists_inside_records_are_not_taken_for_alert_lists() -> None:
    no_title = {k: v for k, v in REFERENCE.items() if k != "title"}
    lines = [json.dumps({**no_title, "tags": [{"a": 1}]}), "[]", json.dumps({"alerts": []})]
    result = run("format", "--header", "none", stdin="\n".join(lines) + "\n")
    assert result.returncode == 2
    assert "title: is required" in result.stderr
    assert result.stderr.count("empty alert list") == 2
    assert "read 3, written 0, rejected 3" in result.stderr


def test_text_after_a_json_array_is_reported() -> None:
    result = run("format", "--header", "none", stdin=f"[{VALID}]\n{VALID}\n")
    assert result.returncode == 2
    assert "extra data after the array" in result.stderr
    assert "read 2, written 1, rejected 1" in result.stderr


def test_bad_rejects_path_is_fatal_before_anything_is_read() -> None:
    result = run("format", "--rejects", "/nonexistent/dir/rejects", stdin=VALID + "\n")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "--rejects /nonexistent/dir/rejects" in result.stderr


def test_parse_reports_bad_utf8_lines_and_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "lines.log"
    path.write_bytes(b"\xff bad\n" + EXPECTED["cef"].encode() + b"\n")
    result = run("parse", str(path))
    assert result.returncode == 0
    assert f"{path}:1: malformed: not UTF-8 (byte 0xff)" in result.stderr
    assert json.loads(result.stdout)["format"] == "cef"


def test_listen_interrupted_before_count_exits_0() -> None:
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "siemfmt", "listen", "--udp", "0", "--count", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    assert proc.stderr is not None
    while "udp://" not in (line := proc.stderr.readline()):  # wait until it listens
        assert line and time.monotonic() < deadline, "listen did not start"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 0


def test_unreadable_ca_file_is_fatal_and_named() -> None:
    result = run("send", "--to", "tls://127.0.0.1:6514", "--cafile", "/nonexistent/ca.pem", stdin=VALID + "\n")
    assert result.returncode == 1
    assert "tls://127.0.0.1:6514: cannot read /nonexistent/ca.pem" in result.stderr
