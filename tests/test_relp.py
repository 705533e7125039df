"""RELP sender: frame parsing, the sequence tag, and the protocol's paths against an in-process fake
RELP server (acks, window, 500, serverclose, wrong TXNR, oversize frames, refused sessions, timeouts).

The fake server parses frames with its own code (not the sender's reader) and answers as librelp 1.11
does on the wire (rsyslog-tls-relp.md §5).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from siemfmt.transport import MessageError, QueueFullError, TLSHandshakeError, TransportError
from siemfmt.transport._relp import (
    RELPFrame,
    RELPFrameReader,
    RELPProtocolError,
    RELPRefusedError,
    RELPSender,
    RELPStats,
    RELPTLSSender,
    _plain_acks,
    _syslog_frames,
)
from tests.tls_pki import PKI

# What librelp 1.11 answers to open (rsyslog-tls-relp.md §5, wire).
OPEN_OK = b"200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog"
FAST = {"backoff_base": 0.01, "backoff_cap": 0.05, "connect_timeout": 2.0}


# --- the fake server --------------------------------------------------------------------------------


def rsp(txnr: int, data: bytes) -> bytes:
    return b"%d rsp %d %s\n" % (txnr, len(data), data) if data else b"%d rsp 0\n" % txnr


SERVERCLOSE = b"0 serverclose 0\n"
HANG_UP = b"<hang up>"  # a reply ending with this closes the connection after the bytes before it
NOTHING = b""  # answer nothing (yet)


@dataclass
class Conn:
    no: int
    sock: socket.socket
    frames: list[tuple[int, str, bytes]] = field(default_factory=list)
    outstanding: int = 0  # syslog frames received and not answered


Handler = Callable[[Conn, int, str, bytes], bytes | None]


class FakeRELP:
    """Accepts connections; each frame goes to ``handler(conn, txnr, command, data)``, which returns the
    bytes to send (``b""`` hangs up, None: librelp's default answer)."""

    HEADER = re.compile(rb"(\d+) ([A-Za-z]+) (\d+)")

    def __init__(self, handler: Handler | None = None, tls: PKI | None = None) -> None:
        self.handler = handler
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self.conns: list[Conn] = []
        self.accepted: list[bytes] = []  # syslog data answered 200, in order
        self.max_outstanding = 0
        self.lock = threading.Lock()
        self.tls = tls
        self._threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.server.accept()
            except OSError:
                return
            if self.tls is not None:
                import ssl

                ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                ctx.load_cert_chain(self.tls.server_cert, self.tls.server_key)
                try:
                    sock = ctx.wrap_socket(sock, server_side=True)
                except (OSError, ssl.SSLError):
                    sock.close()
                    continue
            conn = Conn(len(self.conns) + 1, sock)
            self.conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn: Conn) -> None:
        buf = b""
        with conn.sock:
            while True:
                try:
                    chunk = conn.sock.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while True:
                    m = self.HEADER.match(buf)
                    if m is None or len(buf) <= m.end():
                        break
                    txnr, command, length = int(m[1]), m[2].decode(), int(m[3])
                    start = m.end() + (1 if length else 0)
                    if len(buf) < start + length + 1:
                        break
                    data, buf = buf[start : start + length], buf[start + length + 1 :]
                    conn.frames.append((txnr, command, data))
                    if command == "syslog":
                        conn.outstanding += 1
                        self.max_outstanding = max(self.max_outstanding, conn.outstanding)
                    reply = self.handler(conn, txnr, command, data) if self.handler else None
                    if reply is None:
                        reply = self.default(conn, txnr, command, data)
                    hang_up = reply.endswith(HANG_UP)
                    try:
                        conn.sock.sendall(reply.removesuffix(HANG_UP))
                    except OSError:
                        return
                    if hang_up:  # FIN, not RST: let the client read what came before
                        conn.sock.shutdown(socket.SHUT_WR)
                        conn.sock.settimeout(2.0)
                        with contextlib.suppress(OSError):
                            while conn.sock.recv(65536):
                                pass
                        return
                    if command == "close":
                        return

    def default(self, conn: Conn, txnr: int, command: str, data: bytes) -> bytes:
        if command == "open":
            return rsp(txnr, OPEN_OK)
        if command == "close":
            return rsp(txnr, b"") + SERVERCLOSE  # §8.5: the empty rsp, then serverclose
        return self.ack(conn, txnr, data)

    def ack(self, conn: Conn, txnr: int, data: bytes) -> bytes:
        with self.lock:
            self.accepted.append(data)
        conn.outstanding -= 1
        return rsp(txnr, b"200 OK")

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def fake() -> Iterator[Callable[..., FakeRELP]]:
    made: list[FakeRELP] = []

    def make(handler: Handler | None = None, tls: PKI | None = None) -> FakeRELP:
        server = FakeRELP(handler, tls)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def sender(server: FakeRELP, **options: object) -> RELPSender:
    return RELPSender("127.0.0.1", server.port, **{**FAST, **options})  # type: ignore[arg-type]


