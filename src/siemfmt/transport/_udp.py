"""Syslog over UDP (RFC 5426): one message per datagram, sent from the calling thread."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterable
from typing import Any

from siemfmt.transport._base import (
    DEFAULT_PORTS,
    UDP_DEFAULT_MAX_SIZE,
    UDP_MAX_PAYLOAD,
    MessageError,
    OnOversize,
    Payload,
    Sender,
    TransportError,
    check_positive,
    live,
    log,
)


class UDPSender(Sender):
    """One message per datagram (RFC 5426 §3.1), sent synchronously from the calling thread.

    ``max_size`` (default 2048, RFC 5426 §3.2) with ``on_oversize``: ``truncate`` (at a UTF-8 character
    boundary), ``error`` (raise MessageError) or ``send`` (as is, up to the 65,507-byte IPv4 limit).
    Errors the network reports raise TransportError. UDP has no acknowledgement (RFC 5426 §3.4): a
    datagram nobody receives is gone without an error. A host name is resolved once, to its first
    address: give the address the receiver listens on (``localhost`` may resolve to ``::1``).
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
        check_positive("write_timeout", write_timeout)
        self.write_timeout = write_timeout
        self._sock: socket.socket | None = None
        self._addr: tuple[Any, ...] = ()
        self._limit = 0  # the largest datagram payload for the socket's family

    @property
    def state(self) -> str:
        """``idle`` (no socket yet), ``ready`` or ``closed``."""
        if self._closed:
            return "closed"
        return "idle" if self._sock is None else "ready"

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
                    self.last_error = exc
                    raise TransportError(f"{self.url}: cannot resolve host: {exc}") from exc
                family, kind, proto, _, addr = infos[0]
                sock = socket.socket(family, kind, proto)
                # Non-blocking: one system call per datagram (a socket with a timeout polls before each
                # send); ``_sendto`` waits up to ``write_timeout`` itself when the send buffer is full.
                sock.setblocking(False)
                self._limit = UDP_MAX_PAYLOAD[family]
                self._sock, self._addr = sock, addr
                log.info("%s: sending datagrams to %s", self.url, addr[0])
            return self._sock, self._addr

    def _sendto(self, data: bytes) -> None:
        sock, addr = self._sock, self._addr
        if sock is None:
            sock, addr = self._socket()
        if len(data) > self._limit:
            raise MessageError(f"datagram of {len(data)} bytes exceeds the UDP limit of {self._limit}")
        try:
            try:
                sock.sendto(data, addr)
            except BlockingIOError:  # the send buffer is full: wait for room, then once more
                if not select.select([], [sock], [], self.write_timeout)[1]:
                    raise TimeoutError(f"no room to send for {self.write_timeout:g} s") from None
                sock.sendto(data, addr)
        except OSError as exc:
            with self._lock:
                self._failures += 1
            self.last_error = exc
            raise TransportError(f"{self.url}: datagram not sent: {exc}") from exc
        with self._lock:
            self._sent += 1
            self._bytes += len(data)
            self._writes += 1

    def send(self, message: Payload) -> None:
        """Send one message as one datagram, no trailer (RFC 5426 §3.1)."""
        if self._closed:
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
        live.discard(self)
        log.info("%s: closed", self.url)
