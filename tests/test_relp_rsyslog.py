"""RELP against a real rsyslog ``imrelp``: 10,000 messages with the receiver stopped (SIGTERM) or killed
(SIGKILL) in the middle, RELP beside plain TCP; RELP over TLS with a trusted and an untrusted server.

rsyslog runs with the ``Direct`` main queue, so its ``rsp 200`` comes after omfile took the message
(rsyslog-tls-relp.md §7, §8.7): RELP must lose nothing. TCP losses are printed, not asserted.
"""

from __future__ import annotations

import collections
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

import siemfmt
from siemfmt.transport import Sender, TLSHandshakeError, TransportError, connect
from siemfmt.transport._relp import RELPSender, RELPTLSSender
from tests.rsyslog_harness import Rsyslog, free_port, has_module, rsyslogd_path
from tests.tls_pki import PKI

pytestmark = [
    pytest.mark.rsyslog,
    pytest.mark.skipif(rsyslogd_path() is None, reason="rsyslogd is not installed (apt-get install rsyslog)"),
    pytest.mark.skipif(
        not has_module("imrelp"), reason="rsyslog's imrelp is not installed (apt-get install rsyslog-relp)"
    ),
]

N = 10_000
BREAK_AT = 3_000
RUNS = 3
WINDOW = 128
FAST = {"backoff_base": 0.05, "backoff_cap": 0.5}


def _listening(port: int) -> bool:
    want = f"0100007F:{port:04X}"
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = row.split()
        if cols[1] == want and cols[3] == "0A":
            return True
    return False


