"""``SIEMHandler``: a ``logging.Handler`` that writes an application's own security events as CEF,
LEEF or RFC 5424 and delivers them through a siemfmt sender.

    handler = SIEMHandler("tls://siem.example.net:6514", fmt="cef", vendor="Acme", product="Gateway")
    logging.getLogger("security").addHandler(handler)
    log.warning("Login failed", extra={"suser": "bob", "src": "10.0.0.7"})

``extra=`` fields become extension keys (CEF), attributes (LEEF) or SD-PARAMs (RFC 5424). The record's
time is the event time; its level maps to the CEF/LEEF severity and to the syslog PRI severity.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from siemfmt.formats import cef, leef
from siemfmt.formats.base import controls_to_space, render_time
from siemfmt.syslog import (
    check_header_token,
    check_sd_name,
    hostname_from,
    pri,
    rfc3164_header,
    rfc5424_header,
    sd_element,
)
from siemfmt.transport import Sender, connect

__all__ = ["HandlerFormat", "SIEMHandler", "level_to_cef_severity", "level_to_syslog_severity"]

HandlerFormat = Literal["cef", "leef", "rfc5424"]

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_NOT_KEY = re.compile(r"[^A-Za-z0-9]")


def level_to_cef_severity(levelno: int) -> int:
    """CEF/LEEF severity 0-10 for a logging level (DEBUG 1, INFO 3, WARNING 5, ERROR 7, CRITICAL 10)."""
    for threshold, value in ((logging.CRITICAL, 10), (logging.ERROR, 7), (logging.WARNING, 5), (logging.INFO, 3)):
        if levelno >= threshold:
            return value
    return 1


def level_to_syslog_severity(levelno: int) -> int:
    """RFC 5424 §6.2.1 severity for a logging level (CRITICAL 2 crit ... DEBUG 7 debug)."""
    for threshold, value in ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6)):
        if levelno >= threshold:
            return value
    return 7


class SIEMHandler(logging.Handler):
    """Format each record as one CEF, LEEF or RFC 5424 line and send it (see the module docstring).

    ``destination``: a URL for ``siemfmt.transport.connect`` (``udp://``, ``tcp://``, ``tls://``) or a
    ready sender; ``transport_options`` go to ``connect``. ``header``: ``rfc3164`` (default for CEF and
    LEEF), ``rfc5424`` (required for ``rfc5424``) or ``none``. ``facility``: syslog facility (default
    ``4``, auth/security). ``enterprise_number``: the PEN of the RFC 5424 SD-ID ``event@PEN``.
    """

    def __init__(
        self,
        destination: str | Sender,
        *,
        fmt: HandlerFormat = "cef",
        vendor: str = "siemfmt",
        product: str = "application",
        version: str = "1.0",
        header: Literal["rfc3164", "rfc5424", "none"] | None = None,
        hostname: str | None = None,
        app_name: str | None = None,
        facility: int = 4,
        enterprise_number: int = 32473,
        level: int = logging.NOTSET,
        **transport_options: Any,
    ) -> None:
        super().__init__(level)
        if fmt not in ("cef", "leef", "rfc5424"):
            raise ValueError(f"fmt: {fmt!r} must be cef, leef or rfc5424")
        header = header or ("rfc5424" if fmt == "rfc5424" else "rfc3164")
        if fmt == "rfc5424" and header != "rfc5424":
            raise ValueError("header: the rfc5424 format needs the rfc5424 header")
        if header not in ("rfc3164", "rfc5424", "none"):
            raise ValueError(f"header: {header!r} must be rfc3164, rfc5424 or none")
        pri(facility, 0)  # validates the facility
        self.fmt: HandlerFormat = fmt
        self.header = header
        self.facility = facility
        self.hostname = (
            check_header_token("hostname", hostname, 255) if hostname else hostname_from(socket.gethostname())
        )
        self.app_name = check_header_token("app_name", app_name, 48) if app_name else "-"
        self.sd_id = check_sd_name("SD-ID", f"event@{enterprise_number}")
        self._cef_head = f"CEF:0|{cef.escape_header(vendor)}|{cef.escape_header(product)}|{cef.escape_header(version)}|"
        self._leef_head = (
            f"LEEF:1.0|{leef.escape_header(vendor)}|{leef.escape_header(product)}|{leef.escape_header(version)}|"
        )
        self.sender: Sender = connect(destination, **transport_options) if isinstance(destination, str) else destination
        self._owns_sender = isinstance(destination, str)

    # --- pure part ----------------------------------------------------------------------------------

    @staticmethod
    def extras(record: logging.LogRecord) -> dict[str, Any]:
        """The ``extra=`` fields of a record, in the order they were given."""
        return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}

    def render(self, record: logging.LogRecord) -> str:
        """The line for one record (no I/O)."""
        when = datetime.fromtimestamp(record.created, tz=timezone.utc)
        message = record.getMessage()
        signature = str(getattr(record, "signature", None) or record.name or "event")
        extra = {k: v for k, v in self.extras(record).items() if k != "signature"}
        if self.fmt == "cef":
            body = self._cef(record, when, message, signature, extra)
        elif self.fmt == "leef":
            body = self._leef(record, when, message, signature, extra)
        else:
            body = controls_to_space(message)
        prival = pri(self.facility, level_to_syslog_severity(record.levelno))
        if self.header == "none":
            return body
        if self.header == "rfc3164":
            return rfc3164_header(prival, when, self.hostname) + body
        sd = "-"
        if self.fmt == "rfc5424":
            params = [("logger", record.name), ("level", record.levelname), ("signature", signature)]
            params += [(_sd_param(k), controls_to_space(str(v))) for k, v in extra.items()]
            sd = sd_element(self.sd_id, [(k, controls_to_space(v)) for k, v in params])
        procid = str(record.process) if record.process is not None else "-"
        return rfc5424_header(prival, when, self.hostname, self.app_name, procid, "-", sd) + body

    def _cef(
        self, record: logging.LogRecord, when: datetime, message: str, signature: str, extra: Mapping[str, Any]
    ) -> str:
        ext = [f"rt={render_time(when, timezone.utc, 'epoch-ms')}", f"msg={cef.escape_extension(message)}"]
        ext += [f"{k}={cef.escape_extension(str(v))}" for k, v in _keyed(extra, _CEF_RESERVED)]
        return (
            f"{self._cef_head}{cef.escape_header(signature)}|{cef.escape_header(message)}|"
            f"{level_to_cef_severity(record.levelno)}|{' '.join(ext)}"
        )

    def _leef(
        self, record: logging.LogRecord, when: datetime, message: str, signature: str, extra: Mapping[str, Any]
    ) -> str:
        attrs = [
            f"devTime={render_time(when, timezone.utc, 'epoch-ms')}",
            f"sev={level_to_cef_severity(record.levelno)}",
            f"msg={leef.sanitize(message)}",
        ]
        attrs += [f"{k}={leef.sanitize(str(v))}" for k, v in _keyed(extra, _LEEF_RESERVED)]
        return f"{self._leef_head}{leef.escape_header(signature)}|" + "\t".join(attrs)

    # --- logging.Handler ----------------------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sender.send(self.render(record))
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.sender.flush(5.0)

    def close(self) -> None:
        try:
            if self._owns_sender:
                self.sender.close()
        finally:
            super().close()


_CEF_RESERVED = frozenset({"rt", "msg"})  # keys the handler writes itself
_LEEF_RESERVED = frozenset({"devTime", "sev", "msg"})


def _cef_key(name: str) -> str:
    """Extension keys are alphanumeric (CEF 1.2; syslog-ng and Logstash drop or rewrite others)."""
    return _NOT_KEY.sub("", name)


def _keyed(extra: Mapping[str, Any], reserved: frozenset[str]) -> list[tuple[str, Any]]:
    """``extra=`` fields under alphanumeric keys. A key the handler writes itself gets the suffix
    ``Extra`` (``rt`` -> ``rtExtra``) rather than a second ``rt``; a key with no letter or digit left
    becomes ``extraN`` (its position), so no field is dropped."""
    out: list[tuple[str, Any]] = []
    for index, (name, value) in enumerate(extra.items(), 1):
        key = _cef_key(name) or f"extra{index}"
        out.append((f"{key}Extra" if key in reserved else key, value))
    return out


def _sd_param(name: str) -> str:
    """A PARAM-NAME: printable ASCII without ``= ] "`` and space, at most 32 (RFC 5424 §6.3.3)."""
    cleaned = re.sub(r'[^\x21-\x7e]|[="\]]', "_", name)[:32] or "_"
    return check_sd_name("PARAM-NAME", cleaned)
