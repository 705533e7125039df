"""Transport benchmarks over loopback: siemfmt's TCP and UDP senders against the standard library's
``SysLogHandler`` and raw sockets (the limit), with an in-process draining receiver; the RELP sender
(default window) against an in-process acknowledging RELP server.

TCP: messages/s from the first send until the receiver has read every byte. UDP: messages/s from the
first send until the last ``sendto`` returns; the receiver's count is reported as received/sent.
Every sender is connected before the clock starts; each gets the same pre-formatted CEF lines.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import siemfmt
from benchmarks.formatting import log_records, stdlib_syslog_bytes
from benchmarks.pool import Pool, fixed_clock
from benchmarks.timing import Result, Settings, cycled, median, rate_of
from siemfmt.transport import connect
from siemfmt.transport._relp import RELPSender

__all__ = ["RELPAcker", "TCPDrain", "UDPDrain", "run_transport"]

BUF = 1 << 20
RCVBUF = 8 << 20
WAIT = 120.0  # seconds: a trial that takes longer is broken, not slow
SEND_MANY_BATCH = 1000


class TCPDrain:
    """Accepts connections one after another and reads each as fast as it can, counting bytes.

    ``arm(expected)`` before a trial; ``wait()`` returns the ``perf_counter`` time at which the
    expected byte count was reached."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port: int = self.server.getsockname()[1]
        self.total = 0  # bytes over all connections
        self._received = 0
        self._expected = -1
        self._done = threading.Event()
        self.done_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="bench-tcp-drain", daemon=True)
        self._thread.start()

    def arm(self, expected: int) -> None:
        self._done.clear()
        self.done_at = 0.0
        self._received = 0
        self._expected = expected

    def wait(self, timeout: float = WAIT) -> float:
        if not self._done.wait(timeout):
            raise RuntimeError(f"receiver got {self._received} of {self._expected} bytes within {timeout:g} s")
        return self.done_at

    def _serve(self) -> None:
        buf = bytearray(BUF)
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(None)
                while True:
                    try:
                        n = conn.recv_into(buf)
                    except OSError:
                        break
                    if not n:
                        break
                    self.total += n
                    self._received += n
                    if self._received >= self._expected >= 0 and not self._done.is_set():
                        self.done_at = time.perf_counter()
                        self._done.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.server.close()