def lines(n: int, tag: str = "m") -> list[str]:
    return [f"<14>1 2026-03-10T08:15:31.000Z host app - - - {tag} {i:05d}" for i in range(n)]


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# --- frame reader -----------------------------------------------------------------------------------


def test_reader_byte_by_byte_and_whole() -> None:
    wire = rsp(1, OPEN_OK) + rsp(2, b"200 OK") + b"3 rsp 0\n" + SERVERCLOSE
    expected = [
        RELPFrame(1, "rsp", OPEN_OK),
        RELPFrame(2, "rsp", b"200 OK"),
        RELPFrame(3, "rsp", b""),
        RELPFrame(0, "serverclose", b""),
    ]
    assert RELPFrameReader().feed(wire) == expected
    reader = RELPFrameReader()
    got: list[RELPFrame] = []
    for i in range(len(wire)):
        got += reader.feed(wire[i : i + 1])
    assert got == expected
    assert reader.pending == 0


def test_reader_data_may_hold_lf_and_is_counted_in_bytes() -> None:
    data = "200 OK\nÄ€😀".encode()
    assert RELPFrameReader().feed(b"7 rsp %d %s\n" % (len(data), data)) == [RELPFrame(7, "rsp", data)]


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (b"1234567890 rsp 6 200 OK\n", "header"),  # 10-digit TXNR
        (b"1 rsp 1234567890 x\n", "header"),  # 10-digit DATALEN
        (b"1 r5p 6 200 OK\n", "header"),  # non-alpha command
        (b"1 rsp 6 200 OKX", "trailer"),  # trailer is not LF
        (b"1 rsp 0 \n", "DATALEN 0"),  # data separator without data
        (b"1 rsp 6\n", "announces"),  # DATALEN without data
        (b"1 rsp 999999 " + b"x" * 10, "exceeds"),  # oversize frame
        (b"x" * 60, "header"),
    ],
)
def test_reader_rejects_malformed_frames(wire: bytes, why: str) -> None:
    with pytest.raises(RELPProtocolError, match=why):
        RELPFrameReader(max_data=1000).feed(wire)


def test_reader_waits_for_incomplete_frames() -> None:
    reader = RELPFrameReader()
    for part in (b"12", b"12 rs", b"12 rsp ", b"12 rsp 6", b"12 rsp 6 200 O"):
        assert RELPFrameReader().feed(part) == []
    assert reader.feed(b"12 rsp 6 200 OK") == []
    assert reader.feed(b"\n") == [RELPFrame(12, "rsp", b"200 OK")]


@pytest.mark.parametrize("first", [1, 2, 990, 999, 1000, 54_321, 899_999_900, 999_999_000])
def test_batch_framing_is_the_plain_frame_format(first: int) -> None:
    """The sender builds frames and the expected ack runs from cached parts; byte for byte they are
    the plain ``TXNR syslog DATALEN DATA\\n`` / ``TXNR rsp 6 200 OK\\n`` (ref §5 Frame), across the
    places where the TXNR gains a digit."""
    msgs = [f"<14>1 - h a - - - {'é' * (i % 7)} m{i}".encode() for i in range(1500)]
    for count in (1, 2, 11, 1000, 1500):
        batch = msgs[:count]
        assert _syslog_frames(first, batch) == b"".join(
            b"%d syslog %d %s\n" % (first + i, len(m), m) for i, m in enumerate(batch)
        )
        assert _plain_acks(first, count) == b"".join(b"%d rsp 6 200 OK\n" % (first + i) for i in range(count))


