"""The ``siemfmt`` command end to end, as a subprocess, against in-process loopback receivers."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import siemfmt
from siemfmt import cli
from siemfmt.inputs import read_records
from siemfmt.testing import ReceiverFactory, SyslogReceiver
from siemfmt.transport import connect
from tests.conftest import ALERT_FILES, INVALID_FILES, closed_port, load_json
from tests.tls_pki import have_openssl, make_pki

REFERENCE = load_json(ALERT_FILES[0])  # Major, Policy Violation, S7, "Unauthorized PLC Program Upload"


def run(*args: str, stdin: str = "", timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "siemfmt", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def fixture_records(n: int) -> list[dict[str, Any]]:
    return [load_json(p) for p in ALERT_FILES[:n]]


def summary(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


@pytest.fixture
def udp(make_receiver: ReceiverFactory) -> SyslogReceiver:
    return make_receiver("udp")


@pytest.fixture
def tcp(make_receiver: ReceiverFactory) -> SyslogReceiver:
    return make_receiver("tcp")


# --- send ------------------------------------------------------------------------------------------


def test_send_udp_streams_stdin_and_messages_arrive_intact(udp: SyslogReceiver) -> None:
    records = fixture_records(6)
    result = run("send", "--to", udp.url, "--format", "leef", "--header", "none", "-", stdin=jsonl(records))
    assert result.returncode == 0, result.stderr
    assert summary(result.stderr) == "siemfmt: read 6, sent 6, rejected 0, dropped 0"
    got = udp.wait_for(6)
    assert sorted(r.line for r in got) == sorted(siemfmt.format_alert(r, "leef", header="none") for r in records)
    assert "\r" not in result.stderr  # no progress when stderr is not a terminal


def test_send_tcp_octet_counting_json_array_and_api_list(tcp: SyslogReceiver, tmp_path: Path) -> None:
    records = fixture_records(4)
    array = tmp_path / "alerts.json"
    array.write_text(json.dumps(records, indent=2), encoding="utf-8")
    api = tmp_path / "api.json"
    api.write_text(json.dumps({"alerts": [load_json(p) for p in ALERT_FILES[17:19]]}), encoding="utf-8")
    result = run("send", "--to", tcp.url, "--framing", "octet-counting", "--format", "cef", str(array), str(api))
    assert result.returncode == 0, result.stderr
    assert summary(result.stderr) == "siemfmt: read 6, sent 6, rejected 0, dropped 0"
    got = tcp.wait_for(6)
    assert [m.format for m in (r.message for r in got) if m is not None] == ["cef"] * 6
    assert [r.message.get("msg") for r in got if r.message] == [
        siemfmt.parse(siemfmt.format_alert(r, "cef")).get("msg")
        for r in [*records, *json.loads(api.read_text())["alerts"]]
    ]


def test_send_rejects_bad_lines_keeps_going_and_exits_2(udp: SyslogReceiver, tmp_path: Path) -> None:
    good = [json.dumps(r) for r in fixture_records(3)]
    bad = [json.dumps(load_json(p)) for p in INVALID_FILES[:2]]
    path = tmp_path / "mixed.jsonl"
    lines = [good[0], bad[0], "{not json", good[1], "", bad[1], good[2]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejects = tmp_path / "rejects.jsonl"
    result = run("send", "--to", udp.url, "--rejects", str(rejects), str(path))
    assert result.returncode == 2, result.stderr
    assert summary(result.stderr) == "siemfmt: read 6, sent 3, rejected 3, dropped 0"
    errors = [line for line in result.stderr.splitlines() if "rejected:" in line]
    assert [e.split(": rejected")[0] for e in errors] == [f"{path}:2", f"{path}:3", f"{path}:6"]
    assert "title: is required" in errors[0]  # field and reason
    assert "not JSON" in errors[1]
    assert rejects.read_text(encoding="utf-8").splitlines() == [bad[0], "{not json", bad[1]]
    assert len(udp.wait_for(3)) == 3


def test_send_to_unreachable_tcp_is_fatal() -> None:
    started = time.monotonic()
    result = run("send", "--to", f"tcp://127.0.0.1:{closed_port()}", "--timeout", "1", stdin=jsonl(fixture_records(2)))
    assert result.returncode == 1, result.stderr
    assert "not everything was written within 1 s" in result.stderr
    assert "read 2, sent 0" in summary(result.stderr)
    assert time.monotonic() - started < 15


@pytest.mark.skipif(not have_openssl(), reason="needs the openssl command to make a test PKI")
def test_send_tls_with_client_certificate_and_insecure(make_receiver: ReceiverFactory, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    mutual = make_receiver("tls", certfile=str(pki.server_cert), keyfile=str(pki.server_key), client_ca=str(pki.ca))
    tls_args = ["--cafile", str(pki.ca), "--cert", str(pki.client_cert), "--key", str(pki.client_key)]
    result = run("send", "--to", mutual.url, *tls_args, "--timeout", "5", stdin=jsonl(fixture_records(2)))
    assert result.returncode == 0, result.stderr
    assert [m.format for m in (r.message for r in mutual.wait_for(2)) if m] == ["cef", "cef"]

    untrusted = make_receiver("tls", certfile=str(pki.other_server_cert), keyfile=str(pki.other_server_key))
    result = run(
        "send", "--to", untrusted.url, "--cafile", str(pki.ca), "--timeout", "1", stdin=jsonl(fixture_records(1))
    )
    assert result.returncode == 1  # verification fails: nothing goes out
    result = run("send", "--to", untrusted.url, "--insecure", "--timeout", "5", stdin=jsonl(fixture_records(1)))
    assert result.returncode == 0, result.stderr
    assert len(untrusted.wait_for(1)) == 1


def test_send_bad_url_and_missing_file_are_fatal() -> None:
    result = run("send", "--to", "http://127.0.0.1:1", stdin=jsonl(fixture_records(1)))
    assert result.returncode == 1 and "must start with udp://" in result.stderr
    result = run("send", "--to", "udp://127.0.0.1:9", "/nonexistent/alerts.jsonl")
    assert result.returncode == 1 and "/nonexistent/alerts.jsonl" in result.stderr


# --- forward ---------------------------------------------------------------------------------------

MATRIX = """
[[exclusions]]
name = "maintenance"
titles = ["Firmware Version Changed"]

