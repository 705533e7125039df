"""What every sender shares: option types, errors, the stats snapshot, the size rule, ``Sender``."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
import socket
import ssl
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, TypeVar

from siemfmt.errors import SiemfmtError

log = logging.getLogger("siemfmt.transport")

Framing = Literal["lf", "octet-counting"]
OnOversize = Literal["truncate", "error", "send"]
OnFull = Literal["block", "drop-oldest", "error"]
Payload = str | bytes

# RFC 5426 §3.3 (UDP 514), RFC 5425 §4.1 (TLS 6514); RFC 6587 assigns none, 514 is the custom.
DEFAULT_PORTS = {"udp": 514, "tcp": 514, "tls": 6514}
# RFC 5426 §3.2: receivers SHOULD accept 2048 octets.
UDP_DEFAULT_MAX_SIZE = 2048
# RFC 768 + IPv4/IPv6 headers: the largest UDP payload Linux sends (65,535 - 8 - 20, and 65,535 - 8).
UDP_MAX_PAYLOAD = {socket.AF_INET: 65_507, socket.AF_INET6: 65_527}


class TransportError(SiemfmtError):
    """The sender cannot deliver: it is closed, failed for good, or the network refused a datagram."""


class MessageError(TransportError, ValueError):
    """One message cannot be sent as given (empty, LF under LF framing, too large, not UTF-8)."""


class QueueFullError(TransportError):
    """The send queue is full and ``on_full`` is ``error`` (or ``block`` ran out of ``block_timeout``)."""


class TLSHandshakeError(TransportError):
    """The TLS handshake failed for a reason retrying will not fix (an untrusted or expired certificate,
    a host name mismatch, no common protocol version); the sender stops for good."""


class InsecureTransportWarning(UserWarning):
    """TLS without certificate verification was asked for."""


@dataclass(frozen=True, slots=True)
class TransportStats:
    """A snapshot of a sender's counters.

    ``sent``: messages handed to the operating system; ``bytes``: bytes written, framing included;
    ``dropped``: messages discarded (queue full with ``drop-oldest``, or left over at close);
    ``truncated``: messages cut to ``max_size``; ``reconnects``: connections made after a lost one;
    ``failures``: failed connects, writes and datagrams; ``queued``: messages waiting now;
    ``writes``: socket write calls (fewer than ``sent`` when the TCP writer joins frames).
    """

    sent: int = 0
    bytes: int = 0
    dropped: int = 0
    truncated: int = 0
    reconnects: int = 0
    failures: int = 0
    queued: int = 0
    writes: int = 0


def truncate_utf8(data: bytes, limit: int) -> bytes:
    """The longest prefix of ``data`` of at most ``limit`` bytes that ends on a UTF-8 character boundary."""
    if len(data) <= limit:
        return data
    cut = limit
    # A byte 0b10xxxxxx continues a character (RFC 3629 §3): never cut just before one.
    while cut > 0 and data[cut] & 0xC0 == 0x80:
        cut -= 1
    return data[:cut]


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Raise ValueError naming the option unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}: {value!r} must be one of {', '.join(choices)}")


def check_positive(name: str, value: float | None, allow_none: bool = False) -> None:
    """Raise ValueError naming the option unless ``value`` is a number above 0 (or None if allowed)."""
    if value is None and allow_none:
        return
    if value is None or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{name}: {value!r} must be a number above 0")


def backoff_delay(step: int, base: float, cap: float) -> float:
    """The wait before attempt ``step`` + 1: ``base`` doubling to ``cap``, less 0-25% jitter."""
    # AWS Architecture Blog, "Exponential Backoff and Jitter" (2015): capped doubling, randomised.
    return min(cap, base * 2.0 ** (step - 1)) * random.uniform(0.75, 1.0)


def tune_socket(sock: socket.socket, keepalive: bool, idle: int, interval: int, count: int) -> None:
    """TCP_NODELAY (the writer batches by itself) and keepalive, to notice a silently dead peer."""
    # RFC 1122 §4.2.3.6 (keep-alives), §4.2.3.4 (Nagle); Linux tcp(7) TCP_KEEPIDLE/INTVL/CNT.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not keepalive:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", interval), ("TCP_KEEPCNT", count)):
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


def tls_fatal(exc: ssl.SSLError) -> bool:
    """Certificate and protocol failures will not heal by retrying; an EOF or a reset may."""
    # Python ssl docs: SSLEOFError/SSLZeroReturnError/SSLSyscallError are the transport's, not TLS's verdict.
    return not isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError))


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def caller_level() -> int:
    """The ``stacklevel`` of the first frame outside this package (for ``warnings.warn``)."""
    level, frame = 1, sys._getframe(1)
    while frame.f_back is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _PACKAGE_DIR:
        frame, level = frame.f_back, level + 1
    return level


def client_tls_context(
    url: str,
    *,
    ca_file: str | os.PathLike[str] | None,
    ca_path: str | os.PathLike[str] | None,
    cert_file: str | os.PathLike[str] | None,
    key_file: str | os.PathLike[str] | None,
    key_password: str | None,
    verify: bool,
    ssl_context: ssl.SSLContext | None,
) -> ssl.SSLContext:
    """The client TLS context of the TLS and RELP/TLS senders (warns when verification is off)."""
    if ssl_context is None:
        # RFC 5425 §5: the client authenticates the server by its certificate (and host name).
        ssl_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file, capath=ca_path)
        if cert_file:
            ssl_context.load_cert_chain(cert_file, key_file, key_password)
        if not verify:
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
    elif cert_file or ca_file or ca_path:
        raise ValueError("ssl_context: give either a context or ca_file/ca_path/cert_file, not both")
    # RFC 5425 §4.2 as updated by RFC 9662: TLS 1.2 at least.
    ssl_context.minimum_version = max(ssl_context.minimum_version, ssl.TLSVersion.TLSv1_2)
    if ssl_context.verify_mode == ssl.CERT_NONE:
        text = f"{url}: TLS certificate verification is off; anyone on the path can read the messages"
        warnings.warn(text, InsecureTransportWarning, stacklevel=caller_level())
        log.warning("%s", text)
    return ssl_context


live: weakref.WeakSet[Sender] = weakref.WeakSet()
_S = TypeVar("_S", bound="Sender")


@atexit.register
def _close_all_at_exit() -> None:
    """Give every open sender ``exit_timeout`` seconds to write what it holds when the program ends."""
    for sender in list(live):
        with contextlib.suppress(Exception):
            sender.close(sender.exit_timeout)


class Sender:
    """What every sender offers: ``open``, ``send``, ``send_many``, ``flush``, ``close``, ``stats``,
    ``state`` and ``with``. Safe to share between threads."""

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
        check_positive("max_size", max_size, allow_none=True)
        check_choice("on_oversize", on_oversize, ("truncate", "error", "send"))
        check_positive("exit_timeout", exit_timeout)
        self.host = host
        self.port = port
        self.max_size = max_size
        self.on_oversize: OnOversize = on_oversize
        self.exit_timeout = exit_timeout
        self.last_error: BaseException | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._sent = self._bytes = self._dropped = self._truncated = 0
        self._reconnects = self._failures = self._writes = 0
        live.add(self)

    @property
    def url(self) -> str:
        """``scheme://host:port`` with IPv6 literals in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} {self.state}>"

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stats(self) -> TransportStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return TransportStats(*self._counters_locked())

    def _counters_locked(self) -> tuple[int, int, int, int, int, int, int, int]:
        """The ``TransportStats`` fields, in order; call with the lock held."""
        return (
            self._sent,
            self._bytes,
            self._dropped,
            self._truncated,
            self._reconnects,
            self._failures,
            self._queued_locked(),
            self._writes,
        )

    def _queued_locked(self) -> int:
        return 0

    @property
    def state(self) -> str:
        """``idle`` or ``closed`` here; TCP and TLS add ``connected``, ``disconnected``, ``failed``."""
        return "closed" if self._closed else "idle"

    def _encode_fast(self, message: Payload) -> bytes:
        """``_encode`` with the common case first: a ``str`` and no size limit needs only ``encode()``;
        anything else (bytes, a limit, an empty or unencodable message) takes ``_encode``'s rules."""
        if type(message) is str and self.max_size is None:
            try:
                data = message.encode()
            except UnicodeEncodeError:
                return self._encode(message)  # raises MessageError
            return data or self._encode(message)  # empty: raises MessageError
        return self._encode(message)

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
                # RFC 5426 §3.1: a datagram holds one message, "complete or truncated".
                data = truncate_utf8(data, self.max_size)
                if not data:
                    raise MessageError(f"max_size {self.max_size} leaves nothing of the message")
                with self._lock:
                    self._truncated += 1
        return data

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError(f"{self.url}: sender is closed")

    def open(self, timeout: float | None = None) -> None:
        """Get ready now (resolve, connect, handshake) and raise the error instead of retrying later."""
        raise NotImplementedError

    def send(self, message: Payload) -> None:
        """Send (UDP) or queue (TCP, TLS) one message: ``str`` is sent as UTF-8, ``bytes`` as is."""
        raise NotImplementedError

    def send_many(self, messages: Iterable[Payload]) -> None:
        """Send or queue several messages, in order; all are checked before any is sent or queued."""
        raise NotImplementedError

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued message is written; False if ``timeout`` seconds pass first."""
        raise NotImplementedError

    def close(self, timeout: float | None = 5.0) -> None:
        """Flush for up to ``timeout`` seconds, then release the socket; what is left is dropped."""
        raise NotImplementedError


class StreamSender(Sender):
    """What the TCP, TLS and RELP senders share: the connection options, the state, flushing, and
    reconnecting after the backoff delay. Subclasses set the fields below and ``_connect_attempt``."""

    _attempt_text = "connect"  # the log's "cannot ..." for a failed attempt
    _final_errors: tuple[type[BaseException], ...] = (TLSHandshakeError,)  # the attempt already stopped the sender
    _retry_errors: tuple[type[BaseException], ...] = (OSError,)  # worth another attempt after the backoff
    _cond: threading.Condition
    _fatal: TransportError | None
    _sock: socket.socket | None
    _thread: threading.Thread | None
    _stop: threading.Event
    _connect_lock: threading.Lock
    _ever_connected: bool
    _backoff_step: int
    _retry_delay: float

    def _stream_options(
        self,
        first: tuple[tuple[str, int | float], ...] = (),
        *,
        max_queue: int,
        on_full: OnFull,
        block_timeout: float | None,
        connect_timeout: float,
        write_timeout: float,
        backoff_base: float,
        backoff_cap: float,
        max_batch_bytes: int,
        keepalive: bool,
        keepalive_idle: int,
        keepalive_interval: int,
        keepalive_count: int,
    ) -> None:
        """Check (``first`` before them) and keep the queue, connection and keepalive options."""
        for name, value in (
            *first,
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
            check_positive(name, value)
        check_positive("block_timeout", block_timeout, allow_none=True)
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

    @property
    def state(self) -> str:
        """``idle`` (never tried), ``connected``, ``disconnected`` (retrying), ``failed`` (for good), ``closed``."""
        if self._closed:
            return "closed"
        if self._fatal is not None:
            return "failed"
        if self._sock is not None:
            return "connected"
        return "disconnected" if self._ever_connected or self._failures else "idle"

    def _check_usable(self) -> None:
        self._check_open()
        if self._fatal is not None:
            raise self._fatal

    def _busy_locked(self) -> bool:
        """Whether messages are still to be written (TCP) or acknowledged (RELP); lock held."""
        raise NotImplementedError

    def _wait_done(self, timeout: float | None) -> bool:
        """``flush``: wait until not ``_busy_locked``; False on timeout, or at once when stopped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._busy_locked():
                if self._fatal is not None:
                    return False
                if self._thread is None or not self._thread.is_alive():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def _back_off(self) -> None:
        """After a failed attempt: wait ``backoff_base`` doubling to ``backoff_cap``, less 0-25% jitter."""
        self._backoff_step += 1
        self._retry_delay = backoff_delay(self._backoff_step, self.backoff_base, self.backoff_cap)

    def _tune(self, sock: socket.socket) -> None:
        tune_socket(sock, self.keepalive, self.keepalive_idle, self.keepalive_interval, self.keepalive_count)

    def _connect_attempt(self, timeout: float) -> socket.socket:
        """A new connection ready for messages (TCP: connected, TLS: handshaken, RELP: session open)."""
        raise NotImplementedError

    def _install(self, sock: socket.socket) -> socket.socket:
        raise NotImplementedError

    def _connected(self) -> socket.socket | None:
        """The current socket, or a new connection after the backoff delay; None if none was made."""
        if self._sock is not None:
            return self._sock
        if self._retry_delay and self._stop.wait(self._retry_delay):
            return None
        with self._connect_lock:
            if self._sock is not None:
                return self._sock
            try:
                sock = self._connect_attempt(self.connect_timeout)
            except self._final_errors:
                return None
            except self._retry_errors as exc:
                self._back_off()
                with self._lock:
                    self._failures += 1
                self.last_error = exc
                log.warning(
                    "%s: cannot %s: %s; retrying in %.2f s", self.url, self._attempt_text, exc, self._retry_delay
                )
                return None
            return self._install(sock)
