"""In-process loopback syslog receivers for tests: UDP, TCP (LF or octet counting) and TLS.

A receiver binds port 0 by default, runs in threads, and keeps what arrives: the raw message bytes
and, when ``siemfmt.parse`` accepts the line, the parsed :class:`siemfmt.Message`::

    from siemfmt.testing import SyslogReceiver
    from siemfmt.transport import connect

    with SyslogReceiver("tcp", framing="octet-counting") as rx, connect(rx.url, framing="octet-counting") as tx:
        tx.send("<9>Mar 10 08:15:31 host CEF:0|...")
        (record,) = rx.wait_for(1)
        assert record.message is not None and record.message.format == "cef"

The pytest plugin (entry point ``pytest11``) adds the ``syslog_receiver`` fixture: a factory whose
receivers are closed when the test ends (``syslog_receiver("udp")``, ``syslog_receiver("tls", ...)``).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from siemfmt import Message, parse
from siemfmt.syslog import LFDecoder, OctetCountingDecoder

try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed for the fixture
    pytest = None  # type: ignore[assignment]

__all__ = ["Received", "ReceiverFactory", "Scheme", "SyslogReceiver", "receivers"]

Scheme = Literal["udp", "tcp", "tls"]
ReceiverFraming = Literal["auto", "lf", "octet-counting"]


@dataclass(frozen=True, slots=True)
class Received:
    """One message as it arrived: bytes without framing, who sent it, and the parse result."""

    raw: bytes
    peer: tuple[Any, ...]
    connection: int  # 1, 2, ... in accept order; 0 for UDP
    at: float  # time.monotonic() on arrival
    message: Message | None  # siemfmt.parse(line), None when it failed
    error: Exception | None  # why parsing failed

    @property
    def line(self) -> str:
        """The raw bytes as text (invalid UTF-8 shows as U+FFFD)."""
        return self.raw.decode("utf-8", errors="replace")


def _parse(raw: bytes) -> tuple[Message | None, Exception | None]:
    try:
        return parse(raw.decode("utf-8", errors="replace")), None
    except Exception as exc:  # record any failure: one bad line must not stop the receiver
        return None, exc


class SyslogReceiver:
    """A syslog receiver on loopback that records every message; a context manager.

    ``scheme``: ``udp``, ``tcp`` or ``tls``. ``framing`` (TCP, TLS): ``octet-counting`` (RFC 6587
    §3.4.1), ``lf`` (§3.4.2) or ``auto`` (chosen per connection by its first byte, a digit meaning
    octet counting, as rsyslog does per frame). TLS needs ``certfile``/``keyfile`` or an
    ``ssl_context``; ``client_ca`` asks clients for a certificate signed by it. ``parse=False`` skips
    ``siemfmt.parse``. Framing and TLS failures go to ``problems`` and end that connection.
    """

    def __init__(
        self,
        scheme: Scheme = "udp",
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        framing: ReceiverFraming = "auto",
        certfile: str | None = None,
        keyfile: str | None = None,
        client_ca: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        parse: bool = True,
        max_frame: int = 1 << 20,
        handshake_timeout: float = 5.0,
    ) -> None:
        if scheme not in ("udp", "tcp", "tls"):
            raise ValueError(f"scheme: {scheme!r} must be udp, tcp or tls")
        if framing not in ("auto", "lf", "octet-counting"):
            raise ValueError(f"framing: {framing!r} must be auto, lf or octet-counting")
        if scheme == "tls" and ssl_context is None:
            if not certfile:
                raise ValueError("tls: give certfile (and keyfile) or ssl_context")
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(certfile, keyfile)
            if client_ca:
                ssl_context.load_verify_locations(client_ca)
                ssl_context.verify_mode = ssl.CERT_REQUIRED
        self.scheme: Scheme = scheme
        self.host = host
        self.framing: ReceiverFraming = framing
        self.ssl_context = ssl_context
        self.parse = parse
        self.max_frame = max_frame
        self.handshake_timeout = handshake_timeout
        self._requested_port = port
        self._cond = threading.Condition()
        self._records: list[Received] = []
        self._problems: list[str] = []
        self._connections = 0
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._sock: socket.socket | None = None
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self.port = 0

    # --- life cycle -------------------------------------------------------------------------------

    def start(self) -> SyslogReceiver:
        """Bind and start the threads; returns self."""
        if self._sock is not None:
            return self
        family = socket.getaddrinfo(self.host, self._requested_port)[0][0]
        if self.scheme == "udp":
            sock = socket.socket(family, socket.SOCK_DGRAM)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind((self.host, self._requested_port))
            target: Callable[[socket.socket], None] = self._serve_udp
        else:
            # create_server sets SO_REUSEADDR, so a new receiver can take the port of a closed one.
            sock = socket.create_server((self.host, self._requested_port), family=family)
            target = self._accept
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._spawn(target, sock)
        return self

    def close(self) -> None:
        """Stop listening, drop every connection (unread data is lost, as in a crash), join threads."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._sock is not None and self.scheme != "udp":
            # Stop listening first, as a crash would: a client reconnecting now is refused instead of
            # landing in the backlog of a socket about to close.
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        with self._cond:
            threads = list(self._threads)
        if threads:
            threads[0].join(10)  # the accept (or UDP) thread: no connection is added after this
        with self._cond:
            conns = list(self._open)
            threads = list(self._threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)
        for thread in threads:
            thread.join(10)
        if self._sock is not None:
            self._sock.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> SyslogReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SyslogReceiver {self.url} {len(self._records)} messages>"

    @property
    def url(self) -> str:
        """``scheme://host:port``, ready for ``siemfmt.transport.connect``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    # --- what arrived -----------------------------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        """Every message so far, in arrival order."""
        with self._cond:
            return list(self._records)

    @property
    def raw(self) -> list[bytes]:
        """The bytes of every message, without framing."""
        return [r.raw for r in self.received]

    @property
    def lines(self) -> list[str]:
        """Every message as text."""
        return [r.line for r in self.received]

    @property
    def messages(self) -> list[Message]:
        """The messages ``siemfmt.parse`` accepted (see ``errors`` for the others)."""
        return [r.message for r in self.received if r.message is not None]

    @property
    def errors(self) -> list[tuple[str, Exception]]:
        """``(line, error)`` for each message ``siemfmt.parse`` refused."""
        return [(r.line, r.error) for r in self.received if r.error is not None]

    @property
    def problems(self) -> list[str]:
        """Framing errors, TLS handshake failures and incomplete frames at the end of a stream."""
        with self._cond:
            return list(self._problems)

    @property
    def connections(self) -> int:
        """How many TCP/TLS connections were accepted."""
        with self._cond:
            return self._connections

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Received]:
        """Wait until at least ``n`` messages arrived; return them all, or raise TimeoutError."""
        return self.wait_until(lambda got: len(got) >= n, timeout, f"{n} messages")

    def wait_until(
        self, predicate: Callable[[list[Received]], bool], timeout: float = 5.0, what: str = "the condition"
    ) -> list[Received]:
        """Wait until ``predicate(messages so far)`` holds; return the messages, or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self._records):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{self.url}: no {what} within {timeout} s ({len(self._records)} messages arrived)"
                        + (f"; problems: {self._problems}" if self._problems else "")
                    )
                self._cond.wait(remaining)
            return list(self._records)

    def wait_for_problem(self, timeout: float = 5.0) -> str:
        """Wait until a problem is recorded (a refused handshake, say) and return the first one."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._problems:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.url}: no problem recorded within {timeout} s")
                self._cond.wait(remaining)
            return self._problems[0]

    def clear(self) -> None:
        """Forget what arrived so far (messages and problems)."""
        with self._cond:
            self._records.clear()
            self._problems.clear()

    # --- threads ----------------------------------------------------------------------------------

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"siemfmt-receiver-{self.port}", daemon=True)
        with self._cond:
            self._threads.append(thread)
        thread.start()

    def _add(self, raw: bytes, peer: tuple[Any, ...], connection: int) -> None:
        message, error = _parse(raw) if self.parse else (None, None)
        record = Received(raw, peer, connection, time.monotonic(), message, error)
        with self._cond:
            self._records.append(record)
            self._cond.notify_all()

    def _problem(self, text: str) -> None:
        with self._cond:
            self._problems.append(text)
            self._cond.notify_all()

    def _selector(self, sock: socket.socket) -> selectors.BaseSelector:
        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        return sel

    def _serve_udp(self, sock: socket.socket) -> None:
        # RFC 5426 §3.1: one message per datagram, no framing.
        with self._selector(sock) as sel:
            while True:
                sel.select()
                if self._stopping.is_set():
                    return
                data, peer = sock.recvfrom(65_535)
                if data:
                    self._add(data, peer, 0)

    def _accept(self, listener: socket.socket) -> None:
        with self._selector(listener) as sel:
            while True:
                sel.select()
                if self._stopping.is_set():
                    return
                try:
                    conn, peer = listener.accept()
                except OSError:
                    continue
                with self._cond:
                    self._connections += 1
                    number = self._connections
                    self._open.add(conn)
                self._spawn(self._serve, conn, peer, number)

    def _serve(self, conn: socket.socket, peer: tuple[Any, ...], number: int) -> None:
        stream = conn
        try:
            if self.ssl_context is not None:
                conn.settimeout(self.handshake_timeout)
                stream = self.ssl_context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
                with self._cond:
                    self._open.add(stream)  # before the handshake, so close() can interrupt it
                try:
                    stream.do_handshake()
                except (OSError, ValueError) as exc:
                    if not self._stopping.is_set():
                        self._problem(f"connection {number}: TLS handshake failed: {exc}")
                    return
            self._read(stream, peer, number)
        finally:
            with self._cond:
                self._open.discard(conn)
                self._open.discard(stream)
            stream.close()
            conn.close()

    def _read(self, stream: socket.socket, peer: tuple[Any, ...], number: int) -> None:
        decoder: LFDecoder | OctetCountingDecoder | None = None
        stream.settimeout(None)  # close() unblocks a read with shutdown()
        with self._selector(stream) as sel:
            while True:
                if not (isinstance(stream, ssl.SSLSocket) and stream.pending()):
                    sel.select()
                if self._stopping.is_set():
                    return
                try:
                    data = stream.recv(65_536)
                except (OSError, ValueError) as exc:
                    self._problem(f"connection {number}: read failed: {exc}")
                    return
                if not data:
                    break
                if decoder is None:
                    framing = self.framing
                    if framing == "auto":
                        framing = "octet-counting" if data[:1].isdigit() else "lf"
                    decoder = OctetCountingDecoder(self.max_frame) if framing == "octet-counting" else LFDecoder()
                try:
                    frames = decoder.feed(data)
                except ValueError as exc:
                    self._problem(f"connection {number}: bad framing: {exc}")
                    return
                for frame in frames:
                    self._add(frame, peer, number)
        if decoder is not None and decoder.pending:
            self._problem(f"connection {number}: incomplete frame of {decoder.pending} bytes at end of stream")
        if isinstance(stream, ssl.SSLSocket):
            # RFC 5425 §4.4: answer the client's close_notify.
            with contextlib.suppress(OSError, ValueError):
                stream.unwrap()


class ReceiverFactory(Protocol):
    """``make(scheme="udp", **options) -> SyslogReceiver`` (started; closed by the fixture)."""

    def __call__(self, scheme: Scheme = "udp", **options: Any) -> SyslogReceiver: ...


@contextlib.contextmanager
def receivers() -> Iterator[ReceiverFactory]:
    """A factory of started receivers, all closed when the ``with`` block ends."""
    made: list[SyslogReceiver] = []

    def make(scheme: Scheme = "udp", **options: Any) -> SyslogReceiver:
        receiver = SyslogReceiver(scheme, **options).start()
        made.append(receiver)
        return receiver

    try:
        yield make
    finally:
        for receiver in made:
            receiver.close()


if pytest is not None:

    @pytest.fixture
    def syslog_receiver() -> Iterator[ReceiverFactory]:
        """Factory fixture: ``syslog_receiver("tcp", framing="lf")`` gives a started receiver."""
        with receivers() as make:
            yield make
