"""SIEMHandler: applications' own security events through logging, into a receiver and a real rsyslog."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import siemfmt
from siemfmt.handler import SIEMHandler, level_to_cef_severity, level_to_syslog_severity
from siemfmt.testing import SyslogReceiver
from tests.rsyslog_harness import Rsyslog, rsyslogd_path


@pytest.fixture
def logger(request: pytest.FixtureRequest) -> Iterator[logging.Logger]:
    log = logging.getLogger(f"siemfmt-test.{request.node.name}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()


def test_level_mappings() -> None:
    assert [level_to_cef_severity(x) for x in (10, 20, 30, 40, 50)] == [1, 3, 5, 7, 10]
    assert [level_to_syslog_severity(x) for x in (10, 20, 30, 40, 50)] == [7, 6, 4, 3, 2]


def test_cef_with_extra_fields(logger: logging.Logger) -> None:
    with SyslogReceiver("tcp").start() as receiver:
        handler = SIEMHandler(receiver.url, fmt="cef", vendor="Acme|Corp", product="Gateway", hostname="gw1")
        logger.addHandler(handler)
        logger.warning(
            "Login failed for %s",
            "bob",
            extra={"suser": "bob", "src": "10.0.0.7", "signature": "AUTH-1", "bad key!": "x=y"},
        )
        handler.flush()
        (msg,) = [r.message for r in receiver.wait_for(1)]
    assert msg is not None
    assert (msg.syslog.pri, msg.syslog.hostname) == (4 * 8 + 4, "gw1")
    assert msg.format == "cef"
    assert msg.header == ("0", "Acme|Corp", "Gateway", "1.0", "AUTH-1", "Login failed for bob", "5")
    fields = dict(msg.fields)
    assert fields["msg"] == "Login failed for bob"
    assert (fields["suser"], fields["src"], fields["badkey"]) == ("bob", "10.0.0.7", "x=y")
    assert fields["rt"].isdigit()


def test_leef_and_rfc5424(logger: logging.Logger) -> None:
    with SyslogReceiver("udp").start() as receiver:
        logger.addHandler(SIEMHandler(receiver.url, fmt="leef", product="Gateway"))
        logger.addHandler(SIEMHandler(receiver.url, fmt="rfc5424", app_name="gateway", enterprise_number=4242))
        logger.error("Tamper\tdetected\non door", extra={"door": 'north]"3'})
        received = receiver.wait_for(2)
    by_format = {r.message.format: r.message for r in received if r.message is not None}
    leef = by_format["leef"]
    assert leef.get("sev") == "7"
    assert leef.get("msg") == "Tamper detected on door"
    assert leef.get("door") == 'north]"3'
    sd = by_format["sd"]
    assert sd.syslog.app_name == "gateway"
    assert sd.syslog.sd[0][0] == "event@4242"
    assert dict(sd.fields)["door"] == 'north]"3'
    assert dict(sd.fields)["level"] == "ERROR"
    assert sd.body == "Tamper detected on door"


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="fmt"):
        SIEMHandler("udp://127.0.0.1:9", fmt="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="header"):
        SIEMHandler("udp://127.0.0.1:9", fmt="rfc5424", header="rfc3164")


@pytest.mark.rsyslog
@pytest.mark.skipif(rsyslogd_path() is None, reason="rsyslogd is not installed (apt-get install rsyslog)")
def test_handler_end_to_end_to_rsyslog(tmp_path: Path, logger: logging.Logger) -> None:
    with Rsyslog(tmp_path) as server:
        handler = SIEMHandler(server.url("tcp"), fmt="cef", framing="octet-counting", product="Gateway")
        logger.addHandler(handler)
        for i in range(50):
            logger.info("event %d", i, extra={"cnt": i, "act": "a=b\\c"})
        handler.flush()
        lines = server.wait_lines("tcp", 50)
    assert len(lines) == 50
    for i, raw in enumerate(lines):
        msg = siemfmt.parse(raw.decode())
        assert msg.header[5] == f"event {i}"
        assert (msg.get("cnt"), msg.get("act")) == (str(i), "a=b\\c")


def test_extra_fields_never_collide_with_the_handlers_keys_nor_vanish(logger: logging.Logger) -> None:
    with SyslogReceiver("udp").start() as receiver:
        logger.addHandler(SIEMHandler(receiver.url, fmt="cef"))
        logger.addHandler(SIEMHandler(receiver.url, fmt="leef"))
        logger.warning("m", extra={"rt": "1", "sev": "x", "ü": "umlaut"})
        received = receiver.wait_for(2)
    by_format = {r.message.format: r.message for r in received if r.message is not None}
    cef, leef = by_format["cef"], by_format["leef"]
    assert cef.getall("rt") != ["1"] and len(cef.getall("rt")) == 1
    assert (cef.get("rtExtra"), cef.get("sev"), cef.get("extra3")) == ("1", "x", "umlaut")
    assert (leef.get("sevExtra"), leef.get("rt"), leef.get("extra3")) == ("x", "1", "umlaut")
    assert len(leef.getall("sev")) == 1
