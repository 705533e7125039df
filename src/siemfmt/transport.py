"""Deliver syslog lines over UDP (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425).

``connect(url, **options)`` returns a sender with ``send``, ``send_many``, ``flush``, ``close`` and
``stats``. The transport knows nothing about alerts: it moves ``str`` (sent as UTF-8) or ``bytes``.

* UDP sends one datagram per message, synchronously, from the calling thread.
* TCP and TLS queue frames; one background writer thread connects lazily, joins queued frames into
  few writes, and reconnects with exponential backoff after a failure, writing again every frame the
  operating system did not accept. Frames the kernel accepted before a reset can still be lost: plain
  syslog over TCP has no acknowledgement (see ``docs/transport.md`` for the measured bound).

Only the standard library is used: ``socket``, ``ssl``, ``threading``, ``logging``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import random
import select
import socket
import ssl
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from siemfmt.errors import SiemfmtError
from siemfmt.syslog import frame_lf, frame_octet_counting

__all__ = [
    "DEFAULT_PORTS",
    "MessageError",
    "QueueFullError",
    "Sender",
    "TCPSender",
    "TLSSender",
    "TLSVerificationError",
    "TransportError",
    "TransportStats",
    "UDPSender",
    "connect",
    "truncate_utf8",
]

log = logging.getLogger("siemfmt.transport")

Framing = Literal["lf", "octet-counting"]
OnOversize = Literal["truncate", "error", "send"]
OnFull = Literal["block", "drop-oldest", "error"]
Payload = str | bytes

# RFC 5426 §3.3 (UDP 514), RFC 5425 §4.1 (TLS 6514); RFC 6587 assigns none, 514 is the custom.
DEFAULT_PORTS = {"udp": 514, "tcp": 514, "tls": 6514}
# RFC 5426 §3.2: receivers SHOULD accept 2048 octets.
UDP_DEFAULT_MAX_SIZE = 2048
# RFC 768 + IPv4/IPv6 headers: the largest UDP payload Linux sends (65,535 - 8 - 20 / - 8).
UDP_MAX_PAYLOAD = {socket.AF_INET: 65_507, socket.AF_INET6: 65_527}


class TransportError(SiemfmtError):
    """The sender cannot deliver: it is closed, failed for good, or the network refused a datagram."""


class MessageError(TransportError, ValueError):
    """One message cannot be sent as given (empty, LF under LF framing, too large, not UTF-8)."""


class QueueFullError(TransportError):
    """The send queue is full and ``on_full`` is ``error`` (or ``block`` ran out of ``block_timeout``)."""


class TLSVerificationError(TransportError):
    """The server's certificate or host name failed verification; the sender stops for good."""


@dataclass(frozen=True, slots=True)
class TransportStats:
    """A snapshot of a sender's counters.

    ``sent``: messages handed to the operating system; ``bytes``: bytes written, framing included;
    ``dropped``: messages discarded (queue full with ``drop-oldest``, or left over at close);
    ``truncated``: messages cut to ``max_size``; ``reconnects``: connections made after a lost one;
    ``failures``: failed connects, writes and datagrams; ``queued``: messages waiting now.
    """

    sent: int = 0
    bytes: int = 0
    dropped: int = 0
    truncated: int = 0
    reconnects: int = 0
    failures: int = 0
    queued: int = 0


def truncate_utf8(data: bytes, limit: int) -> bytes:
    """The longest prefix of ``data`` of at most ``limit`` bytes that ends on a UTF-8 character boundary."""
    if len(data) <= limit:
        return data
    cut = limit
    # A byte 0b10xxxxxx continues a character (RFC 3629 §3): never cut just before one.
    while cut > 0 and data[cut] & 0xC0 == 0x80:
        cut -= 1
    return data[:cut]


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}: {value!r} must be one of {', '.join(choices)}")


