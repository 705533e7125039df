"""What every sender shares: option types, errors, the stats snapshot, the size rule, ``Sender``."""

from __future__ import annotations

import atexit
import contextlib
import logging
import socket
import threading
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
            return TransportStats(
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