# --- options ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"window": 0}, "window"),
        ({"window": 1.5}, "window"),
        ({"session_limit": 999_999_999}, "session_limit"),
        ({"sequence": "leef"}, "sequence"),
        ({"sender_id": "has space"}, "sender_id"),
        ({"sequence_sd_id": "a=b"}, "sequence_sd_id"),
        ({"ack_timeout": 0}, "ack_timeout"),
        ({"on_full": "wait"}, "on_full"),
    ],
)
def test_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RELPSender("127.0.0.1", 2514, **options)  # type: ignore[arg-type]


def test_defaults() -> None:
    s = RELPSender("127.0.0.1")
    assert (s.port, s.window, s.scheme, s.url, s.state) == (2514, 128, "relp", "relp://127.0.0.1:2514", "idle")
    assert isinstance(s.stats, RELPStats)
    s.close()
    t = RELPTLSSender("localhost")
    assert (t.port, t.scheme, t.server_hostname) == (2514, "relp+tls", "localhost")
    t.close()


# --- the happy path ---------------------------------------------------------------------------------


def test_open_offers_txnr_close(fake: Callable[..., FakeRELP]) -> None:
    server = fake()
    msgs = lines(1000)
    with sender(server) as s:
        s.open()
        assert s.state == "connected"
        assert s.peer_software.startswith("librelp,")
        s.send_many(msgs[:500])
        for m in msgs[500:]:
            s.send(m)
        assert s.flush(10)
        stats = s.stats
        assert (stats.acknowledged, stats.in_flight, stats.queued, stats.resent) == (1000, 0, 0, 0)
    assert s.state == "closed"
    assert server.accepted == [m.encode() for m in msgs]
    (conn,) = server.conns
    txnr, command, offers = conn.frames[0]
    assert (txnr, command) == (1, "open")
    offer_lines = offers.split(b"\n")
    assert offer_lines[0] == b"relp_version=0"
    assert re.fullmatch(rb"relp_software=siemfmt,[^,]+,https://\S+", offer_lines[1])
    assert offer_lines[2] == b"commands=syslog"
    # TXNR 1 is open, the messages take 2..1001 in order, close takes the next one.
    assert [f[0] for f in conn.frames] == list(range(1, 1003))
    assert {f[1] for f in conn.frames[1:-1]} == {"syslog"}
    assert conn.frames[-1] == (1002, "close", b"")


def test_datalen_counts_bytes_not_characters(fake: Callable[..., FakeRELP]) -> None:
    server = fake()
    text = "<14>1 - host app - - - Süd 操作员 😀"
    with sender(server) as s:
        s.send(text)
        assert s.flush(5)
    assert server.accepted == [text.encode()]
    assert server.conns[0].frames[1] == (2, "syslog", text.encode())


def test_window_bounds_unacknowledged_frames(fake: Callable[..., FakeRELP]) -> None:
    """The server holds its answers until 8 frames are unanswered: a client that kept to a smaller
    window would stall (flush fails), one that exceeded it would show 9 outstanding."""
    held: list[tuple[Conn, int, bytes]] = []

    def hold(conn: Conn, txnr: int, command: str, data: bytes) -> bytes | None:
        if command != "syslog":
            return None
        held.append((conn, txnr, data))
        if conn.outstanding < 8:
            return NOTHING
        out = b"".join(server.ack(c, t, d) for c, t, d in held)
        held.clear()
        return out

    server = fake(hold)
    with sender(server, window=8) as s:
        s.send_many(lines(96))
        assert s.flush(10)
    assert server.max_outstanding == 8
    assert len(server.accepted) == 96


def test_max_batch_bytes_splits_writes(fake: Callable[..., FakeRELP]) -> None:
    server = fake()
    msgs = lines(200)
    with sender(server, window=64, max_batch_bytes=300) as s:
        s.send_many(msgs[:100])
        for m in msgs[100:]:
            s.send(m)
        assert s.flush(10)
        stats = s.stats
    assert server.accepted == [m.encode() for m in msgs]
    assert (stats.sent, stats.acknowledged, stats.resent) == (200, 200, 0)
    assert stats.bytes == sum(len(b"%d syslog %d %s\n" % (i + 2, len(m), m.encode())) for i, m in enumerate(msgs))
    assert stats.writes >= 200 * 60 // 300  # about max_batch_bytes per write, not the whole window