[[exclusions]]
name = "lab"
sensors = ["Lab Sensor"]

[[rules]]
name = "major-s7-policy"
severity = "Major"
protocols = ["s7"]
engines = ["Policy Violation"]
  [[rules.actions]]
  url = "udp://127.0.0.1:{udp}"
  format = "cef"
  header = "none"
  [[rules.actions]]
  url = "tcp://127.0.0.1:{tcp}"
  format = "leef"
  header = "none"

[[rules]]
name = "critical"
severity = "Critical"
  [[rules.actions]]
  url = "tcp://127.0.0.1:{tcp}"
  format = "text"
  header = "none"
"""


def matrix_alerts() -> list[dict[str, Any]]:
    base = {**REFERENCE, "uuid": None}
    return [
        {**base, "title": "t-major"},  # rule 1 (both actions)
        {**base, "title": "t-minor", "severity": "Minor"},  # below both thresholds
        {**base, "title": "t-critical", "severity": "Critical"},  # rules 1 and 2
        {**base, "title": "t-modbus", "protocol": "Modbus"},  # protocol filter
        {**base, "title": "t-anomaly", "type": "Anomaly", "severity": "Critical"},  # engine filter: rule 2 only
        {**base, "title": "Firmware Version Changed", "severity": "Critical"},  # excluded by title
        {**base, "title": "t-lab", "sensor_name": "Lab Sensor", "severity": "Critical"},  # excluded by sensor
    ]


def test_forward_rules_matrix(udp: SyslogReceiver, tcp: SyslogReceiver, tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(MATRIX.replace("{udp}", str(udp.port)).replace("{tcp}", str(tcp.port)), encoding="utf-8")
    result = run("forward", "--config", str(config), stdin=jsonl(matrix_alerts()))
    assert result.returncode == 0, result.stderr
    assert summary(result.stderr) == ("siemfmt: read 7, sent 6, rejected 0, dropped 0, excluded 2, unmatched 2")
    udp_titles = sorted((m.header[5], m.format) for m in (r.message for r in udp.wait_for(2)) if m)
    assert udp_titles == [("t-critical", "cef"), ("t-major", "cef")]
    tcp_got = tcp.wait_for(4)
    tcp_titles = sorted(
        (m.get("title") or m.get("Microsoft Defender for IoT Alert") or "", m.format)
        for m in (r.message for r in tcp_got)
        if m
    )
    assert tcp_titles == [
        ("t-anomaly", "text"),
        ("t-critical", "leef"),
        ("t-critical", "text"),
        ("t-major", "leef"),
    ]
    time.sleep(0.2)
    assert len(udp.received) == 2 and len(tcp.received) == 4  # nothing else arrived


def test_forward_placeholders_with_var(udp: SyslogReceiver, tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text('[[rules]]\nname = "all"\n[[rules.actions]]\nurl = "udp://127.0.0.1:{p}"\n', encoding="utf-8")
    result = run("forward", "--config", str(config), "--var", f"p={udp.port}", stdin=jsonl(fixture_records(2)))
    assert result.returncode == 0, result.stderr
    assert len(udp.wait_for(2)) == 2


def test_forward_bad_config_is_fatal_and_names_file_rule_and_key(tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(
        '[[rules]]\nname = "plc"\n[[rules.actions]]\nurl = "udp://h:1"\n[[rules.actions]]\nurl = "udp://h:1"\n'
        'format = "xml"\n',
        encoding="utf-8",
    )
    result = run("forward", "--config", str(config), stdin=jsonl(fixture_records(1)))
    assert result.returncode == 1
    assert (
        "siemfmt: error: rules.toml: rule \"plc\" action 2: format: 'xml' must be one of text, object, cef, leef"
        in result.stderr
    )
    result = run("forward", "--config", str(tmp_path / "missing.toml"))
    assert result.returncode == 1 and "missing.toml" in result.stderr


def test_forward_test_reports_each_action(udp: SyslogReceiver, tcp: SyslogReceiver, tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(
        MATRIX.replace("{udp}", str(udp.port))
        .replace("{tcp}", str(tcp.port))
        .replace('format = "text"', 'format = "object"'),
        encoding="utf-8",
    )
    result = run("forward", "--config", str(config), "--test", "--timeout", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f'rule "major-s7-policy" action 1 udp://127.0.0.1:{udp.port} (cef): ok',
        f'rule "major-s7-policy" action 2 tcp://127.0.0.1:{tcp.port} (leef): ok',
        f'rule "critical" action 1 tcp://127.0.0.1:{tcp.port} (object): ok',
    ]
    assert len(udp.wait_for(1)) == 1 and len(tcp.wait_for(2)) == 2
    assert {m.format for m in tcp.messages} == {"leef", "object"}

    down = closed_port()
    config.write_text(MATRIX.replace("{udp}", str(udp.port)).replace("{tcp}", str(down)), encoding="utf-8")
    result = run("forward", "--config", str(config), "--test", "--timeout", "1")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].endswith("(cef): ok")
    assert lines[1].startswith(f'rule "major-s7-policy" action 2 tcp://127.0.0.1:{down} (leef): FAILED')
    assert lines[2].startswith('rule "critical" action 1') and "FAILED" in lines[2]


PROFILES_CONFIG = """
[[rules]]
name = "siems"
  [[rules.actions]]
  url = "udp://127.0.0.1:{udp}"
  profile = "arcsight"
  cef_header_space = true
  [[rules.actions]]
  url = "tcp://127.0.0.1:{tcp}"
  profile = "qradar"
  framing = "octet-counting"
