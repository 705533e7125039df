"""siemfmt.transport against the in-process receivers of siemfmt.testing, on real loopback sockets."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from siemfmt.testing import ReceiverFactory, Scheme, SyslogReceiver
from siemfmt.transport import (
    InsecureTransportWarning,
    MessageError,
    QueueFullError,
    TCPSender,
    TLSSender,
    TransportError,
    UDPSender,
    connect,
    truncate_utf8,
)
from tests.conftest import closed_port
from tests.tls_pki import PKI

pytest_plugins = ["pytester"]

FAST = {"backoff_base": 0.02, "backoff_cap": 0.2, "connect_timeout": 2.0, "write_timeout": 2.0}
KOSME = "\u03ba\u1f79\u03c3\u03bc\u03b5"  # κόσμε with U+1F79, as in RFC 6587 examples (11 bytes)
UTF8_LINES = [
    "<9>Mar 10 08:15:31 Plant_A_Sensor CEF:0|Microsoft|Defender|1|A|Zugriff verweigert|8|msg=Ventil geöffnet",
    "<9>Mar 10 08:15:31 Plant_A_Sensor LEEF:1.0|Microsoft|Defender|1|A|msg=κόσμε\tsrc=10.1.2.3",
    "<9>1 2026-03-10T08:15:31.000Z host app - - - 警报: 未经授权的 PLC 程序上传 🚨",
]


def ipv6_loopback() -> bool:
    """True when a socket can bind ::1."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback(), reason="IPv6 loopback ::1 is not available")


@pytest.fixture(autouse=True)
def _threads_joined(no_leaked_threads: None) -> None:
    """Every thread a test starts is gone when it ends (tests/conftest.py)."""


# --- URLs and options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "cls", "host", "port"),
    [
        ("udp://127.0.0.1:5514", UDPSender, "127.0.0.1", 5514),
        ("udp://siem.example", UDPSender, "siem.example", 514),
        ("tcp://[::1]:601", TCPSender, "::1", 601),
        ("TCP://Siem.Example:1514", TCPSender, "siem.example", 1514),
        ("tls://localhost", TLSSender, "localhost", 6514),
        ("tls://[2001:db8::7]:16514", TLSSender, "2001:db8::7", 16514),
    ],
)
def test_connect_parses_url(url: str, cls: type, host: str, port: int) -> None:
    with connect(url) as sender:  # lazy: nothing is resolved or connected
        assert type(sender) is cls
        assert (sender.host, sender.port) == (host, port)
        with connect(sender.url) as again:
            assert again.url == sender.url
        assert sender.stats.sent == 0


def test_connect_defaults_per_scheme() -> None:
    with connect("tcp://127.0.0.1:9") as tcp, connect("tls://127.0.0.1:9") as tls, connect("udp://h") as udp:
        assert isinstance(tcp, TCPSender) and isinstance(tls, TLSSender) and isinstance(udp, UDPSender)
        assert tcp.framing == "lf" and tcp.max_queue == 10_000 and tcp.on_full == "block"
        assert (tcp.backoff_base, tcp.backoff_cap) == (0.5, 30.0)
        assert tls.framing == "octet-counting"
        assert tls.ssl_context.verify_mode == ssl.CERT_REQUIRED and tls.ssl_context.check_hostname
        assert tls.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_2
        assert (udp.max_size, udp.on_oversize) == (2048, "truncate")


def test_connect_query_options_and_keywords() -> None:
    sender = connect("tcp://127.0.0.1:9?framing=octet-counting&max_queue=5&keepalive=off&write_timeout=1.5")
    assert isinstance(sender, TCPSender)
    assert (sender.framing, sender.max_queue, sender.keepalive, sender.write_timeout) == (
        "octet-counting",
        5,
        False,
        1.5,
    )
    sender.close()
    with connect("tcp://127.0.0.1:9?max_queue=5", max_queue=7) as kw:
        assert isinstance(kw, TCPSender) and kw.max_queue == 7
    with connect(scheme="udp", host="[::1]", port=5514) as bare:
        assert bare.url == "udp://[::1]:5514"