def test_acks_split_anywhere_in_the_stream(fake: Callable[..., FakeRELP]) -> None:
    """Answers that arrive cut in the middle of a frame are still taken in order, none twice."""
    carry: list[bytes] = []

    def split(conn: Conn, txnr: int, command: str, data: bytes) -> bytes | None:
        if command != "syslog":
            return None
        answer = b"".join(carry) + server.ack(conn, txnr, data)
        carry.clear()
        if txnr % 3 == 0:
            time.sleep(0.005)  # let the client read the cut answer before the rest
            cut = txnr % 11 + 1
            carry.append(answer[-cut:])
            return answer[:-cut]
        return answer

    server = fake(split)
    msgs = lines(300)
    with sender(server, window=3) as s:
        for m in msgs:
            s.send(m)
        assert s.flush(10)
        stats = s.stats
    assert server.accepted == [m.encode() for m in msgs]
    assert (stats.acknowledged, stats.in_flight, stats.failures, stats.resent) == (300, 0, 0, 0)


def test_exact_stats_when_a_whole_window_is_resent(fake: Callable[..., FakeRELP]) -> None:
    """Session 1 answers nothing and hangs up at the 10th frame: all 10 go again, counted once each."""

    def hang_up_unanswered(conn: Conn, txnr: int, command: str, data: bytes) -> bytes | None:
        if conn.no == 1 and command == "syslog":
            return HANG_UP if txnr == 11 else NOTHING
        return None

    server = fake(hang_up_unanswered)
    msgs = lines(10)
    with sender(server, window=16) as s:
        s.send_many(msgs)
        assert s.flush(10)
        stats = s.stats
        assert s.unacknowledged() == []
    assert server.accepted == [m.encode() for m in msgs]
    assert [d for _, c, d in server.conns[0].frames if c == "syslog"] == server.accepted
    assert (stats.sent, stats.resent, stats.acknowledged, stats.in_flight, stats.queued) == (10, 10, 10, 0, 0)
    assert [f[0] for f in server.conns[1].frames[:-1]] == list(range(1, 12))  # new TXNRs, same order


def test_thread_safe_sends_with_sequence(fake: Callable[..., FakeRELP]) -> None:
    server = fake()
    with sender(server, sequence="sd", sender_id="unit-1", window=16) as s:

        def produce(k: int) -> None:
            for m in lines(300, f"t{k}"):
                s.send(m)

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert s.flush(10)
    numbers = [int(re.search(rb' n="(\d+)"', m)[1]) for m in server.accepted]  # type: ignore[index]
    assert numbers == list(range(1, 1201))  # assigned in queue order, once each
    assert all(b'sender="unit-1"' in m for m in server.accepted)


# --- the sequence tag -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "message", "expected"),
    [
        ("sd", "<14>1 - h a - - - body", '<14>1 - h a - - [seq@32473 n="1" sender="s1"] body'),
        ("sd", "<14>1 - h a - - -", '<14>1 - h a - - [seq@32473 n="1" sender="s1"]'),
        (
            "sd",
            '<14>1 - h a - - [x@1 k="v"] body',
            '<14>1 - h a - - [seq@32473 n="1" sender="s1"][x@1 k="v"] body',
        ),
        (
            "cef",
            "<9>CEF:0|V|P|1|id|name|5|src=1.2.3.4",
            "<9>CEF:0|V|P|1|id|name|5|src=1.2.3.4 siemfmtSeq=1 siemfmtSender=s1",
        ),
        ("cef", "<9>CEF:0|V|P|1|id|name|5|", "<9>CEF:0|V|P|1|id|name|5|siemfmtSeq=1 siemfmtSender=s1"),
    ],
)
def test_sequence_tag(fake: Callable[..., FakeRELP], kind: str, message: str, expected: str) -> None:
    server = fake()
    with sender(server, sequence=kind, sender_id="s1") as s:
        s.send(message)
        assert s.flush(5)
    assert server.accepted == [expected.encode()]


@pytest.mark.parametrize(("kind", "message"), [("sd", "<14>Mar 10 08:15:31 host body"), ("cef", "<14>1 - h a - - - x")])
def test_sequence_needs_its_format(kind: str, message: str) -> None:
    s = RELPSender("127.0.0.1", 2514, sequence=kind)  # type: ignore[arg-type]
    with pytest.raises(MessageError, match=f"sequence='{kind}'"):
        s.send(message)
    with pytest.raises(MessageError):
        s.send_many(["<14>1 - h a - - - ok CEF:0|a|b|c|d|e|1|", message])
    assert s.stats.queued == 0  # nothing of the batch was queued
    s.close(0.1)