"""


def test_forward_arcsight_and_qradar_actions(udp: SyslogReceiver, tcp: SyslogReceiver, tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(PROFILES_CONFIG.format(udp=udp.port, tcp=tcp.port), encoding="utf-8")
    records = fixture_records(3)
    result = run("forward", "--config", str(config), stdin=jsonl(records))
    assert result.returncode == 0, result.stderr
    assert summary(result.stderr).startswith("siemfmt: read 3, sent 6, rejected 0, dropped 0")
    arcsight = [r.message for r in udp.wait_for(3)]
    qradar = [r.message for r in tcp.wait_for(3)]
    assert all(
        m is not None and m.format == "cef" and m.header[1:3] == ("Microsoft", "Defender for IoT") for m in arcsight
    )
    assert {m.syslog.kind for m in arcsight if m} == {"rfc3164"}
    assert all(re.search(r"\|(1|4|8|10)\| rt=", r.line) for r in udp.received)  # cef_header_space
    assert all(m is not None and m.format == "leef" and m.header[0] == "2.0" for m in qradar)
    assert {m.syslog.kind for m in qradar if m} == {"rfc5424"}  # the qradar profile's header
    assert sorted(m.get("externalId") or "" for m in qradar if m) == sorted(
        m.get("externalId") or "" for m in arcsight if m
    )

    result = run("forward", "--config", str(config), "--test", "--timeout", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f'rule "siems" action 1 udp://127.0.0.1:{udp.port} (arcsight cef): ok',
        f'rule "siems" action 2 tcp://127.0.0.1:{tcp.port} (qradar leef): ok',
    ]


def test_forward_bad_profile_format_combination_is_fatal(tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(
        '[[rules]]\nname = "x"\n[[rules.actions]]\nurl = "udp://127.0.0.1:9"\nprofile = "qradar"\nformat = "cef"\n',
        encoding="utf-8",
    )
    result = run("forward", "--config", str(config), stdin=jsonl(fixture_records(1)))
    assert result.returncode == 1
    assert result.stderr == (
        "siemfmt: error: rules.toml: rule \"x\" action 1: format: 'cef' must be one of leef for profile 'qradar'\n"
    )


def test_send_with_a_profile_and_a_bad_combination(udp: SyslogReceiver) -> None:
    result = run("send", "--to", udp.url, "--profile", "rfc5424-sd", stdin=jsonl(fixture_records(2)))
    assert result.returncode == 0, result.stderr
    assert [m.format for m in (r.message for r in udp.wait_for(2)) if m] == ["sd", "sd"]
    result = run("send", "--to", udp.url, "--profile", "arcsight", "--format", "text", stdin=jsonl(fixture_records(1)))
    assert result.returncode == 1
    assert result.stderr == "siemfmt: error: fmt: 'text' must be one of cef for profile 'arcsight'\n"
    time.sleep(0.1)
    assert len(udp.received) == 2  # nothing sent


# --- parse -----------------------------------------------------------------------------------------


def test_parse_prints_json_lines_and_strict_fails_on_malformed(tmp_path: Path) -> None:
    lines = [siemfmt.format_alert(REFERENCE, f) for f in ("text", "object", "cef", "leef")]
    result = run("parse", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["format"] for o in out] == ["text", "object", "cef", "leef"]
    assert [o["line"] for o in out] == [1, 2, 3, 4]
    cef = out[2]
    assert cef["syslog"]["kind"] == "rfc3164" and cef["syslog"]["hostname"] == "Plant_A_Sensor"
    assert cef["header"][5] == "Unauthorized PLC Program Upload"
    assert ["protocol", "S7"] in cef["fields"] and cef["alert_group"] == "Programming"

    path = tmp_path / "mixed.log"
    path.write_text(lines[2] + "\njust some text\n" + lines[3] + "\n", encoding="utf-8")
    result = run("parse", str(path))
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 3
    result = run("parse", "--strict", str(path))
    assert result.returncode == 2
    assert len(result.stdout.splitlines()) == 2
    assert f"{path}:2: malformed" in result.stderr


# --- listen ----------------------------------------------------------------------------------------


def test_listen_prints_what_arrives_until_count() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "siemfmt", "listen", "--udp", "0", "--tcp", "0", "--count", "2", "--timeout", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        urls = [proc.stderr.readline().split("listening on ")[1].strip() for _ in range(2)]
        assert urls[0].startswith("udp://") and urls[1].startswith("tcp://")
        cef = siemfmt.format_alert(REFERENCE, "cef")
        leef = siemfmt.format_alert(REFERENCE, "leef")
        with connect(urls[0]) as tx:
            tx.send(cef)
        with connect(urls[1]) as tx:
            tx.send(leef)
            assert tx.flush(5)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0
    got = [json.loads(line) for line in out.splitlines()]
    assert [(g["transport"], g["format"]) for g in got] == [("udp", "cef"), ("tcp", "leef")]
    assert got[0]["alert_group"] == "Programming"


def test_listen_exits_0_on_sigterm_and_1_when_count_not_reached() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "siemfmt", "listen", "--udp", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        assert "listening on udp://" in proc.stderr.readline()
        proc.terminate()
        proc.wait(10)
    finally:
        proc.kill()
    assert proc.returncode == 0
    result = run("listen", "--tcp", "0", "--count", "1", "--timeout", "0.3")
    assert result.returncode == 1 and "0 of 1 messages arrived" in result.stderr


# --- demo, format, samples -------------------------------------------------------------------------


def test_demo_exits_0_with_every_message_intact() -> None:
    result = run("demo")
    assert result.returncode == 0, result.stderr
    assert summary(result.stderr).endswith("all arrived intact")
    lines = result.stdout.splitlines()
    assert {(line.split()[0], line.split()[1]) for line in lines} == {
        (s, f) for s in ("udp", "tcp") for f in ("text", "object", "cef", "leef")
    }
    assert any("group='Programming'" in line for line in lines)


def test_format_reads_api_list_and_pretty_printed_alert(tmp_path: Path) -> None:
    api = tmp_path / "api.json"
    api.write_text(json.dumps({"value": [load_json(ALERT_FILES[17]), {"title": ""}]}, indent=1), encoding="utf-8")
    single = tmp_path / "one.json"
    single.write_text(json.dumps(REFERENCE, indent=2), encoding="utf-8")
    result = run("format", "--format", "cef", "--header", "none", str(api), str(single))
    assert result.returncode == 2
    assert len(result.stdout.splitlines()) == 2
    assert f"{api}:item 2: rejected" in result.stderr
    assert "read 3, written 2, rejected 1" in summary(result.stderr)


def test_json_array_reports_the_line_an_item_starts_on(tmp_path: Path) -> None:
    path = tmp_path / "alerts.json"
    path.write_text('[\n  {"title": "x"},\n\n  ' + json.dumps(REFERENCE) + "\n]\n", encoding="utf-8")
    result = run("format", "--rejects", str(tmp_path / "rej"), str(path))
    assert result.returncode == 2
    assert f"{path}:2: rejected" in result.stderr
    assert (tmp_path / "rej").read_text() == '{"title": "x"}\n'


# --- progress (in-process: it needs a terminal) -----------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def tty(monkeypatch: pytest.MonkeyPatch) -> _Tty:
    """Make sys.stderr a terminal (in the test body: pytest's capture resets sys.stderr between phases)."""
    stream = _Tty()
    monkeypatch.setattr(sys, "stderr", stream)
    return stream


def test_progress_on_a_terminal_is_throttled_and_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    tty_stderr = tty(monkeypatch)
    progress = cli.Progress("send", quiet=False, per_second=4)
    for _ in range(1000):
        progress.tick()
    progress.finish()
    text = tty_stderr.getvalue()
    assert text.startswith("\rsend: 1 alerts, ") and text.count("\r") == 2  # one update, then the clearing
    assert text.endswith("\r\x1b[K")
    quiet = cli.Progress("send", quiet=True)
    quiet.tick()
    quiet.finish()
    assert tty_stderr.getvalue() == text


def test_send_shows_progress_only_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, udp: SyslogReceiver, tmp_path: Path
) -> None:
    tty_stderr = tty(monkeypatch)
    path = tmp_path / "a.jsonl"
    path.write_text(jsonl(fixture_records(3)), encoding="utf-8")
    assert cli.main(["send", "--to", udp.url, str(path)]) == 0
    assert "\rsend: 1 alerts" in tty_stderr.getvalue()
    before = len(tty_stderr.getvalue())
    assert cli.main(["send", "--quiet", "--to", udp.url, str(path)]) == 0
    assert "\r" not in tty_stderr.getvalue()[before:]
    assert len(udp.wait_for(6)) == 6


# --- streaming ---------------------------------------------------------------------------------------


def test_json_lines_are_read_lazily() -> None:
    class Endless:
        """A stream of alert lines that never ends, and must never be read whole."""

        def __iter__(self) -> Iterator[str]:
            while True:
                yield json.dumps(REFERENCE) + "\n"

        def read(self) -> str:
            raise AssertionError("read() would load the whole stream")

    records = read_records(Endless())  # type: ignore[arg-type]
    first = [next(records) for _ in range(3)]
    assert [r.where for r in first] == ["1", "2", "3"] and first[0].value == REFERENCE


def test_send_streams_stdin_before_it_ends(udp: SyslogReceiver) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "siemfmt", "send", "--to", udp.url, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(REFERENCE) + "\n")
        proc.stdin.flush()
        udp.wait_for(1, timeout=15)  # arrived while stdin is still open
        assert proc.poll() is None
        _, err = proc.communicate(json.dumps(REFERENCE) + "\n", timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert summary(err) == "siemfmt: read 2, sent 2, rejected 0, dropped 0"