def _check_positive(name: str, value: float | None, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{name}: {value!r} must be a number above 0")


# --- the common part --------------------------------------------------------------------------------

_live: weakref.WeakSet[Sender] = weakref.WeakSet()


@atexit.register
def _close_all_at_exit() -> None:
    """Give every open sender ``exit_timeout`` seconds to write what it holds when the program ends."""
    for sender in list(_live):
        with contextlib.suppress(Exception):
            sender.close(sender.exit_timeout)


class Sender:
    """What every sender offers: ``send``, ``send_many``, ``flush``, ``close``, ``stats``, ``with``."""

    scheme: str = ""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        max_size: int | None,
        on_oversize: OnOversize,
        exit_timeout: float = 5.0,
    ) -> None:
        if not host:
            raise ValueError("host: must not be empty")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"port: {port!r} must be 1..65535")
        _check_positive("max_size", max_size, allow_none=True)
        _check_choice("on_oversize", on_oversize, ("truncate", "error", "send"))
        self.host = host
        self.port = port
        self.max_size = max_size
        self.on_oversize: OnOversize = on_oversize
        self.exit_timeout = exit_timeout
        self._lock = threading.Lock()
        self._closed = False
        self._sent = self._bytes = self._dropped = self._truncated = 0
        self._reconnects = self._failures = 0
        _live.add(self)

    @property
    def url(self) -> str:
        """``scheme://host:port`` with IPv6 literals in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}{' closed' if self._closed else ''}>"

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stats(self) -> TransportStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return TransportStats(
                self._sent,
                self._bytes,
                self._dropped,
                self._truncated,
                self._reconnects,
                self._failures,
                self._queued_locked(),
            )

    def _queued_locked(self) -> int:
        return 0

    def _encode(self, message: Payload) -> bytes:
        """UTF-8 bytes of one message after the size rule; raises MessageError for what cannot be sent."""
        if isinstance(message, str):
            try:
                data = message.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise MessageError(f"message is not encodable as UTF-8: {exc}") from exc
        elif isinstance(message, (bytes, bytearray, memoryview)):
            data = bytes(message)
        else:
            raise TypeError(f"message: expected str or bytes, got {type(message).__name__}")
        if not data:
            # RFC 6587 §3.4.1: MSG-LEN starts with NONZERO-DIGIT; RFC 5426 §3.1: a datagram holds a message.
            raise MessageError("message is empty")
        if self.max_size is not None and len(data) > self.max_size:
            if self.on_oversize == "error":
                raise MessageError(f"message of {len(data)} bytes exceeds max_size {self.max_size}")
            if self.on_oversize == "truncate":
                # RFC 5426 §3.2: a message may be truncated to what the receiver accepts.
                data = truncate_utf8(data, self.max_size)
                if not data:
                    raise MessageError(f"max_size {self.max_size} leaves nothing of the message")
                with self._lock:
                    self._truncated += 1
        return data

    def open(self, timeout: float | None = None) -> None:
        """Get ready now (resolve, connect, handshake) and raise the error instead of retrying later."""
        raise NotImplementedError

    def send(self, message: Payload) -> None:
        """Send (UDP) or queue (TCP, TLS) one message."""
        raise NotImplementedError

    def send_many(self, messages: Iterable[Payload]) -> None:
        """Send or queue several messages, in order; all are checked before any is queued."""
        raise NotImplementedError

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued message is written; False if ``timeout`` seconds pass first."""
        raise NotImplementedError

    def close(self, timeout: float | None = 5.0) -> None:
        """Flush for up to ``timeout`` seconds, then release the socket; what is left is dropped."""
        raise NotImplementedError

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError(f"{self.url}: sender is closed")


# --- UDP, RFC 5426 ----------------------------------------------------------------------------------