# --- breaks: 500, serverclose, wrong TXNR, EOF, timeout --------------------------------------------


def assert_delivered_once_or_dup(server: FakeRELP, msgs: list[str], window: int) -> None:
    """Nothing lost, at most ``window`` duplicates, and each session sent its frames in order."""
    got = server.accepted
    want = [m.encode() for m in msgs]
    assert set(got) == set(want), "lost messages"
    assert len(got) - len(want) <= window, "more duplicates than the window"
    index = {m: i for i, m in enumerate(want)}
    for conn in server.conns:
        order = [index[d] for _, c, d in conn.frames if c == "syslog" and d in index]
        assert order == sorted(set(order)), f"session {conn.no} sent out of order"


def test_500_breaks_the_session_and_resends_in_order(fake: Callable[..., FakeRELP]) -> None:
    refused: list[int] = []

    def nak_once(conn: Conn, txnr: int, command: str, data: bytes) -> bytes | None:
        if command == "syslog" and data.endswith(b"00005") and not refused:
            refused.append(txnr)
            conn.outstanding -= 1
            return rsp(txnr, b"500 not now")
        return None

    server = fake(nak_once)
    msgs = lines(300)
    with sender(server, window=16, sequence="sd") as s:
        s.send_many(msgs)
        assert s.flush(10)
        stats = s.stats
    assert refused
    assert len(server.conns) == 2
    assert server.conns[1].frames[0][:2] == (1, "open")  # a new session starts again at TXNR 1
    assert [f[0] for f in server.conns[1].frames] == list(range(1, len(server.conns[1].frames) + 1))
    assert stats.reconnects == 1 and stats.sessions == 2 and 1 <= stats.resent <= 16
    assert stats.acknowledged == 300
    assert isinstance(s.last_error, TransportError) and "500" in str(s.last_error)
    # The refused message was sent again with the same sequence number.
    tagged = [m for m in server.accepted if m.endswith(b"00005")]
    assert len(tagged) == 1 and b' n="6"' in tagged[0]
    first_try = next(d for t, c, d in server.conns[0].frames if t == refused[0])
    assert first_try == tagged[0]


def test_message_refused_max_rejects_times_is_dropped(fake: Callable[..., FakeRELP]) -> None:
    """A frame the server always refuses (here: over 200 bytes) must not block the rest for ever."""

    def refuse_big(conn: Conn, txnr: int, command: str, data: bytes) -> bytes | None:
        if command == "syslog" and len(data) > 200:
            conn.outstanding -= 1
            return rsp(txnr, b"500 frame too long")
        return None

    server = fake(refuse_big)
    msgs = lines(20)
    big = "<14>1 - h a - - - " + "x" * 300
    with sender(server, window=4, max_rejects=3) as s:
        s.send_many([*msgs[:10], big, *msgs[10:]])
        assert s.flush(10)
        stats = s.stats
    assert (stats.rejected, stats.dropped) == (1, 1)
    assert sum(1 for c in server.conns for f in c.frames if f[2] == big.encode()) == 3
    assert_delivered_once_or_dup(server, msgs, 4 * 3)


def test_serverclose_mid_window(fake: Callable[..., FakeRELP]) -> None:
    def close_after_10(conn: Conn, txnr: int, command: str, data: bytes) -> bytes | None:
        if conn.no == 1 and command == "syslog":
            if txnr <= 6:
                return server.ack(conn, txnr, data)
            if txnr == 11:
                return SERVERCLOSE + HANG_UP
            return NOTHING
        return None

    server = fake(close_after_10)
    msgs = lines(200)
    with sender(server, window=32) as s:
        s.send_many(msgs)
        assert s.flush(10)
        stats = s.stats
    assert len(server.conns) >= 2
    assert "serverclose" in str(s.last_error)
    assert_delivered_once_or_dup(server, msgs, 32)
    # Everything unacknowledged in session 1 went out again, first, in order, from TXNR 2.
    second = [d for t, c, d in server.conns[1].frames if c == "syslog"]
    assert second[:5] == [m.encode() for m in msgs[5:10]]
    assert stats.resent >= 5


