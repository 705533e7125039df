"""Transport benchmarks over loopback: siemfmt's TCP and UDP senders against the standard library's
``SysLogHandler`` and raw sockets (the limit), to a draining receiver in a process of its own; the RELP
sender (default window) against an acknowledging RELP server in a process of its own
(``benchmarks/receiver.py``).

TCP: messages/s from the first send until the receiver has read every byte. UDP: messages/s from the
first send until the last ``sendto`` returns; the receiver's count is reported as received/sent.
Every sender is connected before the clock starts; each gets the same pre-formatted CEF lines.
"""

from __future__ import annotations

import logging
import logging.handlers
import socket
import time
from collections.abc import Callable
from typing import Any

import siemfmt
from benchmarks.formatting import log_records, stdlib_syslog_bytes
from benchmarks.pool import Pool, fixed_clock
from benchmarks.receiver import Receiver
from benchmarks.timing import Case, Result, Settings, cycled, interleaved
from siemfmt.transport import connect
from siemfmt.transport._relp import RELPSender

__all__ = ["run_transport", "settle"]

WAIT = 120.0  # seconds: a trial that takes longer is broken, not slow
SEND_MANY_BATCH = 1000


def settle(receiver: Receiver, sent: int, quiet: float = 0.3, timeout: float = 5.0) -> int:
    """Datagrams received since ``arm``: wait until ``sent`` arrived or none arrived for ``quiet`` s."""
    deadline = time.monotonic() + timeout
    last, last_change = receiver.count()[0], time.monotonic()
    while last < sent and time.monotonic() < deadline:
        time.sleep(0.01)
        now = receiver.count()[0]
        if now != last:
            last, last_change = now, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            break
    return last


def _relp_case(lines: list[str], acker: Receiver) -> Case:
    """The RELP sender with its default window: messages/s until every one is acknowledged."""
    n = len(lines)

    def trial() -> float:
        acker.arm(-1)
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
        served = acker.count()[0]
        if acked != n or served < n:
            raise RuntimeError(f"relp: {acked} of {n} acknowledged, the server answered {served}")
        return end - start

    return Case("relp: siemfmt send + flush", "tcp", n, trial, note="window 128, until all acknowledged")


def _octet_counted(data: bytes) -> bytes:
    return b"%d %s" % (len(data), data)


def run_transport(pool: Pool, settings: Settings) -> list[Result]:
    """TCP and RELP rows (siemfmt send, siemfmt send_many, SysLogHandler, raw socket, RELP send), then
    UDP rows, each set measured in turns (``interleaved``)."""
    n, rep = settings.transport_n, settings.repeat
    fmt = siemfmt.make_formatter("cef", clock=fixed_clock)
    pool_lines = [fmt(a) for a in pool.alerts]
    lines = cycled(pool_lines, n)
    # SysLogHandler adds its own PRI: give it the line without siemfmt's "<9>".
    records = cycled(log_records([line[line.index(">") + 1 :] for line in pool_lines]), n)
    results: list[Result] = []
    with Receiver("tcp") as drain, Receiver("relp") as acker:
        results += interleaved([*_tcp_cases(lines, records, drain), _relp_case(lines, acker)], rep)
    results += _udp(lines, records, rep)
    return results


def _tcp_cases(lines: list[str], records: list[logging.LogRecord], drain: Receiver) -> list[Case]:
    n = len(lines)
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
            end = drain.wait(WAIT)
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
            end = drain.wait(WAIT)
        finally:
            handler.close()
        return end - start

    def raw_trial() -> float:
        drain.arm(len(joined))
        with socket.create_connection(("127.0.0.1", drain.port)) as sock:
            start = time.perf_counter()
            sock.sendall(joined)
            end = drain.wait(WAIT)
        return end - start

    return [
        Case("tcp: siemfmt send + flush", "tcp", n, lambda: siemfmt_trial(False), note="octet-counting"),
        Case(
            "tcp: siemfmt send_many + flush",
            "tcp",
            n,
            lambda: siemfmt_trial(True),
            note=f"batches of {SEND_MANY_BATCH}",
        ),
        Case("baseline: tcp stdlib SysLogHandler", "tcp", n, stdlib_trial, note="handle(record), NUL-terminated"),
        Case("baseline: tcp raw sendall", "tcp", n, raw_trial, note="pre-joined octet-counted bytes"),
    ]


def _udp(lines: list[str], records: list[logging.LogRecord], rep: int) -> list[Result]:
    n = len(lines)
    drain = Receiver("udp")
    addr = ("127.0.0.1", drain.port)
    url = f"udp://127.0.0.1:{drain.port}"
    datagrams = [line.encode() for line in lines]
    received: dict[str, list[int]] = {}

    def udp_trial(name: str, send_all: Callable[[], Any], close: Callable[[], Any]) -> float:
        drain.arm(-1)
        try:
            start = time.perf_counter()
            send_all()
            end = time.perf_counter()
        finally:
            close()
        received.setdefault(name, []).append(settle(drain, n))
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
    try:
        results = interleaved([Case(name, "udp", n, trial) for name, _, trial in rows], rep)
    finally:
        drain.close()
    for result, (_, key, _) in zip(results, rows, strict=True):
        got = received[key][1:]  # the warm-up's count is not reported
        result.extra = {"received": got, "sent": n}
        result.note = f"received/sent {min(got)}/{n}" + ("" if min(got) == n else f" (min of {len(got)})")
    return results