class UDPSender(Sender):
    """One message per datagram (RFC 5426 §3.1), sent from the calling thread.

    ``max_size`` (default 2048, RFC 5426 §3.2) with ``on_oversize``: ``truncate`` (at a UTF-8 character
    boundary), ``error`` (raise MessageError) or ``send`` (as is, up to the 65,507-byte IPv4 limit).
    Network errors raise TransportError. UDP has no acknowledgement (RFC 5426 §3.4): a datagram
    nobody receives is gone without an error.
    """

    scheme = "udp"

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORTS["udp"],
        *,
        max_size: int = UDP_DEFAULT_MAX_SIZE,
        on_oversize: OnOversize = "truncate",
        write_timeout: float = 10.0,
        exit_timeout: float = 5.0,
    ) -> None:
        super().__init__(host, port, max_size=max_size, on_oversize=on_oversize, exit_timeout=exit_timeout)
        _check_positive("write_timeout", write_timeout)
        self.write_timeout = write_timeout
        self._sock: socket.socket | None = None
        self._addr: tuple[Any, ...] = ()

    def open(self, timeout: float | None = None) -> None:
        """Resolve the host and make the socket now (UDP has no connection to check)."""
        self._check_open()
        self._socket()

    def _socket(self) -> tuple[socket.socket, tuple[Any, ...]]:
        with self._lock:
            if self._sock is None:
                try:
                    infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
                except OSError as exc:
                    self._failures += 1
                    raise TransportError(f"{self.url}: cannot resolve host: {exc}") from exc
                family, kind, proto, _, addr = infos[0]
                sock = socket.socket(family, kind, proto)
                sock.settimeout(self.write_timeout)
                self._sock, self._addr = sock, addr
                log.info("%s: sending datagrams to %s", self.url, addr[0])
            return self._sock, self._addr

    def _sendto(self, data: bytes) -> None:
        sock, addr = self._socket()
        if len(data) > UDP_MAX_PAYLOAD[sock.family]:
            with self._lock:
                self._failures += 1
            raise MessageError(
                f"datagram of {len(data)} bytes exceeds the UDP limit of {UDP_MAX_PAYLOAD[sock.family]}"
            )
        try:
            sock.sendto(data, addr)
        except OSError as exc:
            with self._lock:
                self._failures += 1
            raise TransportError(f"{self.url}: datagram not sent: {exc}") from exc
        with self._lock:
            self._sent += 1
            self._bytes += len(data)

    def send(self, message: Payload) -> None:
        """Send one message as one datagram, no trailer (RFC 5426 §3.1)."""
        self._check_open()
        self._sendto(self._encode(message))

    def send_many(self, messages: Iterable[Payload]) -> None:
        """Send several messages, one datagram each, in order; all are checked first."""
        self._check_open()
        for data in [self._encode(m) for m in messages]:
            self._sendto(data)

    def flush(self, timeout: float | None = None) -> bool:
        """Nothing is queued with UDP: always True."""
        return True

    def close(self, timeout: float | None = 5.0) -> None:
        """Release the socket; closing twice is fine."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        _live.discard(self)
        log.info("%s: closed", self.url)


# --- TCP, RFC 6587 ----------------------------------------------------------------------------------


def _peer_closed(sock: socket.socket, timeout: float) -> bool:
    """True if the peer has closed or reset the connection, seen without blocking and without writing.

    Syslog receivers never talk back, so a readable socket means EOF, a reset or TLS housekeeping
    (TLS 1.3 session tickets), which a non-blocking read consumes.
    """
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        readable = True
    elif hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        readable = bool(poller.poll(0))
    else:  # pragma: no cover - Windows
        readable = bool(select.select([sock], [], [], 0)[0])
    if not readable:
        return False
    sock.setblocking(False)
    try:
        while True:
            if not sock.recv(4096):
                return True
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return False
    except OSError:
        return True
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)


class TCPSender(Sender):
    """Syslog over TCP (RFC 6587) through a bounded queue and one writer thread.

    ``framing``: ``lf`` (RFC 6587 §3.4.2, default; a message holding an LF is refused) or
    ``octet-counting`` (RFC 6587 §3.4.1). See ``connect`` for every option.
    """

    scheme = "tcp"

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORTS["tcp"],
        *,
        framing: Framing = "lf",
        max_size: int | None = None,
        on_oversize: OnOversize = "truncate",
        max_queue: int = 10_000,
        on_full: OnFull = "block",
        block_timeout: float | None = None,
        connect_timeout: float = 10.0,
        write_timeout: float = 10.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_batch_bytes: int = 65_536,
        keepalive: bool = True,
        keepalive_idle: int = 60,
        keepalive_interval: int = 10,
        keepalive_count: int = 5,
        exit_timeout: float = 5.0,
    ) -> None:
        super().__init__(host, port, max_size=max_size, on_oversize=on_oversize, exit_timeout=exit_timeout)
        _check_choice("framing", framing, ("lf", "octet-counting"))
        _check_choice("on_full", on_full, ("block", "drop-oldest", "error"))
        for name, value in (
            ("max_queue", max_queue),
            ("connect_timeout", connect_timeout),
            ("write_timeout", write_timeout),
            ("backoff_base", backoff_base),
            ("backoff_cap", backoff_cap),
            ("max_batch_bytes", max_batch_bytes),
            ("keepalive_idle", keepalive_idle),
            ("keepalive_interval", keepalive_interval),
            ("keepalive_count", keepalive_count),
        ):
            _check_positive(name, value)
        _check_positive("block_timeout", block_timeout, allow_none=True)
        self.framing: Framing = framing
        self.max_queue = max_queue
        self.on_full: OnFull = on_full
        self.block_timeout = block_timeout
        self.connect_timeout = connect_timeout
        self.write_timeout = write_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_batch_bytes = max_batch_bytes
        self.keepalive = keepalive
        self.keepalive_idle = keepalive_idle
        self.keepalive_interval = keepalive_interval
        self.keepalive_count = keepalive_count
        self._frame: Callable[[bytes], bytes] = frame_lf if framing == "lf" else frame_octet_counting
        self._cond = threading.Condition(self._lock)
        self._pending: deque[bytes] = deque()
        self._batch: list[bytes] = []  # frames the writer took and has not written in full
        self._stop = threading.Event()
        self._connect_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._fatal: TransportError | None = None
        self._ever_connected = False
        self._backoff_step = 0  # failed attempts since the last write that went through
        self._wrote_on_connection = False
        self._dropping = False
        self.last_error: BaseException | None = None

    # --- public -----------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``idle``, ``connected``, ``disconnected``, ``failed`` or ``closed``."""
        if self._closed:
            return "closed"
        if self._fatal is not None:
            return "failed"
        if self._sock is not None:
            return "connected"
        return "disconnected" if self._ever_connected or self._failures else "idle"

    def open(self, timeout: float | None = None) -> None:
        """Connect (and for TLS, handshake) now; raise TransportError on failure instead of retrying.

        ``timeout`` overrides ``connect_timeout`` for this attempt. Messages sent later use this connection.
        """
        self._check_usable()
        with self._connect_lock:
            if self._sock is not None:
                return
            try:
                sock = self._connect(self.connect_timeout if timeout is None else timeout)
            except TLSVerificationError:
                raise
            except OSError as exc:
                raise TransportError(f"{self.url}: cannot connect: {exc}") from exc
            self._install(sock)
        self._start_writer()

    def send(self, message: Payload) -> None:
        """Frame one message and queue it; raises MessageError for a message that cannot be framed."""
        self._check_usable()
        self._enqueue([self._frame_one(message)])

    def send_many(self, messages: Iterable[Payload]) -> None:
        """Frame several messages (all checked first) and queue them in order."""
        self._check_usable()
        self._enqueue([self._frame_one(m) for m in messages])

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued message has been written to the socket.

        True when nothing is left; False when ``timeout`` passed first or the sender is closed with
        messages left. Raises TLSVerificationError if the sender failed for good.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending or self._batch:
                if self._fatal is not None:
                    raise self._fatal
                if self._thread is None or not self._thread.is_alive():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout: float | None = 5.0) -> None:
        """Flush for up to ``timeout`` seconds, stop the writer, close the socket (TLS: close_notify).

        Messages still queued after that are dropped, counted in ``stats.dropped`` and logged.
        """
        with self._lock:
            if self._closed:
                return
        with contextlib.suppress(TransportError):
            self.flush(timeout)
        with self._cond:
            self._closed = True
            self._stop.set()
            self._cond.notify_all()
            sock = self._sock
        if sock is not None and (self._pending or self._batch):
            # Unblock a writer stuck on a receiver that does not read; the kernel then refuses any
            # write. socket.socket.shutdown, not SSLSocket's, keeps the TLS layer in place.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(max(self.write_timeout, self.connect_timeout) + 1.0)
        with self._cond:
            left = len(self._pending) + len(self._batch)
            self._dropped += left
            self._pending.clear()
            self._batch = []
            self._cond.notify_all()
        self._disconnect(graceful=True)
        _live.discard(self)
        if left:
            log.warning("%s: closed with %d unsent messages dropped", self.url, left)
        else:
            log.info("%s: closed", self.url)

    # --- queueing ---------------------------------------------------------------------------------

    def _check_usable(self) -> None:
        self._check_open()
        if self._fatal is not None:
            raise self._fatal

    def _frame_one(self, message: Payload) -> bytes:
        data = self._encode(message)
        try:
            return self._frame(data)
        except ValueError as exc:  # frame_lf: an LF would split the message (RFC 6587 §3.4.2)
            raise MessageError(f"{exc}; use framing='octet-counting' or escape it") from exc

    def _queued_locked(self) -> int:
        return len(self._pending) + len(self._batch)

    def _enqueue(self, frames: list[bytes]) -> None:
        if not frames:
            return
        self._start_writer()
        deadline = None if self.block_timeout is None else time.monotonic() + self.block_timeout
        with self._cond:
            for frame in frames:
                while len(self._pending) >= self.max_queue:
                    if self.on_full == "error":
                        raise QueueFullError(f"{self.url}: queue full ({self.max_queue} messages)")
                    if self.on_full == "drop-oldest":
                        self._pending.popleft()
                        self._dropped += 1
                        if not self._dropping:
                            self._dropping = True
                            log.warning("%s: queue full (%d messages), dropping the oldest", self.url, self.max_queue)
                        break
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise QueueFullError(
                            f"{self.url}: queue full ({self.max_queue} messages) for {self.block_timeout} s"
                        )
                    self._cond.wait(remaining)
                    self._check_usable()
                self._pending.append(frame)
            self._cond.notify_all()

    def _start_writer(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name=f"siemfmt-{self.url}", daemon=True)
                self._thread.start()

    # --- the writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with self._cond:
                    while not self._batch and not self._pending and not self._stop.is_set():
                        self._cond.wait()
                    if self._stop.is_set():
                        return
                    if not self._batch:
                        self._take_batch()
                sock = self._connected()
                if sock is not None:
                    self._write(sock)
                elif self._fatal is not None:
                    return
        except BaseException as exc:  # pragma: no cover - a bug; keep it visible
            log.exception("%s: writer thread crashed", self.url)
            self.last_error = exc
            raise
        finally:
            with self._cond:
                self._cond.notify_all()

    def _take_batch(self) -> None:
        """Move frames from the queue into the batch, up to ``max_batch_bytes`` (one frame at least)."""
        size = 0
        batch: list[bytes] = []
        while self._pending and (not batch or size + len(self._pending[0]) <= self.max_batch_bytes):
            frame = self._pending.popleft()
            batch.append(frame)
            size += len(frame)
        self._batch = batch
        if not self._pending and self._dropping:
            self._dropping = False
        self._cond.notify_all()

    def _delay(self) -> float:
        """0 for the first try, then ``backoff_base`` doubling to ``backoff_cap``, minus up to 25% jitter."""
        if self._backoff_step == 0:
            return 0.0
        delay = min(self.backoff_cap, self.backoff_base * 2.0 ** (self._backoff_step - 1))
        return delay * random.uniform(0.75, 1.0)

    def _connected(self) -> socket.socket | None:
        """The current socket, or a new connection after the backoff delay; None if none was made."""
        if self._sock is not None:
            return self._sock
        delay = self._delay()
        if delay and self._stop.wait(delay):
            return None
        with self._connect_lock:
            if self._sock is not None:
                return self._sock
            try:
                sock = self._connect(self.connect_timeout)
            except TLSVerificationError:
                return None
            except OSError as exc:
                self._backoff_step += 1
                with self._lock:
                    self._failures += 1
                self.last_error = exc
                log.warning(
                    "%s: cannot connect: %s; retrying in about %.1f s",
                    self.url,
                    exc,
                    min(self.backoff_cap, self.backoff_base * 2.0 ** (self._backoff_step - 1)),
                )
                return None
            return self._install(sock)

    def _install(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sock = sock
            if self._ever_connected:
                self._reconnects += 1
            again = self._ever_connected
            self._ever_connected = True
        self._wrote_on_connection = False
        log.info("%s: %s", self.url, "reconnected" if again else "connected")
        return sock

    def _connect(self, timeout: float) -> socket.socket:
        """A new connected socket with keepalive; raises OSError."""
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        try:
            self._tune(sock)
            sock = self._wrap(sock, timeout)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(self.write_timeout)
        return sock

    def _tune(self, sock: socket.socket) -> None:
        """TCP_NODELAY (the writer batches itself) and keepalive, to notice a silent dead peer."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self.keepalive:
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (
            ("TCP_KEEPIDLE", self.keepalive_idle),
            ("TCP_KEEPINTVL", self.keepalive_interval),
            ("TCP_KEEPCNT", self.keepalive_count),
        ):
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)

    def _wrap(self, sock: socket.socket, timeout: float) -> socket.socket:
        """Plain TCP: the socket itself. TLS overrides this with the handshake."""
        return sock

    def _write(self, sock: socket.socket) -> None:
        """Write the batch; on failure keep the frames not written in full and drop the connection."""
        frames = self._batch
        data = b"".join(frames)
        view = memoryview(data)
        done = 0
        try:
            while done < len(data):
                if _peer_closed(sock, self.write_timeout):
                    raise ConnectionResetError("the receiver closed the connection")
                done += sock.send(view[done:])
        except OSError as exc:
            self._lost(sock, frames, done, exc)
            return
        finally:
            view.release()
        with self._cond:
            self._batch = []
            self._sent += len(frames)
            self._bytes += len(data)
            self._cond.notify_all()
        self._backoff_step = 0
        self._wrote_on_connection = True

    def _lost(self, sock: socket.socket, frames: list[bytes], done: int, exc: OSError) -> None:
        """Account for a broken write: frames written in full count as sent, the rest stay queued."""
        count = offset = 0
        for frame in frames:
            if offset + len(frame) > done:
                break
            offset += len(frame)
            count += 1
        partial = done - offset
        with self._cond:
            self._batch = frames[count:]
            self._sent += count
            self._bytes += done
            self._failures += 1
            self._cond.notify_all()
        if not self._wrote_on_connection and count == 0:
            self._backoff_step += 1  # a receiver that accepts and hangs up must not make us spin
        self._wrote_on_connection = self._wrote_on_connection or count > 0
        self.last_error = exc
        log.warning(
            "%s: connection lost: %s; %d messages kept to write again%s",
            self.url,
            exc,
            len(frames) - count + self._queued_pending(),
            f" (the first had {partial} bytes written)" if partial else "",
        )
        self._disconnect(graceful=False)

    def _queued_pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def _disconnect(self, graceful: bool) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is None:
            return
        if graceful and isinstance(sock, ssl.SSLSocket):
            # RFC 5425 §4.4: close with close_notify. Some servers close without answering it.
            with contextlib.suppress(OSError, ValueError):
                sock.settimeout(1.0)
                sock.unwrap()
        sock.close()


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside this module (for ``warnings.warn``)."""
    level, frame = 1, sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level


# --- TLS, RFC 5425 ----------------------------------------------------------------------------------


def _fatal_tls(exc: ssl.SSLError) -> bool:
    """Certificate and protocol failures will not heal by retrying; EOF and resets can."""
    return not isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError))