def test_wrong_txnr_in_response(fake: Callable[..., FakeRELP]) -> None:
    def off_by_one(conn: Conn, txnr: int, command: str, data: bytes) -> bytes | None:
        if conn.no == 1 and command == "syslog" and txnr == 4:
            return rsp(txnr + 1, b"200 OK")
        return None

    server = fake(off_by_one)
    msgs = lines(50)
    with sender(server, window=8) as s:
        s.send_many(msgs)
        assert s.flush(10)
    assert isinstance(s.last_error, RELPProtocolError)
    assert "transaction 5, expected 4" in str(s.last_error)
    assert len(server.conns) == 2
    assert_delivered_once_or_dup(server, msgs, 8)


def test_oversize_frame_from_server(fake: Callable[..., FakeRELP]) -> None:
    def huge(conn: Conn, txnr: int, command: str, data: bytes) -> bytes | None:
        if conn.no == 1 and command == "syslog" and txnr == 3:
            return b"%d rsp 999999999 200 OK" % txnr
        return None

    server = fake(huge)
    msgs = lines(20)
    with sender(server) as s:
        s.send_many(msgs)
        assert s.flush(10)
    assert isinstance(s.last_error, RELPProtocolError) and "exceeds" in str(s.last_error)
    assert_delivered_once_or_dup(server, msgs, 128)


def test_client_oversize_message_follows_max_size(fake: Callable[..., FakeRELP]) -> None:
    server = fake()
    with sender(server, max_size=50, on_oversize="error") as s, pytest.raises(MessageError, match="max_size"):
        s.send("<14>1 - h a - - - " + "x" * 100)
    with sender(server, max_size=50) as s:
        s.send("<14>1 - h a - - - " + "x" * 100)
        assert s.flush(5)
        assert s.stats.truncated == 1
    assert server.accepted == [("<14>1 - h a - - - " + "x" * 100).encode()[:50]]


def test_eof_mid_window_resends(fake: Callable[..., FakeRELP]) -> None:
    def hang_up(conn: Conn, txnr: int, command: str, data: bytes) -> bytes | None:
        if conn.no == 1 and command == "syslog" and txnr == 20:
            return HANG_UP
        return None

    server = fake(hang_up)
    msgs = lines(100)
    with sender(server, window=16) as s:
        s.send_many(msgs)
        assert s.flush(10)
        assert s.stats.reconnects == 1
    assert_delivered_once_or_dup(server, msgs, 16)


def test_ack_timeout_breaks_and_resends(fake: Callable[..., FakeRELP]) -> None:
    def silent_first(conn: Conn, txnr: int, command: str, data: bytes) -> bytes | None:
        if conn.no == 1 and command == "syslog":
            return NOTHING
        return None

    server = fake(silent_first)
    msgs = lines(10)
    with sender(server, ack_timeout=0.3) as s:
        s.send_many(msgs)
        assert s.flush(10)
    assert isinstance(s.last_error, TimeoutError)
    assert server.accepted == [m.encode() for m in msgs]


def test_flush_times_out_and_says_what_is_in_flight(fake: Callable[..., FakeRELP]) -> None:
    server = fake(lambda conn, txnr, command, data: NOTHING if command == "syslog" else None)
    msgs = lines(5)
    s = sender(server)
    s.send_many(msgs)
    assert not s.flush(0.3)
    assert s.unacknowledged() == [m.encode() for m in msgs]
    assert s.stats.in_flight == 5
    s.close(0.1)
    assert s.stats.dropped == 5
    assert server.conns[0].frames[-1][1] != "close"  # no close while frames are unanswered


@pytest.mark.parametrize(
    "answer",
    [
        rsp(1, b"500 required command not supported by client") + SERVERCLOSE,  # librelp, §5 wire
        rsp(1, b"200 OK\nrelp_version=0\ncommands=foo"),
    ],
)
def test_server_refusing_commands_syslog(fake: Callable[..., FakeRELP], answer: bytes) -> None:
    server = fake(lambda conn, txnr, command, data: answer if command == "open" else None)
    s = sender(server)
    with pytest.raises(RELPRefusedError, match="commands=syslog"):
        s.open()
    assert s.state == "failed"
    with pytest.raises(RELPRefusedError):
        s.send("<14>1 - h a - - - x")
    s.close(0.1)
    assert server.accepted == []


