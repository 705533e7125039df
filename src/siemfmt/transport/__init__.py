"""Deliver syslog lines over UDP (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425).

``connect(url, **options)`` returns a sender with ``open``, ``send``, ``send_many``, ``flush``,
``close``, ``stats`` and ``state``, usable as a context manager and from many threads. The transport
knows nothing about alerts: it moves ``str`` (sent as UTF-8) or ``bytes``.

* UDP sends one datagram per message, synchronously, from the calling thread.
* TCP and TLS queue frames; one background writer thread connects lazily, joins queued frames into
  few writes, and reconnects with exponential backoff after a failure, writing again every frame the
  operating system did not accept. Frames the kernel accepted before a reset can still be lost: plain
  syslog over TCP has no acknowledgement (``docs/transport.md`` gives the measured bound).

Only the standard library is used: ``socket``, ``ssl``, ``threading``, ``logging``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from siemfmt.transport._base import (
    DEFAULT_PORTS,
    Framing,
    InsecureTransportWarning,
    MessageError,
    OnFull,
    OnOversize,
    Payload,
    QueueFullError,
    Sender,
    TLSHandshakeError,
    TransportError,
    TransportStats,
    truncate_utf8,
)
from siemfmt.transport._relp import (
    RELP_DEFAULT_PORTS,
    RELPProtocolError,
    RELPRefusedError,
    RELPSender,
    RELPStats,
    RELPTLSSender,
)
from siemfmt.transport._tcp import TCPSender
from siemfmt.transport._tls import TLSSender
from siemfmt.transport._udp import UDPSender

__all__ = [
    "DEFAULT_PORTS",
    "Framing",
    "InsecureTransportWarning",
    "MessageError",
    "OnFull",
    "OnOversize",
    "Payload",
    "QueueFullError",
    "RELPProtocolError",
    "RELPRefusedError",
    "RELPSender",
    "RELPStats",
    "RELPTLSSender",
    "Sender",
    "TCPSender",
    "TLSHandshakeError",
    "TLSSender",
    "TransportError",
    "TransportStats",
    "UDPSender",
    "connect",
    "truncate_utf8",
]


# --- connect ----------------------------------------------------------------------------------------

_BOOL = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
_INT_OPTIONS = {
    "max_size",
    "max_queue",
    "max_batch_bytes",
    "keepalive_idle",
    "keepalive_interval",
    "keepalive_count",
    "window",
    "session_limit",
    "max_rejects",
}
_FLOAT_OPTIONS = {
    "block_timeout",
    "connect_timeout",
    "write_timeout",
    "backoff_base",
    "backoff_cap",
    "exit_timeout",
    "ack_timeout",
    "close_timeout",
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


_CLASSES: dict[str, type[UDPSender] | type[TCPSender] | type[RELPSender]] = {
    "udp": UDPSender,
    "tcp": TCPSender,
    "tls": TLSSender,
    "relp": RELPSender,
    "relp+tls": RELPTLSSender,
}
_PORTS = {**DEFAULT_PORTS, **RELP_DEFAULT_PORTS}
_SCHEMES = "udp://, tcp://, tls://, relp:// or relp+tls://"


def connect(url: str | None = None, /, **options: Any) -> UDPSender | TCPSender | RELPSender:
    """A sender for ``udp://``, ``tcp://``, ``tls://``, ``relp://`` or ``relp+tls://`` ``host:port``.

    Hosts may be names, IPv4 or ``[IPv6]`` literals; the port defaults to 514 (UDP, TCP), 6514
    (TLS) or 2514 (RELP, which has no IANA port; rsyslog's documentation uses 2514). Options come as
    keywords or in the query string (``tcp://h:514?framing=octet-counting``); keywords win. Without a
    URL give ``scheme``, ``host`` and optionally ``port`` as keywords.

    Common: ``max_size``, ``on_oversize`` (``truncate``|``error``|``send``), ``write_timeout``,
    ``exit_timeout``. TCP/TLS: ``framing`` (``lf``|``octet-counting``), ``max_queue`` (10,000),
    ``on_full`` (``block``|``drop-oldest``|``error``), ``block_timeout``, ``connect_timeout``,
    ``backoff_base`` (0.5 s), ``backoff_cap`` (30 s), ``max_batch_bytes``, ``keepalive``,
    ``keepalive_idle``/``_interval``/``_count``. TLS: ``ca_file``, ``ca_path``, ``cert_file``,
    ``key_file``, ``key_password``, ``verify``, ``server_hostname``, ``ssl_context``.
    RELP (acknowledged delivery, docs/relp.md): ``window`` (128), ``ack_timeout``, ``close_timeout``,
    ``session_limit``, ``max_rejects``, ``sequence`` (``sd``|``cef``), ``sender_id``, ``sequence_sd_id``,
    and the TCP options but ``framing``; ``relp+tls`` also the TLS options.
    Nothing connects until the first message (or ``open()``).
    """
    if url is not None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _CLASSES:
            raise ValueError(f"url: {url!r} must start with {_SCHEMES}")
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
        port = _PORTS[scheme] if port is None else port  # an explicit :0 is refused, not defaulted
    else:
        merged = dict(options)
        scheme = str(merged.pop("scheme", "")).lower()
        if scheme not in _CLASSES:
            raise ValueError(f"scheme: {scheme!r} must be one of {', '.join(_CLASSES)}")
        if "host" not in merged:
            raise TypeError("connect() needs a URL or host=")
        host = str(merged.pop("host")).strip("[]")
        port = merged.pop("port", _PORTS[scheme])
    cls = _CLASSES[scheme]
    try:
        return cls(host, port, **merged)
    except TypeError as exc:
        raise TypeError(f"{scheme}: {exc}") from None