class TLSSender(TCPSender):
    """Syslog over TLS (RFC 5425): octet counting by default, server certificate and name verified.

    ``ca_file``/``ca_path`` (default: the system store), ``cert_file``/``key_file``/``key_password`` for a
    client certificate, ``server_hostname`` (default: the host), ``verify=False`` only when asked (with a
    warning), or a ready ``ssl_context``. TLS 1.2 is the minimum. A certificate the client cannot verify
    stops the sender: ``open``, ``send`` and ``flush`` raise TLSVerificationError from then on.
    """

    scheme = "tls"

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORTS["tls"],
        *,
        framing: Framing = "octet-counting",
        ca_file: str | None = None,
        ca_path: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        key_password: str | None = None,
        verify: bool = True,
        server_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        **options: Any,
    ) -> None:
        # RFC 5425 §4.3: octet counting is the framing of syslog over TLS.
        super().__init__(host, port, framing=framing, **options)
        self.server_hostname = server_hostname or host
        if ssl_context is None:
            ssl_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file, capath=ca_path)
            if cert_file:
                ssl_context.load_cert_chain(cert_file, key_file, key_password)
            if not verify:
                ssl_context.check_hostname = False
                ssl_context.verify_mode = ssl.CERT_NONE
        elif cert_file or ca_file or ca_path:
            raise ValueError("ssl_context: give either a context or ca_file/ca_path/cert_file, not both")
        # RFC 5425 §4.2 (updated by RFC 9662): TLS 1.2 at least.
        ssl_context.minimum_version = max(ssl_context.minimum_version, ssl.TLSVersion.TLSv1_2)
        if ssl_context.verify_mode == ssl.CERT_NONE:
            text = f"{self.url}: TLS certificate verification is off; anyone on the path can read the messages"
            warnings.warn(text, stacklevel=_caller_level())
            log.warning("%s", text)
        self.ssl_context = ssl_context

    def _wrap(self, sock: socket.socket, timeout: float) -> socket.socket:
        """Handshake within ``timeout``; nothing is written before it succeeds."""
        sock.settimeout(timeout)
        try:
            return self.ssl_context.wrap_socket(sock, server_hostname=self.server_hostname)
        except ssl.SSLError as exc:
            if not _fatal_tls(exc):
                raise
            error = TLSVerificationError(f"{self.url}: TLS handshake failed: {exc}")
            error.__cause__ = exc
            with self._cond:
                self._fatal = error
                self._failures += 1
                self._cond.notify_all()
            self.last_error = exc
            log.error("%s", error)
            raise error from exc