class UDPDrain:
    """A UDP socket with a big receive buffer, counting datagrams from a thread."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.rcvbuf: int = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="bench-udp-drain", daemon=True)
        self._thread.start()

    def arm(self) -> None:
        self.settle(0, quiet=0.05)
        self.count = 0

    def settle(self, sent: int, quiet: float = 0.3, timeout: float = 5.0) -> int:
        """Wait until ``sent`` datagrams arrived or none arrived for ``quiet`` seconds; the count."""
        deadline = time.monotonic() + timeout
        last, last_change = self.count, time.monotonic()
        while self.count < sent and time.monotonic() < deadline:
            time.sleep(0.01)
            if self.count != last:
                last, last_change = self.count, time.monotonic()
            elif time.monotonic() - last_change >= quiet:
                break
        if sent == 0:
            time.sleep(quiet)
        return self.count

    def _serve(self) -> None:
        buf = bytearray(65536)
        while not self._stop.is_set():
            try:
                self.sock.recv_into(buf)
            except TimeoutError:
                continue
            except OSError:
                return
            self.count += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class RELPAcker:
    """A minimal RELP server: answers ``open`` as librelp does, ``200 OK`` to every ``syslog`` frame and
    the empty ``rsp`` to ``close`` (rsyslog-tls-relp.md §5), counting syslog frames over connections."""

    HEADER = re.compile(rb"(\d{1,9}) ([a-z]{1,32}) (\d{1,9})[ \n]")
    OPEN_OK = b"200 OK\nrelp_version=0\nrelp_software=bench,1,x\ncommands=syslog"

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port: int = self.server.getsockname()[1]
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="bench-relp-acker", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(None)
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        buf = b""
        match = self.HEADER.match
        scratch = bytearray(BUF)  # one reused buffer: a fresh 1 MiB per recv cost more than the sender
        view = memoryview(scratch)
        while True:
            try:
                n = conn.recv_into(scratch)
            except OSError:
                return
            if not n:
                return
            buf += view[:n]
            pos, out = 0, []
            while (m := match(buf, pos)) is not None:
                length = int(m[3])
                end = m.end() + length + (1 if length else 0)
                if end > len(buf):
                    break
                command = m[2]
                if command == b"syslog":
                    out.append(b"%s rsp 6 200 OK\n" % m[1])
                    self.count += 1
                elif command == b"open":
                    out.append(b"%s rsp %d %s\n" % (m[1], len(self.OPEN_OK), self.OPEN_OK))
                elif command == b"close":
                    conn.sendall(b"".join(out) + b"%s rsp 0\n0 serverclose 0\n" % m[1])
                    return
                pos = end
            buf = buf[pos:]
            if out:
                conn.sendall(b"".join(out))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.server.close()


def _relp(lines: list[str], rep: int) -> list[Result]:
    """The RELP sender with its default window: messages/s until every one is acknowledged."""
    n = len(lines)
    acker = RELPAcker()

    def trial() -> float:
        sender = RELPSender("127.0.0.1", acker.port)
        try:
            sender.open()
            start = time.perf_counter()
            send = sender.send
            for line in lines:
                send(line)
            if not sender.flush(WAIT):
                raise RuntimeError("relp: flush timed out")
            end = time.perf_counter()
            acked = sender.stats.acknowledged
        finally:
            sender.close()
        if acked != n:
            raise RuntimeError(f"relp: {acked} of {n} acknowledged")
        return end - start

    try:
        return [_trials("relp: siemfmt send + flush", "tcp", n, rep, trial, "window 128, until all acknowledged")]
    finally:
        acker.close()


def _octet_counted(data: bytes) -> bytes:
    return b"%d %s" % (len(data), data)


def run_transport(pool: Pool, settings: Settings) -> list[Result]:
    """TCP then UDP rows: siemfmt send, siemfmt send_many, SysLogHandler, raw socket."""
    n, rep = settings.transport_n, settings.repeat
    fmt = siemfmt.make_formatter("cef", clock=fixed_clock)
    pool_lines = [fmt(a) for a in pool.alerts]
    lines = cycled(pool_lines, n)
    # SysLogHandler adds its own PRI: give it the line without siemfmt's "<9>".
    records = cycled(log_records([line[line.index(">") + 1 :] for line in pool_lines]), n)
    results: list[Result] = []
    results += _tcp(lines, records, rep)
    results += _relp(lines, rep)
    results += _udp(lines, records, rep)
    return results


def _trials(name: str, group: str, n: int, rep: int, trial: Callable[[], float], note: str = "") -> Result:
    trial()  # warm-up
    rates = [rate_of(n, trial()) for _ in range(rep)]
    return Result(name, group, median(rates), n, rates, note)


def _tcp(lines: list[str], records: list[logging.LogRecord], rep: int) -> list[Result]:
    n = len(lines)
    drain = TCPDrain()
    url = f"tcp://127.0.0.1:{drain.port}"
    frames = [_octet_counted(line.encode()) for line in lines]
    siemfmt_bytes = sum(len(f) for f in frames)
    joined = b"".join(frames)
    batches = [lines[i : i + SEND_MANY_BATCH] for i in range(0, n, SEND_MANY_BATCH)]

    def siemfmt_trial(many: bool) -> float:
        drain.arm(siemfmt_bytes)
        sender = connect(url, framing="octet-counting")
        try:
            sender.open()
            start = time.perf_counter()
            if many:
                for batch in batches:
                    sender.send_many(batch)
            else:
                send = sender.send
                for line in lines:
                    send(line)
            if not sender.flush(WAIT):
                raise RuntimeError(f"{url}: flush timed out")
            end = drain.wait()
            written = sender.stats.bytes
        finally:
            sender.close()
        if written != siemfmt_bytes:
            raise RuntimeError(f"siemfmt wrote {written} bytes, expected {siemfmt_bytes} (octet-counting)")
        return end - start

    def stdlib_trial() -> float:
        handler = logging.handlers.SysLogHandler(("127.0.0.1", drain.port), socktype=socket.SOCK_STREAM)
        try:
            expected = sum(len(stdlib_syslog_bytes(handler, r)) for r in records)
            drain.arm(expected)
            handle = handler.handle
            start = time.perf_counter()
            for r in records:
                handle(r)
            end = drain.wait()
        finally:
            handler.close()
        return end - start

    def raw_trial() -> float:
        drain.arm(len(joined))
        with socket.create_connection(("127.0.0.1", drain.port)) as sock:
            start = time.perf_counter()
            sock.sendall(joined)
            end = drain.wait()
        return end - start

    try:
        return [
            _trials("tcp: siemfmt send + flush", "tcp", n, rep, lambda: siemfmt_trial(False), "octet-counting"),
            _trials(
                "tcp: siemfmt send_many + flush",
                "tcp",
                n,
                rep,
                lambda: siemfmt_trial(True),
                f"batches of {SEND_MANY_BATCH}",
            ),
            _trials(
                "baseline: tcp stdlib SysLogHandler", "tcp", n, rep, stdlib_trial, "handle(record), NUL-terminated"
            ),
            _trials("baseline: tcp raw sendall", "tcp", n, rep, raw_trial, "pre-joined octet-counted bytes"),
        ]
    finally:
        drain.close()


def _udp(lines: list[str], records: list[logging.LogRecord], rep: int) -> list[Result]:
    n = len(lines)
    drain = UDPDrain()
    addr = ("127.0.0.1", drain.port)
    url = f"udp://127.0.0.1:{drain.port}"
    datagrams = [line.encode() for line in lines]
    received: dict[str, list[int]] = {}

    def udp_trial(name: str, send_all: Callable[[], Any], close: Callable[[], Any]) -> float:
        drain.arm()
        try:
            start = time.perf_counter()
            send_all()
            end = time.perf_counter()
        finally:
            close()
        received.setdefault(name, []).append(drain.settle(n))
        return end - start

    def siemfmt_trial(many: bool) -> float:
        sender = connect(url)
        sender.open()

        def send_all() -> None:
            if many:
                for i in range(0, n, SEND_MANY_BATCH):
                    sender.send_many(lines[i : i + SEND_MANY_BATCH])
            else:
                send = sender.send
                for line in lines:
                    send(line)

        return udp_trial("siemfmt_many" if many else "siemfmt", send_all, sender.close)

    def stdlib_trial() -> float:
        handler = logging.handlers.SysLogHandler(addr)

        def send_all() -> None:
            handle = handler.handle
            for r in records:
                handle(r)

        return udp_trial("stdlib", send_all, handler.close)

    def raw_trial() -> float:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

        def send_all() -> None:
            sendto = sock.sendto
            for d in datagrams:
                sendto(d, addr)

        return udp_trial("raw", send_all, sock.close)

    rows = [
        ("udp: siemfmt send", "siemfmt", lambda: siemfmt_trial(False)),
        ("udp: siemfmt send_many", "siemfmt_many", lambda: siemfmt_trial(True)),
        ("baseline: udp stdlib SysLogHandler", "stdlib", stdlib_trial),
        ("baseline: udp raw sendto", "raw", raw_trial),
    ]
    results: list[Result] = []
    try:
        for name, key, trial in rows:
            result = _trials(name, "udp", n, rep, trial)
            got = received[key][1:]  # the warm-up's count is not reported
            result.extra = {"received": got, "sent": n}
            result.note = f"received/sent {min(got)}/{n}" + ("" if min(got) == n else f" (min of {len(got)})")
            results.append(result)
    finally:
        drain.close()
    return results