@pytest.mark.parametrize(
    ("url", "options", "error", "text"),
    [
        ("http://127.0.0.1:9", {}, ValueError, "must start with udp://, tcp://"),
        ("tcp://:9", {}, ValueError, "no host"),
        ("tcp://127.0.0.1:99999", {}, ValueError, "99999"),
        ("tcp://127.0.0.1:9", {"framing": "crlf"}, ValueError, "framing"),
        ("tcp://127.0.0.1:9", {"on_full": "wait"}, ValueError, "on_full"),
        ("udp://127.0.0.1:9", {"on_oversize": "split"}, ValueError, "on_oversize"),
        ("udp://127.0.0.1:9", {"framing": "lf"}, TypeError, "framing"),
        ("tcp://127.0.0.1:9", {"max_queue": 0}, ValueError, "max_queue"),
        ("tcp://127.0.0.1:9?max_queue=many", {}, ValueError, "max_queue"),
        ("tcp://127.0.0.1:9", {"port": 10}, TypeError, "port"),
    ],
)
def test_connect_rejects(url: str, options: dict[str, object], error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        connect(url, **options)


# --- UDP (RFC 5426) ---------------------------------------------------------------------------------


def test_udp_one_datagram_per_message(make_receiver: ReceiverFactory) -> None:
    rx = make_receiver("udp")
    lines = [*UTF8_LINES, "<9>Mar 10 08:15:31 host two\nlines in one datagram"]
    with connect(rx.url) as tx:
        tx.send(lines[0])
        tx.send_many(lines[1:])
        assert tx.flush(0)
        got = rx.wait_for(len(lines))
        assert tx.stats.sent == len(lines)
        assert tx.stats.bytes == sum(len(line.encode()) for line in lines)
    # RFC 5426 §3.1: the datagram is the message, UTF-8, no trailer added.
    assert [r.raw for r in got] == [line.encode() for line in lines]
    assert got[0].message is not None and got[0].message.format == "cef"
    assert got[0].message.get("msg") == "Ventil geöffnet"


@pytest.mark.parametrize("limit", range(1, 16))
def test_truncate_utf8_keeps_whole_characters(limit: int) -> None:
    data = "aé€😀b".encode()  # 1, 2, 3, 4 and 1 bytes
    cut = truncate_utf8(data, limit)
    assert data.startswith(cut) and len(cut) <= limit
    cut.decode("utf-8")  # never half a character
    whole = {0, 1, 3, 6, 10, 11}
    assert len(cut) == max(n for n in whole if n <= limit)


def test_udp_oversize_truncate_at_character_boundary(make_receiver: ReceiverFactory) -> None:
    rx = make_receiver("udp")
    head = "<9>Mar 10 08:15:31 host "
    line = head + "x" * (2047 - len(head)) + "é and more"  # 'é' straddles byte 2048
    with connect(rx.url) as tx:
        assert isinstance(tx, UDPSender) and tx.max_size == 2048
        tx.send(line)
        (got,) = rx.wait_for(1)
        assert tx.stats.truncated == 1
    assert len(got.raw) == 2047
    assert got.raw == line.encode()[:2047]


def test_udp_oversize_error_sends_nothing(make_receiver: ReceiverFactory) -> None:
    rx = make_receiver("udp")
    with connect(rx.url, max_size=100, on_oversize="error") as tx:
        with pytest.raises(MessageError, match="101 bytes exceeds max_size 100"):
            tx.send("y" * 101)
        with pytest.raises(MessageError):
            tx.send_many(["fits", "z" * 101])  # checked before any is sent
        tx.send("marker")
        got = rx.wait_for(1)
        assert tx.stats.sent == 1
    assert [r.raw for r in got] == [b"marker"]


def test_udp_oversize_send_as_is_up_to_the_udp_limit(make_receiver: ReceiverFactory) -> None:
    rx = make_receiver("udp")
    big = "<9>Mar 10 08:15:31 host " + "é" * 30_000  # 60,024 bytes: beyond max_size, within UDP
    with connect(rx.url, on_oversize="send") as tx:
        tx.send(big)
        (got,) = rx.wait_for(1)
        assert got.raw == big.encode()
        with pytest.raises(MessageError, match="65507"):
            tx.send("x" * 65_508)  # IPv4 UDP payload limit
        assert tx.stats.truncated == 0


# --- TCP (RFC 6587) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["lf", "octet-counting"])
def test_tcp_framing_delivers_in_order(make_receiver: ReceiverFactory, framing: str) -> None:
    rx = make_receiver("tcp", framing=framing)
    lines = [f"{UTF8_LINES[i % 3]} #{i}" for i in range(2000)]
    with connect(rx.url, framing=framing) as tx:
        tx.send(lines[0])
        tx.send_many(lines[1:])
        assert tx.flush(5)
        got = rx.wait_for(len(lines))
        overhead = 1 if framing == "lf" else None
        stats = tx.stats
    assert [r.raw for r in got] == [line.encode() for line in lines]
    assert rx.connections == 1 and not rx.problems
    assert stats.sent == 2000 and stats.queued == 0 and stats.failures == 0
    if overhead is not None:  # LF trailer: one byte per message
        assert stats.bytes == sum(len(line.encode()) + 1 for line in lines)
    else:  # "LEN SP": digits of the byte count plus one
        assert stats.bytes == sum(len(line.encode()) + len(str(len(line.encode()))) + 1 for line in lines)


def test_octet_count_is_bytes_not_characters(make_receiver: ReceiverFactory) -> None:
    rx = make_receiver("tcp", framing="octet-counting")
    with connect(rx.url, framing="octet-counting") as tx:
        tx.send(KOSME)  # 5 characters, 11 bytes (RFC 6587 §3.4.1 counts octets)
        assert tx.flush(5)  # stats count what the writer finished, which may trail the receiver
        (got,) = rx.wait_for(1)
        assert tx.stats.bytes == len(b"11 ") + 11
    assert got.raw == KOSME.encode()


def test_lf_framing_refuses_embedded_lf(make_receiver: ReceiverFactory) -> None:
    rx = make_receiver("tcp", framing="auto")
    with connect(rx.url, **FAST) as tx:
        with pytest.raises(MessageError, match=r"LF.*octet-counting"):
            tx.send("first line\nsecond line")
        with pytest.raises(MessageError, match="LF"):
            tx.send_many(["fine", "bad\n"])  # all checked before any is queued
        assert tx.stats.queued == 0
        tx.send("marker")
        assert [r.raw for r in rx.wait_for(1)] == [b"marker"]
    # octet counting carries the LF inside the message
    rx2 = make_receiver("tcp", framing="octet-counting")
    with connect(rx2.url, framing="octet-counting") as tx:
        tx.send("first line\nsecond line")
        assert [r.raw for r in rx2.wait_for(1)] == [b"first line\nsecond line"]


@pytest.mark.parametrize("bad", ["", b""])
def test_empty_message_refused(bad: str | bytes) -> None:
    with connect(f"tcp://127.0.0.1:{closed_port()}") as tx, pytest.raises(MessageError, match="empty"):
        tx.send(bad)


def test_unencodable_text_refused() -> None:
    with connect(f"udp://127.0.0.1:{closed_port()}") as tx, pytest.raises(MessageError, match="UTF-8"):
        tx.send("lone surrogate \ud800")


def test_tcp_max_size_applies_too(make_receiver: ReceiverFactory) -> None:
    rx = make_receiver("tcp", framing="octet-counting")
    with connect(rx.url, framing="octet-counting", max_size=8) as tx:
        tx.send("12345678éé")
        assert rx.wait_for(1)[0].raw == b"12345678"
        assert tx.stats.truncated == 1


def test_writer_joins_frames_into_few_writes(make_receiver: ReceiverFactory) -> None:
    rx = make_receiver("tcp", framing="lf", parse=False)
    lines = [f"<9>Mar 10 08:15:31 host message number {i:05d}" for i in range(5000)]  # ~220 kB
    with connect(rx.url, max_batch_bytes=65_536) as tx:
        tx.send_many(lines)  # queued at once, before the writer takes its first batch
        assert tx.flush(5)
        stats = tx.stats
        rx.wait_for(5000)
    assert stats.sent == 5000
    # 64 KiB batches: 4 when the socket takes each at once, a few more if the reader lags; never ~5000
    assert stats.writes <= 50


def test_state_stats_and_close(make_receiver: ReceiverFactory) -> None:
    rx = make_receiver("tcp")
    tx = connect(rx.url)
    assert isinstance(tx, TCPSender)
    assert tx.state == "idle" and tx.stats.sent == 0
    tx.open()
    assert tx.state == "connected"
    tx.send("one")
    assert tx.flush(5)
    rx.wait_for(1)
    tx.close()
    tx.close()  # twice is fine
    assert tx.state == "closed"
    with pytest.raises(TransportError, match="closed"):
        tx.send("two")
    assert tx.stats.sent == 1 and tx.stats.dropped == 0


def test_threads_send_concurrently(make_receiver: ReceiverFactory) -> None:
    rx = make_receiver("tcp", framing="octet-counting")
    with connect(rx.url, framing="octet-counting") as tx:

        def worker(n: int) -> None:
            for i in range(500):
                tx.send(f"worker {n} message {i}")

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert tx.flush(5)
        got = rx.wait_for(2000)
    for n in range(4):  # each thread's messages in its own order, none lost or doubled
        mine = [r.raw for r in got if r.raw.startswith(f"worker {n} ".encode())]
        assert mine == [f"worker {n} message {i}".encode() for i in range(500)]


# --- queue limits ------------------------------------------------------------------------------------


def test_on_full_error(make_receiver: ReceiverFactory) -> None:
    with connect(f"tcp://127.0.0.1:{closed_port()}", max_queue=5, on_full="error", **FAST) as tx:
        tx.send_many(["a", "b", "c", "d", "e"])
        with pytest.raises(QueueFullError, match="5 messages"):
            tx.send("f")
        assert tx.stats.queued == 5
        assert not tx.flush(0.05)
        tx.close(0)
    assert tx.stats.dropped == 5  # left over at close


def test_on_full_drop_oldest_then_delivers_the_newest(make_receiver: ReceiverFactory) -> None:
    port = closed_port()
    with connect(f"tcp://127.0.0.1:{port}", max_queue=5, on_full="drop-oldest", **FAST) as tx:
        tx.send_many([f"m{i}" for i in range(8)])  # one call: queued before the writer takes any
        assert tx.stats.dropped == 3 and tx.stats.queued == 5
        rx = make_receiver("tcp", port=port)
        assert tx.flush(5)
        got = rx.wait_for(5)
    assert [r.raw for r in got] == [b"m3", b"m4", b"m5", b"m6", b"m7"]


def test_on_full_drop_oldest_across_send_and_send_many(make_receiver: ReceiverFactory) -> None:
    """Single messages and batches share the queue: every message is delivered once or counted dropped."""
    port = closed_port()
    sent = ["a0", "a1", "b0", "b1", "b2", "c0", "d0", "d1", "d2", "d3"]
    with connect(f"tcp://127.0.0.1:{port}", max_queue=7, on_full="drop-oldest", **FAST) as tx:
        tx.send("a0")
        tx.send("a1")
        tx.send_many(["b0", "b1", "b2"])
        tx.send("c0")
        tx.send_many(["d0", "d1", "d2", "d3"])
        stats = tx.stats
        assert stats.queued == 7 and stats.dropped == 3
        rx = make_receiver("tcp", port=port)
        assert tx.flush(5)
        got = [r.raw.decode() for r in rx.wait_for(7)]
    assert got == sorted(got, key=sent.index)  # in order, none twice
    assert len(got) == 7 and got[-4:] == ["d0", "d1", "d2", "d3"]  # the oldest 3 went (a0 if not yet taken)


def test_on_full_block_gives_up_after_block_timeout() -> None:
    with connect(f"tcp://127.0.0.1:{closed_port()}", max_queue=2, block_timeout=0.1, **FAST) as tx:
        with pytest.raises(QueueFullError, match=r"2 messages.*for 0\.1 s"):
            tx.send_many(["x", "y", "z"])
        assert tx.stats.queued == 2
        tx.close(0)


def test_on_full_block_waits_for_room(make_receiver: ReceiverFactory) -> None:
    port = closed_port()
    with connect(f"tcp://127.0.0.1:{port}", max_queue=10, on_full="block", **FAST) as tx:
        done = threading.Event()

        def producer() -> None:
            tx.send_many([f"m{i}" for i in range(30)])  # blocks until the receiver drains the queue
            done.set()

        worker = threading.Thread(target=producer)
        worker.start()
        assert not done.wait(0.2)  # still blocked: the receiver is down
        assert tx.stats.queued == 10
        rx = make_receiver("tcp", port=port)
        assert done.wait(5)
        worker.join()
        assert tx.flush(5)
        got = rx.wait_for(30)
    assert [r.raw for r in got] == [f"m{i}".encode() for i in range(30)]


# --- TLS (RFC 5425) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_tls_verified_delivery(make_receiver: ReceiverFactory, pki: PKI, host: str) -> None:
    rx = make_receiver("tls", framing="octet-counting", certfile=str(pki.server_cert), keyfile=str(pki.server_key))
    lines = [f"{UTF8_LINES[i % 3]} #{i}" for i in range(500)]
    with connect(f"tls://{host}:{rx.port}", ca_file=str(pki.ca), **FAST) as tx:
        tx.send_many(lines)
        assert tx.flush(5)
        got = rx.wait_for(500)
    assert [r.raw for r in got] == [line.encode() for line in lines]
    assert not rx.problems


def test_tls_lf_framing_on_request(make_receiver: ReceiverFactory, pki: PKI) -> None:
    rx = make_receiver("tls", framing="lf", certfile=str(pki.server_cert), keyfile=str(pki.server_key))
    with connect(rx.url, framing="lf", ca_file=str(pki.ca)) as tx:
        tx.send_many(UTF8_LINES)
        assert [r.raw for r in rx.wait_for(3)] == [line.encode() for line in UTF8_LINES]


@pytest.mark.parametrize("encrypted", [False, True])
def test_tls_client_certificate(make_receiver: ReceiverFactory, pki: PKI, encrypted: bool) -> None:
    rx = make_receiver("tls", certfile=str(pki.server_cert), keyfile=str(pki.server_key), client_ca=str(pki.ca))
    key = pki.client_key_encrypted if encrypted else pki.client_key
    password = pki.client_key_password if encrypted else None
    with connect(
        rx.url, ca_file=str(pki.ca), cert_file=str(pki.client_cert), key_file=str(key), key_password=password
    ) as tx:
        tx.send("<9>Mar 10 08:15:31 host mutual")
        assert rx.wait_for(1)[0].raw == b"<9>Mar 10 08:15:31 host mutual"


def test_tls_wrong_key_passphrase_fails_at_once(pki: PKI) -> None:
    with pytest.raises(ssl.SSLError):
        connect(
            "tls://127.0.0.1:9",
            ca_file=str(pki.ca),
            cert_file=str(pki.client_cert),
            key_file=str(pki.client_key_encrypted),
            key_password="wrong",
        )


def test_tls_server_refuses_client_without_certificate(make_receiver: ReceiverFactory, pki: PKI) -> None:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(pki.server_cert, pki.server_key)
    server.load_verify_locations(pki.ca)
    server.verify_mode = ssl.CERT_REQUIRED
    server.maximum_version = ssl.TLSVersion.TLSv1_2  # the refusal then happens inside the handshake
    rx = make_receiver("tls", ssl_context=server)
    with connect(rx.url, ca_file=str(pki.ca), **FAST) as tx:
        with pytest.raises(TransportError, match="handshake failed"):
            tx.open()
        assert "handshake failed" in rx.wait_for_problem()
        with pytest.raises(TransportError):
            tx.send("never")
    assert rx.received == []


def test_tls_hostname_must_match(make_receiver: ReceiverFactory, pki: PKI) -> None:
    rx = make_receiver("tls", certfile=str(pki.server_cert), keyfile=str(pki.server_key))
    with connect(rx.url, ca_file=str(pki.ca), server_hostname="siem.example.com") as tx:
        with pytest.raises(TransportError, match=r"certificate verify failed.*[Hh]ostname mismatch"):
            tx.open()
        assert tx.state == "failed"


def test_tls_verify_false_warns_and_still_encrypts(
    make_receiver: ReceiverFactory, pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    rx = make_receiver("tls", certfile=str(pki.other_server_cert), keyfile=str(pki.other_server_key))
    with caplog.at_level(logging.WARNING, logger="siemfmt.transport"):
        with pytest.warns(InsecureTransportWarning, match="verification is off") as record:
            tx = connect(rx.url, verify=False)
        assert record[0].filename == __file__  # points at the caller
    assert any("verification is off" in r.getMessage() for r in caplog.records)
    with tx:
        tx.send("<9>Mar 10 08:15:31 host unverified")
        assert rx.wait_for(1)[0].raw == b"<9>Mar 10 08:15:31 host unverified"


def test_tls_minimum_version_is_enforced_on_a_given_context() -> None:
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with connect("tls://127.0.0.1:9", ssl_context=context) as tx:
        assert isinstance(tx, TLSSender)
        assert tx.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_2  # RFC 5425 §4.2 / RFC 9662


# --- IPv6 loopback ----------------------------------------------------------------------------------


@needs_ipv6
@pytest.mark.parametrize("scheme", ["udp", "tcp", "tls"])
def test_ipv6_loopback(make_receiver: ReceiverFactory, request: pytest.FixtureRequest, scheme: Scheme) -> None:
    options: dict[str, str] = {}
    sender_options: dict[str, str] = {}
    if scheme == "tls":
        pki: PKI = request.getfixturevalue("pki")
        options = {"certfile": str(pki.server_cert), "keyfile": str(pki.server_key)}
        sender_options = {"ca_file": str(pki.ca)}
    rx = make_receiver(scheme, host="::1", **options)
    assert rx.url.startswith(f"{scheme}://[::1]:")
    with connect(rx.url, **sender_options) as tx:  # TLS checks the certificate's IP:::1 name
        tx.send_many(UTF8_LINES)
        got = rx.wait_for(3)
    assert [r.raw for r in got] == [line.encode() for line in UTF8_LINES]
    assert got[0].peer[0] == "::1"


# --- the receiver and its pytest fixture ------------------------------------------------------------


def test_receiver_records_parse_errors_and_framing_problems(make_receiver: ReceiverFactory) -> None:
    rx = make_receiver("tcp", framing="octet-counting")
    with socket.create_connection(("127.0.0.1", rx.port)) as raw:
        raw.sendall(b"13 CEF:0|broken|")
        got = rx.wait_for(1)
        raw.sendall(b"not a frame\n")
    assert got[0].raw == b"CEF:0|broken|"
    assert got[0].message is None and got[0].error is not None
    assert rx.errors and rx.errors[0][0] == "CEF:0|broken|"
    assert "bad framing" in rx.wait_for_problem()
    rx.clear()
    assert rx.received == [] and rx.problems == []


def test_receiver_needs_a_certificate_for_tls() -> None:
    with pytest.raises(ValueError, match="certfile"):
        SyslogReceiver("tls")


def test_pytest_plugin_fixture(pytester: pytest.Pytester) -> None:
    """``syslog_receiver`` as a plugin user sees it (entry point pytest11, or ``-p siemfmt.testing``)."""
    pytester.makepyfile(
        """
        from siemfmt.transport import connect

        def test_it(syslog_receiver):
            rx = syslog_receiver("tcp", framing="octet-counting")
            with connect(rx.url, framing="octet-counting") as tx:
                tx.send("<9>Mar 10 08:15:31 host CEF:0|V|P|1|S|N|5|msg=hi")
                (record,) = rx.wait_for(1)
            assert record.message.format == "cef"
            assert record.message.get("msg") == "hi"
        """
    )
    installed = any(ep.value == "siemfmt.testing" for ep in importlib.metadata.entry_points(group="pytest11"))
    args = [] if installed else ["-p", "siemfmt.testing"]
    result = pytester.runpytest(*args, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_ca_file_path_objects_work(make_receiver: ReceiverFactory, pki: PKI) -> None:
    rx = make_receiver("tls", certfile=str(pki.server_cert), keyfile=str(pki.server_key))
    ca: Path = pki.ca
    with connect(rx.url, ca_file=ca) as tx:
        tx.send("path")
        assert rx.wait_for(1)[0].raw == b"path"


@pytest.mark.parametrize("keepalive", [True, False])
def test_keepalive_options_reach_the_socket(make_receiver: ReceiverFactory, keepalive: bool) -> None:
    rx = make_receiver("tcp")
    options = {"keepalive": keepalive, "keepalive_idle": 42, "keepalive_interval": 7, "keepalive_count": 3}
    with connect(rx.url, **options) as tx:
        tx.open()
        sock = tx._sock  # the connection itself is private; the options are what matters here
        assert sock is not None
        assert bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)) is keepalive
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        if keepalive and hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 42
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 7
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3


def test_program_exit_writes_what_is_queued(make_receiver: ReceiverFactory) -> None:
    """A script that never calls close() still delivers: an atexit hook flushes for ``exit_timeout``."""
    rx = make_receiver("tcp", framing="octet-counting")
    script = (
        "from siemfmt.transport import connect\n"
        f"tx = connect({rx.url!r}, framing='octet-counting')\n"
        "tx.send_many([f'at exit {i}' for i in range(1000)])\n"
    )
    src = str(Path(__file__).resolve().parent.parent / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=30)
    got = rx.wait_for(1000)
    assert [r.raw for r in got] == [f"at exit {i}".encode() for i in range(1000)]


def test_explicit_port_zero_is_refused_not_defaulted() -> None:
    with pytest.raises(ValueError, match="port"):
        connect("udp://127.0.0.1:0")
