"""Profiles read by a real rsyslog: the arcsight CEF by mmnormalize (liblognorm's cef parser) and the
rfc5424-sd structured data by mmpstrucdata, each compared field by field with what we wrote."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import siemfmt
from tests.conftest import ALERT_FILES, fixed_clock, load_json
from tests.rsyslog_harness import Rsyslog, has_module, rsyslogd_path

pytestmark = [
    pytest.mark.rsyslog,
    pytest.mark.skipif(rsyslogd_path() is None, reason="rsyslogd is not installed (apt-get install rsyslog)"),
    pytest.mark.skipif(
        not (has_module("mmnormalize") and has_module("mmpstrucdata")),
        reason="rsyslog's mmnormalize/mmpstrucdata modules are not installed",
    ),
]

# liblognorm v2 rulebase: the RFC 3164 header, then the whole CEF message (read from the raw line,
# since rsyslog would take "CEF" for a TAG).
RULEBASE = "version=2\nrule=:<%-:number%>%-:date-rfc3164% %host:word% %cef:cef%\n"


class ProfileRsyslog(Rsyslog):
    """rsyslogd with one UDP input: CEF lines through mmnormalize into ``udp.log``, RFC 5424 lines
    through mmpstrucdata into ``tcp.log``, each as the JSON of the parsed properties."""

    def _config(self) -> str:
        rulebase = self.dir / "cef.rb"
        rulebase.write_text(RULEBASE)
        return (
            f'global(workDirectory="{self.dir / "work"}" parser.escapeControlCharactersOnReceive="off"\n'
            '       maxMessageSize="64k" net.enableDNS="off")\n'
            'module(load="imudp")\nmodule(load="imtcp")\nmodule(load="mmnormalize")\nmodule(load="mmpstrucdata")\n'
            'template(name="t_json" type="string" string="%$!%\\n")\n'
            f'input(type="imudp" address="127.0.0.1" port="{self.udp_port}" ruleset="r")\n'
            f'input(type="imtcp" address="127.0.0.1" port="{self.tcp_port}" ruleset="r")\n'
            'ruleset(name="r") {\n'
            '  if $rawmsg contains "CEF:" then {\n'
            f'    action(type="mmnormalize" rulebase="{rulebase}" useRawMsg="on")\n'
            f'    action(type="omfile" file="{self.output("udp")}" template="t_json")\n'
            "  } else {\n"
            '    action(type="mmpstrucdata")\n'
            f'    action(type="omfile" file="{self.output("tcp")}" template="t_json")\n'
            "  }\n}\n"
        )


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProfileRsyslog]:
    server = ProfileRsyslog(tmp_path_factory.mktemp("rsyslog-profiles"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def send(server: Rsyslog, lines: list[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for line in lines:
            s.sendto(line.encode(), ("127.0.0.1", server.udp_port))


def records() -> list[dict[str, Any]]:
    return [load_json(p) for p in ALERT_FILES]


def test_arcsight_cef_read_by_mmnormalize(rsyslog: ProfileRsyslog) -> None:
    before = len(rsyslog.lines("udp"))
    lines = [siemfmt.format_alert(r, profile="arcsight", cef_header_space=True, clock=fixed_clock()) for r in records()]
    send(rsyslog, lines)
    got = rsyslog.wait_lines("udp", before + len(lines))[before:]
    assert len(got) == len(lines)
    for line, raw in zip(lines, got, strict=True):
        theirs = json.loads(raw)["cef"]
        ours = siemfmt.parse(line)
        assert [
            theirs["DeviceVendor"],
            theirs["DeviceProduct"],
            theirs["DeviceVersion"],
            theirs["SignatureID"],
            theirs["Name"],
            theirs["Severity"],
        ] == list(ours.header[1:])
        assert theirs["Extensions"] == ours.as_dict()


def test_liblognorm_needs_the_header_space_switch(rsyslog: ProfileRsyslog) -> None:
    """The receiver bug the ``cef_header_space`` switch exists for: without it the first key loses a letter."""
    before = len(rsyslog.lines("udp"))
    send(rsyslog, [siemfmt.format_alert(records()[0], profile="arcsight", clock=fixed_clock())])
    theirs = json.loads(rsyslog.wait_lines("udp", before + 1)[before])["cef"]["Extensions"]
    assert "rt" not in theirs
    assert theirs["t"] == siemfmt.parse(
        siemfmt.format_alert(records()[0], profile="arcsight", clock=fixed_clock())
    ).get("rt")


def test_rfc5424_sd_read_by_mmpstrucdata(rsyslog: ProfileRsyslog) -> None:
    before = len(rsyslog.lines("tcp"))
    lines = [siemfmt.format_alert(r, profile="rfc5424-sd", clock=fixed_clock()) for r in records()]
    send(rsyslog, lines)
    got = rsyslog.wait_lines("tcp", before + len(lines))[before:]
    assert len(got) == len(lines)
    for line, raw in zip(lines, got, strict=True):
        theirs = json.loads(raw)["rfc5424-sd"]
        ours = siemfmt.parse(line).syslog.sd
        assert theirs == {sd_id: dict(params) for sd_id, params in ours}


def test_samples_arrive_in_order(rsyslog: ProfileRsyslog, tmp_path: Path) -> None:
    """A sanity check on the harness itself: nothing above passed by reading stale output."""
    before = len(rsyslog.lines("tcp"))
    marker = {**records()[0], "title": f"marker {tmp_path.name}"}
    send(rsyslog, [siemfmt.format_alert(marker, profile="rfc5424-sd", clock=fixed_clock())])
    last = json.loads(rsyslog.wait_lines("tcp", before + 1)[-1])
    assert last["rfc5424-sd"]["alert@32473"]["title"] == marker["title"]