class RelpRsyslog(Rsyslog):
    """rsyslogd with the harness's UDP/TCP inputs plus imrelp (plain, and TLS through librelp's openssl
    backend when a PKI is given: ref §4, §8.4), each writing ``%rawmsg%`` to its own file."""

    def __init__(self, workdir: Path, *, pki: PKI | None = None, direct_queue: bool = True) -> None:
        self.relp_port = free_port()
        self.relp_tls_port = free_port() if pki else 0
        super().__init__(workdir, pki=None, direct_queue=direct_queue)
        self.relp_pki = pki
        self.conf.write_text(self._config())

    def _config(self) -> str:
        base = super()._config()
        pki = getattr(self, "relp_pki", None)
        tls = ""
        if pki is not None:
            tls = (
                f'input(type="imrelp" address="127.0.0.1" port="{self.relp_tls_port}" ruleset="r_relptls" tls="on"\n'
                f'      tls.caCert="{pki.ca}" tls.myCert="{pki.server_cert}" tls.myPrivKey="{pki.server_key}")\n'
            )
        return (
            base
            + 'module(load="imrelp" tls.tlslib="openssl")\n'
            + f'input(type="imrelp" address="127.0.0.1" port="{self.relp_port}" ruleset="r_relp")\n'
            + tls
            + "".join(
                f'ruleset(name="r_{n}") {{ action(type="omfile" file="{self.output(n)}" template="t_raw") }}\n'
                for n in ("relp", "relptls")
            )
        )

    def start(self, timeout: float = 10.0) -> RelpRsyslog:
        super().start(timeout)
        deadline = time.monotonic() + timeout
        ports = [p for p in (self.relp_port, self.relp_tls_port) if p]
        while not all(_listening(p) for p in ports):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"imrelp did not start listening:\n{self.stderr()}")
            time.sleep(0.02)
        return self


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelpRsyslog]:
    server = RelpRsyslog(tmp_path_factory.mktemp("relp-rsyslog"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def messages(run: str) -> list[str]:
    return [f"<14>1 2026-03-10T08:15:31.000Z host siemfmt - - - run={run} seq={i:05d}" for i in range(N)]


_SEQ = re.compile(rb"run=(\S+) seq=(\d{5})")


def count(server: Rsyslog, name: str, run: str, expect_last: str, settle: float) -> tuple[int, int]:
    """(lost, duplicated) of run ``run`` in input ``name``'s file, after it settled."""
    server.wait_last(name, expect_last.encode(), timeout=settle)
    seen: collections.Counter[int] = collections.Counter()
    for line in server.lines(name):
        m = _SEQ.search(line)
        if m is not None and m[1].decode() == run:
            seen[int(m[2])] += 1
    lost = sum(1 for i in range(N) if i not in seen)
    dups = sum(c - 1 for c in seen.values())
    return lost, dups


def scenario(server: RelpRsyslog, url_kind: str, sig: int, run: str) -> tuple[int, int, int]:
    """Send N messages, restart rsyslog with ``sig`` after BREAK_AT; (lost, duplicated, resent)."""
    msgs = messages(run)
    sender: Sender
    if url_kind == "relp":
        sender = RELPSender("127.0.0.1", server.relp_port, window=WINDOW, backoff_base=0.05, backoff_cap=0.5)
    else:
        sender = connect(server.url("tcp"), framing="octet-counting", backoff_base=0.05, backoff_cap=0.5)
    restarter = threading.Thread(target=server.restart, args=(sig,))
    # A steady flow (50 messages per ms), so that the receiver goes away while bytes are on the wire.
    for start in range(0, N, 50):
        if start == BREAK_AT:
            restarter.start()
        sender.send_many(msgs[start : start + 50])
        time.sleep(0.001)
    restarter.join()
    assert sender.flush(30)
    resent = getattr(sender.stats, "resent", 0)
    sender.close()
    lost, dups = count(server, url_kind, run, msgs[-1], settle=10.0 if url_kind == "relp" else 3.0)
    return lost, dups, resent


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_restart_in_the_middle_relp_loses_nothing(
    rsyslog: RelpRsyslog, sig: int, record_property: Callable[[str, object], None]
) -> None:
    results: dict[str, list[tuple[int, int, int]]] = {"relp": [], "tcp": []}
    for run in range(RUNS):
        for kind in ("relp", "tcp"):
            results[kind].append(scenario(rsyslog, kind, sig, f"{kind}-{sig}-{run}"))
    name = signal.Signals(sig).name
    for kind, rows in results.items():
        text = f"{kind} {name}: lost {[r[0] for r in rows]}, duplicated {[r[1] for r in rows]}, resent {[r[2] for r in rows]}"
        print(text)
        record_property(f"{kind}_{name}", text)
    for lost, dups, resent in results["relp"]:
        assert lost == 0
        assert dups <= WINDOW
        assert resent <= WINDOW * 2  # one break (two if the restart caught a reconnect)


@pytest.fixture(scope="module")
def tls_rsyslog(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[RelpRsyslog]:
    server = RelpRsyslog(tmp_path_factory.mktemp("relp-tls"), pki=pki)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_relp_tls_trusted(tls_rsyslog: RelpRsyslog, pki: PKI) -> None:
    msgs = [f"<14>1 2026-03-10T08:15:31.000Z host siemfmt - - - tls ok {i} Süd" for i in range(1000)]
    with RELPTLSSender("127.0.0.1", tls_rsyslog.relp_tls_port, ca_file=str(pki.ca), sequence="sd") as s:
        s.open()
        assert s.peer_software.startswith("librelp,")
        s.send_many(msgs)
        assert s.flush(10)
        assert s.stats.acknowledged == 1000
    got = tls_rsyslog.wait_lines("relptls", 1000)
    assert len(got) == 1000
    numbers = [int(re.search(rb' n="(\d+)"', g)[1]) for g in got]  # type: ignore[index]
    assert numbers == list(range(1, 1001))
    assert all(g.endswith(f"tls ok {i} Süd".encode()) for i, g in enumerate(got))


def test_relp_tls_untrusted(tls_rsyslog: RelpRsyslog, pki: PKI) -> None:
    before = len(tls_rsyslog.lines("relptls"))
    s = RELPTLSSender("127.0.0.1", tls_rsyslog.relp_tls_port, ca_file=str(pki.other_ca), **FAST)  # type: ignore[arg-type]
    with pytest.raises(TLSHandshakeError, match="certificate verify failed"):
        s.open()
    with pytest.raises(TLSHandshakeError):
        s.send("<14>1 - host siemfmt - - - must not arrive")
    s.close(0.5)
    time.sleep(0.3)
    assert len(tls_rsyslog.lines("relptls")) == before


def test_plain_relp_sender_to_tls_port_never_delivers(tls_rsyslog: RelpRsyslog) -> None:
    before = len(tls_rsyslog.lines("relptls"))
    s = RELPSender("127.0.0.1", tls_rsyslog.relp_tls_port, connect_timeout=2.0)
    with pytest.raises(TransportError, match=r"cannot open a RELP session"):
        s.open()
    s.close(0.1)
    assert len(tls_rsyslog.lines("relptls")) == before


def test_port_is_really_imrelp(rsyslog: RelpRsyslog) -> None:
    """The raw wire answer to open is librelp's (guards the fixtures above)."""
    with socket.create_connection(("127.0.0.1", rsyslog.relp_port), timeout=5) as sock:
        offers = b"relp_version=0\ncommands=syslog"
        sock.sendall(b"1 open %d %s\n" % (len(offers), offers))
        assert sock.recv(4096).startswith(b"1 rsp ")


def test_siemfmt_send_over_relp_cli(rsyslog: RelpRsyslog, tmp_path: Path) -> None:
    """The command takes relp:// wherever it takes a destination: every fixture alert arrives, in order."""
    import json
    import subprocess
    import sys

    from tests.conftest import ALERT_FILES, load_json

    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text("".join(json.dumps(load_json(p)) + "\n" for p in ALERT_FILES), encoding="utf-8")
    before = len(rsyslog.lines("relp"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "siemfmt",
            "send",
            "--to",
            f"relp://127.0.0.1:{rsyslog.relp_port}",
            "--format",
            "cef",
            "--header",
            "rfc5424",
            "--quiet",
            str(alerts),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    got = rsyslog.wait_lines("relp", before + len(ALERT_FILES))[before:]
    clock = lambda: datetime(2026, 3, 10, 8, 15, 31, tzinfo=timezone.utc)  # noqa: E731
    expected = [siemfmt.format_alert(load_json(p), "cef", header="rfc5424", clock=clock) for p in ALERT_FILES]
    # The send time differs; everything after the RFC 5424 header must be identical, in order.
    assert [line.decode().split(" ", 7)[7] for line in got] == [line.split(" ", 7)[7] for line in expected]
