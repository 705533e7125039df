"""Syslog over TLS (RFC 5425): the TCP sender with a verified TLS handshake before any byte."""

from __future__ import annotations

import os
import socket
import ssl
import sys
import warnings
from typing import Any

from siemfmt.transport._base import DEFAULT_PORTS, Framing, InsecureTransportWarning, TLSHandshakeError, log
from siemfmt.transport._tcp import TCPSender

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside this package (for ``warnings.warn``)."""
    level, frame = 1, sys._getframe(1)
    while frame.f_back is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _PACKAGE_DIR:
        frame, level = frame.f_back, level + 1
    return level


def _fatal(exc: ssl.SSLError) -> bool:
    """Certificate and protocol failures will not heal by retrying; an EOF or a reset may."""
    return not isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError))


class TLSSender(TCPSender):
    """Syslog over TLS (RFC 5425): octet counting by default, server certificate and name verified.

    ``ca_file``/``ca_path`` (default: the system store), ``cert_file``/``key_file``/``key_password`` for a
    client certificate, ``server_hostname`` (default: the host), ``verify=False`` only when asked (with an
    InsecureTransportWarning and a log warning), or a ready ``ssl_context`` (used as is, but never below
    TLS 1.2). A handshake failure that retrying cannot fix (an untrusted certificate, say) stops the
    sender: it is logged as an error, ``open`` and ``send`` raise TLSHandshakeError from then on, and
    ``flush`` returns False. No byte of a message is written before a handshake succeeded.
    """

    scheme = "tls"

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORTS["tls"],
        *,
        framing: Framing = "octet-counting",
        ca_file: str | os.PathLike[str] | None = None,
        ca_path: str | os.PathLike[str] | None = None,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        key_password: str | None = None,
        verify: bool = True,
        server_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        **options: Any,
    ) -> None:
        # RFC 5425 §4.3: octet counting is the framing of syslog over TLS (LF only when asked).
        super().__init__(host, port, framing=framing, **options)
        self.server_hostname = server_hostname or host
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
            text = f"{self.url}: TLS certificate verification is off; anyone on the path can read the messages"
            warnings.warn(text, InsecureTransportWarning, stacklevel=_caller_level())
            log.warning("%s", text)
        self.ssl_context = ssl_context

    def _wrap(self, sock: socket.socket, timeout: float) -> socket.socket:
        """Handshake within ``timeout``; a failure that retrying cannot fix stops the sender."""
        sock.settimeout(timeout)
        try:
            return self.ssl_context.wrap_socket(sock, server_hostname=self.server_hostname)
        except ssl.SSLError as exc:
            if not _fatal(exc):
                raise
            error = TLSHandshakeError(f"{self.url}: TLS handshake failed: {exc}")
            error.__cause__ = exc
            with self._cond:
                self._fatal = error
                self._failures += 1
                self._cond.notify_all()
            self.last_error = exc
            log.error("%s", error)
            raise error from exc