# --- connect ----------------------------------------------------------------------------------------

_BOOL = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
_INT_OPTIONS = {
    "max_size",
    "max_queue",
    "max_batch_bytes",
    "keepalive_idle",
    "keepalive_interval",
    "keepalive_count",
}
_FLOAT_OPTIONS = {
    "block_timeout",
    "connect_timeout",
    "write_timeout",
    "backoff_base",
    "backoff_cap",
    "exit_timeout",
}
_BOOL_OPTIONS = {"keepalive", "verify"}


def _coerce(name: str, value: str) -> Any:
    """A URL query value as the option's type."""
    try:
        if name in _INT_OPTIONS:
            return int(value)
        if name in _FLOAT_OPTIONS:
            return float(value)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not a number") from None
    if name in _BOOL_OPTIONS:
        if value.lower() not in _BOOL:
            raise ValueError(f"{name}: {value!r} must be true or false")
        return _BOOL[value.lower()]
    return value


_CLASSES: dict[str, type[UDPSender] | type[TCPSender] | type[TLSSender]] = {
    "udp": UDPSender,
    "tcp": TCPSender,
    "tls": TLSSender,
}


def connect(url: str | None = None, /, **options: Any) -> UDPSender | TCPSender:
    """A sender for ``udp://host:port``, ``tcp://host:port`` or ``tls://host:port``.

    Hosts may be names, IPv4 or ``[IPv6]`` literals; the port defaults to 514 (UDP, TCP) or 6514
    (TLS). Options come as keywords or in the query string (``tcp://h:514?framing=octet-counting``);
    keywords win. Without a URL give ``scheme``, ``host`` and optionally ``port`` as keywords.

    Common: ``max_size``, ``on_oversize`` (``truncate``|``error``|``send``), ``write_timeout``,
    ``exit_timeout``. TCP/TLS: ``framing`` (``lf``|``octet-counting``), ``max_queue`` (10,000),
    ``on_full`` (``block``|``drop-oldest``|``error``), ``block_timeout``, ``connect_timeout``,
    ``backoff_base`` (0.5 s), ``backoff_cap`` (30 s), ``max_batch_bytes``, ``keepalive``,
    ``keepalive_idle``/``_interval``/``_count``. TLS: ``ca_file``, ``ca_path``, ``cert_file``,
    ``key_file``, ``key_password``, ``verify``, ``server_hostname``, ``ssl_context``.
    Nothing connects until the first message (or ``open()``).
    """
    if url is not None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _CLASSES:
            raise ValueError(f"url: {url!r} must start with udp://, tcp:// or tls://")
        if not parts.hostname:
            raise ValueError(f"url: {url!r} has no host")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"url: {url!r}: {exc}") from None
        merged: dict[str, Any] = {k: _coerce(k, v) for k, v in parse_qsl(parts.query, strict_parsing=False)}
        merged.update(options)
        for key in ("scheme", "host", "port"):
            if key in merged:
                raise TypeError(f"{key}: give it in the URL or as a keyword without a URL, not both")
        host = parts.hostname
        port = port or DEFAULT_PORTS[scheme]
    else:
        merged = dict(options)
        scheme = str(merged.pop("scheme", "")).lower()
        if scheme not in _CLASSES:
            raise ValueError(f"scheme: {scheme!r} must be udp, tcp or tls")
        if "host" not in merged:
            raise TypeError("connect() needs a URL or host=")
        host = str(merged.pop("host")).strip("[]")
        port = merged.pop("port", DEFAULT_PORTS[scheme])
    cls = _CLASSES[scheme]
    try:
        return cls(host, port, **merged)
    except TypeError as exc:
        raise TypeError(f"{scheme}: {exc}") from None