def test_refusal_found_by_the_thread(fake: Callable[..., FakeRELP]) -> None:
    server = fake(lambda conn, txnr, command, data: rsp(1, b"500 nope") if command == "open" else None)
    s = sender(server)
    s.send("<14>1 - h a - - - x")
    assert not s.flush(5)
    assert wait_until(lambda: s.state == "failed")
    assert isinstance(s.last_error, RELPRefusedError)
    assert len(server.conns) == 1  # no retry loop
    s.close(0.1)
    assert s.stats.dropped == 1


def test_open_fails_when_nobody_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    s = RELPSender("127.0.0.1", port, connect_timeout=1.0)
    with pytest.raises(TransportError, match="cannot open"):
        s.open()
    assert s.stats.failures == 1
    s.close(0.1)


def test_reconnects_with_backoff_until_the_server_comes() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    s = RELPSender("127.0.0.1", port, backoff_base=0.05, backoff_cap=0.2)
    s.send("<14>1 - h a - - - late")
    assert wait_until(lambda: s.stats.failures >= 3)
    assert s.state == "disconnected"
    started = time.monotonic()
    failures = s.stats.failures
    assert wait_until(lambda: s.stats.failures >= failures + 3)
    assert time.monotonic() - started >= 0.3  # capped at 0.2 s less jitter: not a busy loop
    server = FakeRELP()
    server.server.close()
    server.server = socket.create_server(("127.0.0.1", port))
    server.port = port
    threading.Thread(target=server._accept, daemon=True).start()
    try:
        assert s.flush(5)
        assert server.accepted == [b"<14>1 - h a - - - late"]
    finally:
        s.close()
        server.close()


def test_session_rollover_before_the_txnr_limit(fake: Callable[..., FakeRELP]) -> None:
    server = fake()
    msgs = lines(35)
    with sender(server, session_limit=10, window=4) as s:
        s.send_many(msgs)
        assert s.flush(10)
        stats = s.stats
    assert server.accepted == [m.encode() for m in msgs]  # graceful: no duplicates
    assert stats.resent == 0 and stats.reconnects == 0 and stats.failures == 0
    for conn in server.conns:
        assert [f[0] for f in conn.frames] == list(range(1, len(conn.frames) + 1))
        assert max(f[0] for f in conn.frames) <= 11  # 10 frames, then close
        assert conn.frames[-1][1] == "close"
    assert stats.sessions == len(server.conns) >= 4


def test_queue_bound(fake: Callable[..., FakeRELP]) -> None:
    server = fake(lambda conn, txnr, command, data: NOTHING if command == "syslog" else None)
    s = sender(server, max_queue=5, on_full="error", window=2)
    s.send_many(lines(5))
    with pytest.raises(QueueFullError):
        s.send("<14>1 - h a - - - one too many")
    s.close(0.1)
    d = sender(server, max_queue=5, on_full="drop-oldest", window=2)
    d.send_many(lines(8))
    assert d.stats.dropped >= 3
    d.close(0.1)


# --- TLS against the fake server --------------------------------------------------------------------


def test_tls_trusted(fake: Callable[..., FakeRELP], pki: PKI) -> None:
    server = fake(tls=pki)
    msgs = lines(500)
    with RELPTLSSender("127.0.0.1", server.port, ca_file=str(pki.ca), server_hostname="localhost", window=32) as s:
        s.send_many(msgs)
        assert s.flush(10)
    assert server.accepted == [m.encode() for m in msgs]


def test_tls_untrusted(fake: Callable[..., FakeRELP], pki: PKI, tmp_path: Path) -> None:
    server = fake(tls=pki)
    s = RELPTLSSender("127.0.0.1", server.port, ca_file=str(pki.other_ca), **FAST)  # type: ignore[arg-type]
    with pytest.raises(TLSHandshakeError, match="certificate"):
        s.open()
    assert s.state == "failed"
    s.close(0.1)
    assert server.accepted == []


def test_connect_builds_relp_senders_from_urls() -> None:
    from siemfmt.transport import RELPTLSSender, connect

    plain = connect("relp://127.0.0.1?window=16")
    try:
        assert isinstance(plain, RELPSender)
        assert (plain.port, plain.window) == (2514, 16)
    finally:
        plain.close(0)
    with pytest.warns(UserWarning, match="verification is off"):
        secure = connect("relp+tls://localhost:2515", verify=False)
    try:
        assert isinstance(secure, RELPTLSSender)
        assert secure.url == "relp+tls://localhost:2515"
    finally:
        secure.close(0)
