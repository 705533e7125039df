"""Syslog over TLS (RFC 5425): the TCP sender with a verified TLS handshake before any byte."""

from __future__ import annotations

import os
import socket
import ssl
from typing import Any

from siemfmt.transport._base import DEFAULT_PORTS, Framing, TLSHandshakeError, client_tls_context, log, tls_fatal
from siemfmt.transport._tcp import TCPSender


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
        self.ssl_context = client_tls_context(
            self.url,
            ca_file=ca_file,
            ca_path=ca_path,
            cert_file=cert_file,
            key_file=key_file,
            key_password=key_password,
            verify=verify,
            ssl_context=ssl_context,
        )

    def _wrap(self, sock: socket.socket, timeout: float) -> socket.socket:
        """Handshake within ``timeout``; a failure that retrying cannot fix stops the sender."""
        sock.settimeout(timeout)
        try:
            return self.ssl_context.wrap_socket(sock, server_hostname=self.server_hostname)
        except ssl.SSLError as exc:
            if not tls_fatal(exc):
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
