"""Syslog over RELP (librelp's Reliable Event Logging Protocol), plain or over TLS.

Every message travels as a ``syslog`` command and stays held until the server answers it with
``rsp 200``; after any break (EOF, reset, ``serverclose``, a ``500``, a timeout) the sender opens a
new session and sends again, in order, every message not yet answered. Delivery is therefore at
least once: after a break, up to ``window`` messages the server had already taken may arrive twice.
The optional ``sequence`` tag lets a receiver drop those duplicates.

Protocol rules are cited from ``/work/shared/reference/rsyslog-tls-relp.md`` (``ref §N``) and from
librelp's ``doc/relp.md`` (``spec``), as verified on the wire against librelp 1.11 / rsyslog 8.2302.

One I/O thread per sender owns the socket: it writes frames while answers are outstanding (up to
``window`` of them) and reads the answers from the same non-blocking socket, so an ``SSLSocket`` is
never used from two threads at once.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import ssl
import threading
import time
import uuid
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate, repeat, starmap
from typing import Any, Literal, NamedTuple

from siemfmt.transport._base import (
    MessageError,
    OnFull,
    OnOversize,
    Payload,
    QueueFullError,
    StreamSender,
    TLSHandshakeError,
    TransportError,
    TransportStats,
    check_choice,
    client_tls_context,
    live,
    log,
    tls_fatal,
)

__all__ = [
    "RELP_DEFAULT_PORTS",
    "RELPFrame",
    "RELPFrameReader",
    "RELPProtocolError",
    "RELPRefusedError",
    "RELPSender",
    "RELPStats",
    "RELPTLSSender",
    "SequenceTag",
]

SequenceTag = Literal["sd", "cef"]

# RELP has no IANA port; rsyslog's imrelp/omrelp documentation uses 2514 in its examples (plain and TLS).
RELP_DEFAULT_PORTS = {"relp": 2514, "relp+tls": 2514}
# ref §5 Window: librelp's RELP_DFLT_WINDOW_SIZE (relp.h).
DEFAULT_WINDOW = 128
# ref §5 Frame: NUMBER = 1*9DIGIT, so no TXNR above 999,999,999.
TXNR_MAX = 999_999_999
# ref §5 TXNR rules / §8.10: librelp's wrap after 999,999,999 is broken; open a new session well before.
DEFAULT_SESSION_LIMIT = 900_000_000
# ref §5 Window: RELP_DFLT_MAX_DATA_SIZE is 128K; a server frame larger than that is not RELP we know.
MAX_SERVER_DATA = 128 * 1024
# ref §5 Frame: 9 digits SP 32 letters SP 9 digits and the SP or LF after them.
_HEADER_MAX = 9 + 1 + 32 + 1 + 9 + 1
# ref §5 Frame: HEADER = TXNR SP COMMAND SP DATALEN, then SP DATA or (DATALEN 0) the LF trailer.
_HEADER = re.compile(rb"(\d{1,9}) ([A-Za-z]{1,32}) (\d{1,9})([ \n])")
_HEADER_PREFIX = re.compile(rb"\d{0,9}|\d{1,9} [A-Za-z]{0,32}|\d{1,9} [A-Za-z]{1,32} \d{0,9}")
# RFC 5424 §6: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA.
_RFC5424_HEAD = re.compile(rb"<\d{1,3}>[1-9]\d{0,2} \S+ \S+ \S+ \S+ \S+ ")
_SENDER_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# RFC 5424 §6.3.2: SD-ID is 1-32 PRINTUSASCII without '=', SP, ']', '"'.
_SD_ID = re.compile(r"[\x21-\x7e]{1,32}")
# ref §5 (wire): the usual answer stream is "N rsp 6 200 OK" frames only; a run of them, in TXNR
# order, is recognised by comparing it with the bytes those answers must be, and acknowledged at once.
_ACK_TAIL = b" rsp 6 200 OK\n"
# ref §5 Frame: TXNR SP "syslog" SP DATALEN SP and the LF trailer add at most 9 + 1 + 6 + 1 + 9 + 1 + 1
# octets to a message.
_SYSLOG_OVERHEAD = 28
_WAKE = b"\0"
_RECV = 65_536


# --- errors and stats -------------------------------------------------------------------------------


class RELPProtocolError(TransportError):
    """The server sent something that is not RELP as librelp speaks it (bad frame, wrong TXNR, odd
    command); the session is dropped and a new one is opened."""


class RELPRefusedError(TransportError):
    """The server refused the session (``open`` answered ``500``, or without ``commands=syslog``).

    Opening again with the same offers cannot succeed, so the sender stops for good."""


class _SessionBroken(TransportError):
    """The server ended the session (``serverclose``) or answered ``500``: send again in a new one."""


@dataclass(frozen=True, slots=True)
class RELPStats(TransportStats):
    """``TransportStats`` plus RELP's own counters.

    ``sent``: messages written at least once; ``acknowledged``: answered ``rsp 200``; ``resent``: frames
    written again in a new session after a break (each can be a duplicate at the receiver);
    ``in_flight``: written in this session and not answered yet; ``queued``: not written yet (in this
    session); ``rejected``: dropped after ``max_rejects`` ``500`` answers (also in ``dropped``);
    ``sessions``: RELP sessions opened.
    """

    acknowledged: int = 0
    resent: int = 0
    in_flight: int = 0
    rejected: int = 0
    sessions: int = 0


class RELPFrame(NamedTuple):
    """One RELP frame: transaction number, command, data (ref §5 Frame)."""

    txnr: int
    command: str
    data: bytes


class RELPFrameReader:
    """Splits a byte stream into RELP frames; raises RELPProtocolError where librelp's parser would
    abort the session (ref §5 Frame: a 10-digit number, a non-alpha command, a trailer other than LF)."""

    def __init__(self, max_data: int = MAX_SERVER_DATA) -> None:
        self.max_data = max_data
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held that do not make a whole frame yet."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[RELPFrame]:
        """Add ``chunk``; return the frames it completed."""
        buf = self._buf
        buf += chunk
        frames: list[RELPFrame] = []
        pos, size = 0, len(buf)
        while pos < size:
            m = _HEADER.match(buf, pos)
            if m is None:
                head = bytes(buf[pos : pos + _HEADER_MAX])
                if len(head) >= _HEADER_MAX or not _HEADER_PREFIX.fullmatch(head):
                    raise RELPProtocolError(f"malformed RELP frame header {head[:40]!r} (ref §5 Frame)")
                break
            length = int(m[3])
            if length > self.max_data:
                raise RELPProtocolError(f"RELP frame of {length} bytes exceeds {self.max_data} (ref §5 Window)")
            command = m[2].decode("ascii")
            if m[4] == b"\n":
                # ref §5 Frame / §8.11: a frame without data is TXNR SP COMMAND SP 0 LF.
                if length:
                    raise RELPProtocolError(f"RELP frame announces {length} bytes but has none (ref §5 Frame)")
                frames.append(RELPFrame(int(m[1]), command, b""))
                pos = m.end()
                continue
            if not length:
                raise RELPProtocolError("RELP frame with DATALEN 0 has a data separator (ref §5 Frame)")
            end = m.end() + length
            if end >= size:
                break
            # ref §5 Frame: TRAILER = LF, right after DATALEN octets of data.
            if buf[end] != 0x0A:
                raise RELPProtocolError(f"RELP frame trailer is {bytes(buf[end : end + 1])!r}, not LF (ref §5 Frame)")
            frames.append(RELPFrame(int(m[1]), command, bytes(buf[m.end() : end])))
            pos = end + 1
        del buf[:pos]
        return frames


class _SyslogHead(dict[int, bytes]):
    """``DATALEN -> b" syslog DATALEN "``, remembered for the sizes of ordinary syslog lines."""

    def __missing__(self, size: int) -> bytes:
        head = b" syslog %d " % size
        if size < 16_384:
            self[size] = head
        return head


_SYSLOG_HEADS = _SyslogHead()
# TXNRs in decimal without formatting each one: the numbers below 1000, and 000-999 for the low digits.
_DIGITS = tuple(b"%d" % n for n in range(1000))
_DIGITS3 = tuple(b"%03d" % n for n in range(1000))


def _txnr_runs(first: int, count: int) -> list[tuple[bytes, tuple[bytes, ...]]]:
    """TXNRs ``first`` .. ``first + count - 1`` in decimal, as runs of (high digits, low digits) that
    share their high digits: 999, 1000, 1001 is ``[(b"", (b"999",)), (b"1", (b"000", b"001"))]``."""
    runs = []
    end = first + count
    while first < end:
        high, low = divmod(first, 1000)
        stop = min(1000, low + end - first)
        runs.append((b"%d" % high, _DIGITS3[low:stop]) if high else (b"", _DIGITS[low:stop]))
        first += stop - low
    return runs


def _syslog_frames(first: int, messages: list[bytes]) -> bytes:
    """``messages`` as syslog frames with TXNRs from ``first`` on, back to back (ref §5 Frame:
    TXNR SP "syslog" SP DATALEN SP DATA LF), joined in one step from cached parts."""
    heads = list(map(_SYSLOG_HEADS.__getitem__, map(len, messages)))
    parts: list[bytes] = []
    at = 0
    for high, lows in _txnr_runs(first, len(messages)):
        n = len(lows)
        run = [b"\n" + high] * (4 * n)  # the LF trailer of the frame before, and the high digits
        run[1::4] = lows
        run[2::4] = heads[at : at + n]
        run[3::4] = messages[at : at + n]
        parts += run
        at += n
    parts[0] = parts[0][1:]  # no frame before the first
    parts.append(b"\n")
    return b"".join(parts)


def _plain_acks(first: int, count: int) -> bytes:
    """What ``200 OK`` answers to TXNRs ``first`` .. ``first + count - 1`` are on the wire."""
    return b"".join([high + (_ACK_TAIL + high).join(lows) + _ACK_TAIL for high, lows in _txnr_runs(first, count)])


def _rsp_status(frame: RELPFrame) -> tuple[int, str, bytes]:
    """``rsp`` data as (status, human text, the rest) (ref §5 Commands: STATUS SP HUMAN-TEXT [LF DATA])."""
    first, _, rest = frame.data.partition(b"\n")
    code, _, text = first.partition(b" ")
    if len(code) != 3 or not code.isdigit():
        raise RELPProtocolError(f"rsp {frame.txnr} has no status code: {frame.data[:60]!r} (ref §5 Commands)")
    return int(code), text.decode("utf-8", "replace"), rest


# --- messages and the sequence tag ------------------------------------------------------------------


class _Refused(bytes):
    """A message the server answered ``500``: its bytes, and how many times it was refused.

    Messages are held as plain ``bytes`` (their TXNR follows from their place in the window); only a
    refused one becomes a ``_Refused``, in place, so that the count survives the resends."""

    rejects: int


class _Tagged:
    """A message with a place for the sequence tag: ``head + tag(n) + tail``."""

    __slots__ = ("head", "kind", "tail")

    def __init__(self, head: bytes, tail: bytes, kind: str) -> None:
        self.head = head
        self.tail = tail
        self.kind = kind


def _sequence_slot(data: bytes, kind: SequenceTag) -> _Tagged:
    """Where the sequence tag goes in ``data``; MessageError when the message has no such place."""
    if kind == "sd":
        m = _RFC5424_HEAD.match(data)
        if m is None:
            raise MessageError("sequence='sd' needs an RFC 5424 message (<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD)")
        at = m.end()
        # RFC 5424 §6.3: STRUCTURED-DATA is NILVALUE or 1*SD-ELEMENT; '-' is replaced, elements kept after ours.
        if data[at : at + 1] == b"-" and data[at + 1 : at + 2] in (b"", b" "):
            return _Tagged(data[:at], data[at + 1 :], "sd")
        if data[at : at + 1] == b"[":
            return _Tagged(data[:at], data[at:], "sd")
        raise MessageError("sequence='sd': the RFC 5424 STRUCTURED-DATA field is neither '-' nor '[...]'")
    if b"CEF:" not in data:
        raise MessageError("sequence='cef' needs a CEF message (CEF:Version|...|Extension)")
    # CEF: extensions are space-separated key=value pairs after the 7th '|' of the CEF part.
    sep = b"" if data.endswith(b"|") else b" "
    return _Tagged(data + sep, b"", "cef")


# --- the sender -------------------------------------------------------------------------------------


class RELPSender(StreamSender):
    """Syslog over RELP through a bounded queue and one I/O thread; see the module docstring.

    Options (besides TCP's ``max_size``, ``on_oversize``, ``max_queue``, ``on_full``, ``block_timeout``,
    ``connect_timeout``, ``write_timeout``, ``backoff_base``, ``backoff_cap``, ``max_batch_bytes``,
    ``keepalive*``, ``exit_timeout``): ``window`` (128) frames unacknowledged at most; ``ack_timeout``
    (30 s) without an answer breaks the session; ``close_timeout`` (2 s) for the ``close`` handshake;
    ``session_limit`` (900,000,000) frames per session before a new one; ``max_rejects`` (3) ``500``
    answers before a message is dropped; ``sequence`` (``None``, ``"sd"``, ``"cef"``) tags every
    message with a per-sender number; ``sender_id`` (random) and ``sequence_sd_id`` (``seq@32473``).
    """

    scheme = "relp"
    _attempt_text = "open a RELP session"
    _final_errors = (TLSHandshakeError, RELPRefusedError)
    _retry_errors = (OSError, RELPProtocolError)

    def __init__(
        self,
        host: str,
        port: int = RELP_DEFAULT_PORTS["relp"],
        *,
        window: int = DEFAULT_WINDOW,
        ack_timeout: float = 30.0,
        close_timeout: float = 2.0,
        session_limit: int = DEFAULT_SESSION_LIMIT,
        max_rejects: int = 3,
        sequence: SequenceTag | None = None,
        sender_id: str | None = None,
        sequence_sd_id: str = "seq@32473",
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
        check_choice("on_full", on_full, ("block", "drop-oldest", "error"))
        if sequence in ("none", ""):
            sequence = None
        if sequence is not None:
            check_choice("sequence", sequence, ("sd", "cef"))
        self._stream_options(
            (
                ("window", window),
                ("ack_timeout", ack_timeout),
                ("close_timeout", close_timeout),
                ("session_limit", session_limit),
                ("max_rejects", max_rejects),
            ),
            max_queue=max_queue,
            on_full=on_full,
            block_timeout=block_timeout,
            connect_timeout=connect_timeout,
            write_timeout=write_timeout,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            max_batch_bytes=max_batch_bytes,
            keepalive=keepalive,
            keepalive_idle=keepalive_idle,
            keepalive_interval=keepalive_interval,
            keepalive_count=keepalive_count,
        )
        for name, number in (("window", window), ("session_limit", session_limit), ("max_rejects", max_rejects)):
            if isinstance(number, bool) or not isinstance(number, int):
                raise ValueError(f"{name}: {number!r} must be a whole number")
        # ref §5 TXNR rules: the close command needs a number too, and numbers stop at 999,999,999.
        if session_limit >= TXNR_MAX:
            raise ValueError(f"session_limit: {session_limit} must be below {TXNR_MAX:,} (ref §5 TXNR rules)")
        if sender_id is None:
            sender_id = uuid.uuid4().hex[:12]
        if not isinstance(sender_id, str) or not _SENDER_ID.fullmatch(sender_id):
            raise ValueError(f"sender_id: {sender_id!r} must be 1-64 of A-Z a-z 0-9 . _ : -")
        if not _SD_ID.fullmatch(sequence_sd_id) or any(c in sequence_sd_id for c in '="]'):
            raise ValueError(f"sequence_sd_id: {sequence_sd_id!r} is not an RFC 5424 SD-ID (§6.3.2)")
        self.window = window
        self.ack_timeout = ack_timeout
        self.close_timeout = close_timeout
        self.session_limit = session_limit
        self.max_rejects = max_rejects
        self.sequence: SequenceTag | None = sequence
        self.sender_id = sender_id
        self.sequence_sd_id = sequence_sd_id
        self.ssl_context: ssl.SSLContext | None = None
        self.server_hostname: str | None = None
        self._cond = threading.Condition(self._lock)
        self._pending: deque[bytes] = deque()  # not written in the current session, oldest first
        # Written in the current session, in TXNR order: the first has TXNR _next_txnr - len(_unacked).
        self._unacked: deque[bytes] = deque()
        self._resend = 0  # the first _resend of _pending were written in an earlier session
        self._idle = False  # the I/O thread waits on _cond for messages (only then does queueing notify)
        self._blocked = 0  # producers waiting for room (on_full="block")
        self._stop = threading.Event()
        self._connect_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._reader = RELPFrameReader()
        self._next_txnr = 1
        self._thread: threading.Thread | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._want_wake = False
        self._fatal: TransportError | None = None
        self._closing = False
        self._ever_connected = False
        self._backoff_step = 0
        self._retry_delay = 0.0
        self._seq = 0
        self._dropping = False
        self._acked_here = 0
        self._rolling = False  # the last session ended for the TXNR limit, not a failure
        self._acked = self._resent = self._rejected = self._sessions = 0
        self.peer_software = ""  # the server's relp_software offer

    # --- public -----------------------------------------------------------------------------------

    @property
    def stats(self) -> RELPStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return RELPStats(
                *self._counters_locked(),
                self._acked,
                self._resent,
                len(self._unacked),
                self._rejected,
                self._sessions,
            )

    def unacknowledged(self) -> list[bytes]:
        """Every message not acknowledged yet, in order (in flight first, then queued), as sent."""
        with self._lock:
            return [bytes(m) if type(m) is _Refused else m for m in (*self._unacked, *self._pending)]

    def open(self, timeout: float | None = None) -> None:
        """Connect and open a RELP session now; raise instead of retrying later.

        Raises RELPRefusedError when the server refuses the session, TLSHandshakeError for a TLS
        failure retrying cannot fix, TransportError otherwise. ``timeout`` overrides ``connect_timeout``.
        """
        self._check_usable()
        with self._connect_lock:
            if self._sock is None:
                try:
                    sock = self._connect_attempt(self.connect_timeout if timeout is None else timeout)
                except (TLSHandshakeError, RELPRefusedError):
                    raise
                except (OSError, RELPProtocolError) as exc:
                    with self._lock:
                        self._failures += 1
                    self.last_error = exc
                    raise TransportError(f"{self.url}: cannot open a RELP session: {exc}") from exc
                self._install(sock)
        self._start_thread()

    def send(self, message: Payload) -> None:
        """Queue one message (``str`` as UTF-8, ``bytes`` as is); MessageError if it cannot be sent."""
        if self._closed or self._fatal is not None:
            self._check_usable()
        data = self._encode_fast(message)
        if self.sequence is not None:
            self._enqueue([_sequence_slot(data, self.sequence)])
            return
        if self._thread is None:
            self._start_thread()
        lock = self._lock
        lock.acquire()  # not ``with``: on CPython 3.11, acquire/release in try/finally is cheaper
        try:
            pending = self._pending
            queued = not self._closed and len(pending) + len(self._unacked) < self.max_queue
            if queued:
                pending.append(data)
                wake = self._want_wake
                if wake:
                    self._want_wake = False
                elif self._idle:
                    self._cond.notify_all()
        finally:
            lock.release()
        if not queued:
            self._enqueue([data])  # closed meanwhile (raises), or full: on_full decides
        elif wake:
            self._wake()

    def send_many(self, messages: Iterable[Payload]) -> None:
        """Queue several messages in order; all are checked before any is queued."""
        self._check_usable()
        items = messages if type(messages) is list else list(messages)
        if not items:
            return
        if self.sequence is not None:
            self._enqueue([self._prepare(m) for m in items])
            return
        datas = self._encode_all(items)
        if self._thread is None:
            self._start_thread()
        with self._lock:
            pending = self._pending
            queued = not self._closed and len(pending) + len(self._unacked) + len(datas) <= self.max_queue
            if queued:
                pending.extend(datas)
                wake = self._want_wake
                if wake:
                    self._want_wake = False
                elif self._idle:
                    self._cond.notify_all()
        if not queued:
            self._enqueue(list(datas))  # closed meanwhile (raises), or not room for all: on_full decides
        elif wake:
            self._wake()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the server has acknowledged every message given so far.

        False when ``timeout`` passed first, or at once when the sender is closed or failed for good
        with messages left; ``unacknowledged()`` and ``stats.in_flight`` tell what is still out.
        """
        return self._wait_done(timeout)

    def _busy_locked(self) -> bool:
        return bool(self._pending or self._unacked)

    def _queued_locked(self) -> int:
        return len(self._pending)

    def close(self, timeout: float | None = 5.0) -> None:
        """Wait up to ``timeout`` s for every acknowledgement, then end the session with ``close``.

        Messages still unacknowledged after that are dropped, counted in ``stats.dropped`` and logged.
        """
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._stop.set()
            self._cond.notify_all()
        self._wake()
        if self._thread is not None:
            self._thread.join(max(self.write_timeout, self.connect_timeout) + self.close_timeout + 1.0)
        with self._cond:
            left = len(self._pending) + len(self._unacked)
            self._dropped += left
            self._pending.clear()
            self._unacked.clear()
            self._resend = 0
            self._cond.notify_all()
        self._disconnect(graceful=False)
        live.discard(self)
        if left:
            log.warning("%s: closed with %d unacknowledged messages dropped", self.url, left)
        else:
            log.info("%s: closed", self.url)

    # --- queueing ---------------------------------------------------------------------------------

    def _prepare(self, message: Payload) -> bytes | _Tagged:
        data = self._encode(message)
        return data if self.sequence is None else _sequence_slot(data, self.sequence)

    def _encode_all(self, items: list[Payload]) -> list[bytes]:
        """The bytes of every message, all checked before any is queued; ``str`` messages that need
        no truncation are encoded in one C loop, anything else message by message."""
        if self.max_size is None:
            try:
                datas = list(map(str.encode, items))  # type: ignore[arg-type]
            except (TypeError, UnicodeEncodeError):
                pass  # bytes among them, or not encodable (_encode raises MessageError)
            else:
                if min(map(len, datas)):
                    return datas
        return [self._encode(m) for m in items]

    def _tag(self, item: _Tagged, n: int) -> bytes:
        if item.kind == "sd":
            sd = f'[{self.sequence_sd_id} n="{n}" sender="{self.sender_id}"]'
        else:
            sd = f"siemfmtSeq={n} siemfmtSender={self.sender_id}"
        return item.head + sd.encode("ascii") + item.tail

    def _enqueue(self, items: list[bytes | _Tagged]) -> None:
        """Queue in order. At most ``max_queue`` messages are held, in flight included; ``drop-oldest``
        drops the oldest message not yet written."""
        if not items:
            return
        self._start_thread()
        deadline = None if self.block_timeout is None else time.monotonic() + self.block_timeout
        wake = False
        with self._cond:
            self._check_open()
            try:
                for item in items:
                    keep = True
                    while len(self._pending) + len(self._unacked) >= self.max_queue:
                        if self.on_full == "error":
                            raise QueueFullError(f"{self.url}: queue full ({self.max_queue} messages)")
                        if self.on_full == "drop-oldest":
                            self._dropped += 1
                            if self._pending:
                                self._pending.popleft()
                                if self._resend:
                                    self._resend -= 1
                            else:
                                keep = False
                            if not self._dropping:
                                self._dropping = True
                                log.warning("%s: queue full (%d), dropping the oldest", self.url, self.max_queue)
                            break
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            raise QueueFullError(
                                f"{self.url}: queue full ({self.max_queue} messages) for {self.block_timeout} s"
                            )
                        self._blocked += 1
                        try:
                            self._cond.wait(remaining)
                        finally:
                            self._blocked -= 1
                        self._check_usable()
                    if keep:
                        if isinstance(item, _Tagged):
                            self._seq += 1  # assigned once: resends carry the same bytes
                            data = self._tag(item, self._seq)
                        else:
                            data = item
                        self._pending.append(data)
            finally:
                if self._idle:
                    self._cond.notify_all()
                if self._want_wake:
                    self._want_wake = False
                    wake = True
        if wake:
            self._wake()

    def _wake(self) -> None:
        w = self._wake_w
        if w is not None:
            with contextlib.suppress(OSError):
                w.send(_WAKE)

    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                self._wake_r, self._wake_w = socket.socketpair()
                self._wake_r.setblocking(False)
                self._wake_w.setblocking(False)
                self._thread = threading.Thread(target=self._run, name=f"siemfmt-{self.url}", daemon=True)
                self._thread.start()

    # --- connecting -------------------------------------------------------------------------------

    def _fail(self, error: TransportError) -> None:
        """Stop for good: ``open``/``send`` raise ``error`` from now on, ``flush`` returns False."""
        with self._cond:
            self._fatal = error
            self._failures += 1
            self._cond.notify_all()
        self.last_error = error
        log.error("%s", error)

    def _install(self, sock: socket.socket) -> socket.socket:
        with self._cond:
            self._sock = sock
            again = self._ever_connected
            if again and not self._rolling:
                self._reconnects += 1
            self._rolling = False
            self._ever_connected = True
            self._sessions += 1
            self._cond.notify_all()
        log.info("%s: RELP session %s", self.url, "reopened" if again else "opened")
        return sock

    def _offers(self) -> bytes:
        from siemfmt import __version__  # noqa: PLC0415 - siemfmt imports the transport package

        # ref §5 Commands / §8.6: offer relp_version=0 and commands=syslog (without it: 500).
        return (
            b"relp_version=0\nrelp_software=siemfmt,%s,https://pypi.org/project/siemfmt/\ncommands=syslog"
            % __version__.encode("ascii")
        )

    def _connect_attempt(self, timeout: float) -> socket.socket:
        """Connect, handshake (TLS), send ``open`` with TXNR 1 and read its answer; the socket, blocking."""
        deadline = time.monotonic() + timeout
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        try:
            self._tune(sock)
            sock = self._wrap(sock, max(0.001, deadline - time.monotonic()))
            offers = self._offers()
            # ref §5 TXNR rules: a session starts at 1.
            sock.sendall(b"1 open %d %s\n" % (len(offers), offers))
            reader = RELPFrameReader()
            answer: RELPFrame | None = None
            while answer is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no answer to RELP open")
                sock.settimeout(remaining)
                chunk = sock.recv(_RECV)
                if not chunk:
                    raise ConnectionResetError("the server closed the connection before answering open")
                for frame in reader.feed(chunk):
                    if frame.command == "rsp" and frame.txnr == 1:
                        answer = frame
                        break
                    if frame.command == "serverclose":
                        raise ConnectionResetError("the server sent serverclose before answering open")
            self._check_open_answer(answer)
        except BaseException:
            with contextlib.suppress(OSError):
                sock.close()
            raise
        self._reader = reader
        self._next_txnr = 2
        sock.settimeout(self.write_timeout)
        return sock

    def _check_open_answer(self, answer: RELPFrame) -> None:
        """ref §5 (wire): ``200 OK`` with the server's offers, or ``500 required command not supported``."""
        status, text, rest = _rsp_status(answer)
        offers: dict[bytes, bytes] = {}
        for line in rest.split(b"\n"):
            name, _, value = line.partition(b"=")
            offers[name] = value
        commands = offers.get(b"commands", b"").split(b",")
        if status != 200 or b"syslog" not in commands:
            reason = f"{status} {text}".strip() if status != 200 else "its offers lack commands=syslog"
            error = RELPRefusedError(
                f"{self.url}: the RELP server refused the session ({reason}); it must accept commands=syslog"
            )
            self._fail(error)
            raise error
        self.peer_software = offers.get(b"relp_software", b"").decode("utf-8", "replace")

    def _wrap(self, sock: socket.socket, timeout: float) -> socket.socket:
        """ref §4: RELP/TLS is TLS from the first byte (no starttls); plain RELP returns the socket."""
        if self.ssl_context is None:
            return sock
        sock.settimeout(timeout)
        try:
            return self.ssl_context.wrap_socket(sock, server_hostname=self.server_hostname)
        except ssl.SSLError as exc:
            if not tls_fatal(exc):
                raise
            error = TLSHandshakeError(f"{self.url}: TLS handshake failed: {exc}")
            error.__cause__ = exc
            self._fail(error)
            raise error from exc

    def _disconnect(self, graceful: bool) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is None:
            return
        if graceful and isinstance(sock, ssl.SSLSocket):
            # ref §8.2: send close_notify; some servers close without answering it.
            with contextlib.suppress(OSError, ValueError):
                sock.setblocking(True)
                sock.settimeout(1.0)
                sock.unwrap()
        with contextlib.suppress(OSError):
            sock.close()

    # --- the I/O thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._stop.is_set() and not self._pending and self._sock is None:
                        self._idle = True
                        try:
                            self._cond.wait()
                        finally:
                            self._idle = False
                    if self._stop.is_set() and self._sock is None:
                        return
                sock = self._connected()
                if sock is not None:
                    self._serve(sock)
                elif self._fatal is not None or self._stop.is_set():
                    return
        except BaseException as exc:  # pragma: no cover - a bug; keep it visible
            log.exception("%s: RELP thread crashed", self.url)
            self.last_error = exc
            raise
        finally:
            self._disconnect(graceful=False)
            with self._cond:
                self._want_wake = False
                wake_r, wake_w, self._wake_r, self._wake_w = self._wake_r, self._wake_w, None, None
                self._cond.notify_all()
            for s in (wake_r, wake_w):
                if s is not None:
                    s.close()

    def _fill(self, room: int) -> bytes:
        """Frames for queued messages while the window has room, about ``room`` bytes of them at most
        (the frame that crosses it included); call with the lock held.

        The messages move from ``_pending`` to ``_unacked`` and take the next TXNRs, in order; the
        frames are built in C loops (``starmap``, ``map``, ``join``), not message by message.
        """
        pending, unacked = self._pending, self._unacked
        txnr = self._next_txnr
        # ref §5 Window / TXNR rules: at most ``window`` unanswered, no TXNR above the session limit.
        count = min(len(pending), self.window - len(unacked), self.session_limit + 1 - txnr)
        if count <= 0 or room <= 0:
            return b""
        msgs = list(starmap(pending.popleft, repeat((), count)))
        if count > 1 and sum(map(len, msgs)) + _SYSLOG_OVERHEAD * count > room:
            # Up to about ``max_batch_bytes`` per write (the frame that crosses it included); the rest waits.
            ends = list(accumulate([len(m) + _SYSLOG_OVERHEAD for m in msgs]))
            keep = min(count, 1 + bisect_left(ends, room))
            pending.extendleft(reversed(msgs[keep:]))
            del msgs[keep:]
            count = keep
        block = _syslog_frames(txnr, msgs)
        size = len(block)
        unacked.extend(msgs)
        self._next_txnr = txnr + count
        resent = min(count, self._resend)
        self._resend -= resent
        self._resent += resent
        self._sent += count - resent
        self._bytes += size
        if not pending and self._dropping:
            self._dropping = False
        return block

    def _serve(self, sock: socket.socket) -> None:
        """Run one session: write while the window has room, read answers, until it ends."""
        wake_r = self._wake_r
        assert wake_r is not None
        out = b""  # frames not written yet (bytes: sent without a copy when the kernel takes them all)
        cap = self.max_batch_bytes
        retry_len = 0  # an SSL write must be retried with the same length (SSL_write)
        self._acked_here = 0  # acks in this session: a session that made none backs off when it breaks
        poller = select.poll()
        sock_fd = sock.fileno()
        poller.register(wake_r, select.POLLIN)
        poller.register(sock_fd, select.POLLIN)
        polling_out = False
        ssl_sock = sock if isinstance(sock, ssl.SSLSocket) else None
        now = time.monotonic()
        waiting_since = now  # the last ack, or when the window was empty
        written_at = now  # the last write progress
        try:
            sock.setblocking(False)
            while True:
                with self._cond:
                    stopping = self._stop.is_set()
                    now = time.monotonic()
                    if not self._unacked:
                        waiting_since = now  # the ack clock starts with the first frame in flight
                    if not out:
                        written_at = now  # the write clock starts with the first byte to write
                    if not stopping and len(out) < cap:
                        block = self._fill(cap - len(out))
                        out = out + block if out else block
                    idle = not out and not self._unacked
                    rollover = self._next_txnr > self.session_limit
                    more = bool(self._pending) and len(self._unacked) < self.window and not rollover
                    self._want_wake = not stopping and not rollover and len(self._unacked) < self.window
                if idle and (stopping or rollover):
                    self._rolling = rollover and not stopping
                    self._close_session(sock)
                    return
                if stopping:  # close() gave up waiting: drop the session, close() counts what is left
                    self._disconnect(graceful=False)
                    return
                if out:
                    attempt = retry_len or len(out)
                    try:
                        n = sock.send(out if attempt == len(out) else out[:attempt])
                    except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                        retry_len = attempt if ssl_sock is not None else 0
                    else:
                        retry_len = 0
                        out = out[n:] if n < len(out) else b""
                        written_at = time.monotonic()
                        with self._lock:
                            self._writes += 1
                if bool(out) != polling_out:
                    polling_out = bool(out)
                    poller.modify(sock_fd, select.POLLIN | (select.POLLOUT if polling_out else 0))
                now = time.monotonic()
                if out and now - written_at > self.write_timeout:
                    raise TimeoutError(f"no write progress for {self.write_timeout:g} s")
                if self._unacked and now - waiting_since > self.ack_timeout:
                    raise TimeoutError(f"no RELP answer for {self.ack_timeout:g} s")
                if more and not out:
                    wait_ms: int | None = 0
                elif out:
                    wait_ms = max(1, int((written_at + self.write_timeout - now) * 1000) + 1)
                elif self._unacked:
                    wait_ms = max(1, int((waiting_since + self.ack_timeout - now) * 1000) + 1)
                else:
                    wait_ms = None
                events = poller.poll(wait_ms)
                readable = ssl_sock is not None and ssl_sock.pending() > 0
                for fd, _ in events:
                    if fd == sock_fd:
                        readable = True
                    else:
                        with contextlib.suppress(BlockingIOError):
                            wake_r.recv(4096)
                if readable:
                    before = self._acked_here
                    frames = self._read(sock)
                    if frames:
                        self._acked_here += self._answers(frames)
                    if self._acked_here != before:
                        waiting_since = time.monotonic()
        except (OSError, TransportError) as exc:
            self._break(exc, self._acked_here)

    def _read(self, sock: socket.socket) -> list[RELPFrame]:
        """Everything readable now, as frames; raises ConnectionResetError at EOF."""
        frames: list[RELPFrame] = []
        reader = self._reader
        while True:
            try:
                chunk = sock.recv(_RECV)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return frames
            if not chunk:
                if frames:  # answer what came before the EOF, then break
                    self._acked_here += self._answers(frames)
                raise ConnectionResetError("the RELP server closed the connection")
            if reader.pending or frames:
                frames += reader.feed(chunk)
            else:
                # A run of plain acks up to the last LF, then (rarely) the start of the next frame.
                cut = chunk.rfind(b"\n") + 1
                if cut == len(chunk) and self._fast_acks(chunk):
                    pass
                elif cut and self._fast_acks(chunk[:cut]):
                    frames += reader.feed(chunk[cut:])
                else:
                    frames += reader.feed(chunk)
            if len(chunk) < _RECV and not isinstance(sock, ssl.SSLSocket):
                return frames

    def _fast_acks(self, run: bytes) -> bool:
        """Acknowledge ``run`` if it is exactly ``200 OK`` answers to the oldest frames in flight, in
        TXNR order; False (nothing done) to take the frame-by-frame path."""
        k = run.count(_ACK_TAIL)
        if not k:
            return False
        with self._lock:
            unacked = self._unacked
            if k > len(unacked):
                return False
            # ref §5 Window: answers come in command order, so they answer the k oldest in flight.
            first = self._next_txnr - len(unacked)
            if run != _plain_acks(first, k):
                return False
            if k == len(unacked):
                unacked.clear()
            else:
                deque(starmap(unacked.popleft, repeat((), k)), 0)
            self._acked += k
            self._backoff_step = 0
            self._retry_delay = 0.0
            self._notify_room()
        self._acked_here += k
        return True

    def _notify_room(self) -> None:
        """After acks (lock held): wake ``flush`` when nothing is left to write, and blocked producers
        when a quarter of the queue is free, so that a producer faster than the server wakes once per
        few windows, not once per answer."""
        held = len(self._pending)
        if not held or (self._blocked and self.max_queue - held - len(self._unacked) >= max(1, self.max_queue // 4)):
            self._cond.notify_all()

    def _answers(self, frames: list[RELPFrame]) -> int:
        """Apply the server's frames: acks, ``500``, ``serverclose``; the number of acks."""
        acked = 0
        with self._cond:
            unacked = self._unacked
            try:
                for frame in frames:
                    if frame.command == "serverclose":
                        # ref §5 Commands: serverclose is a hint with TXNR 0, never answered.
                        raise _SessionBroken("the RELP server sent serverclose")
                    if frame.command != "rsp":
                        raise RELPProtocolError(f"unexpected RELP command {frame.command!r} from the server")
                    # ref §5 Window: answers come in the order of the commands.
                    expected = self._next_txnr - len(unacked)
                    if not unacked or frame.txnr != expected:
                        raise RELPProtocolError(
                            f"rsp for transaction {frame.txnr}, expected {expected if unacked else 'none'}"
                            " (ref §5 Window)"
                        )
                    # ref §5 (wire): imrelp answers a syslog frame with "200 OK".
                    status, text = (200, "OK") if frame.data == b"200 OK" else _rsp_status(frame)[:2]
                    if status == 200:
                        unacked.popleft()
                        acked += 1
                        continue
                    if status == 500:
                        msg = unacked[0]
                        if type(msg) is not _Refused:
                            msg = unacked[0] = _Refused(msg)
                            msg.rejects = 0
                        msg.rejects += 1
                        if msg.rejects >= self.max_rejects:
                            unacked.popleft()
                            self._dropped += 1
                            self._rejected += 1
                            log.error(
                                "%s: message refused %d times (500 %s); dropped: %r",
                                self.url,
                                msg.rejects,
                                text,
                                bytes(msg[:80]),
                            )
                        raise _SessionBroken(f"the RELP server answered 500 {text} to transaction {frame.txnr}")
                    raise RELPProtocolError(f"rsp {frame.txnr} has status {status}, neither 200 nor 500 (ref §5)")
            finally:
                self._acked += acked
                if acked:
                    self._backoff_step = 0
                    self._retry_delay = 0.0
                self._cond.notify_all()
        return acked

    def _break(self, exc: BaseException, acked_here: int) -> None:
        """ref §5 Retransmission: every unanswered command failed; send them again, in order, in a new session."""
        with self._cond:
            again = len(self._unacked)
            self._pending.extendleft(reversed(self._unacked))
            self._unacked.clear()
            self._resend += again  # they go before the messages already waiting to be sent again
            self._failures += 1
            kept = len(self._pending)
            self._cond.notify_all()
        if not acked_here:
            self._back_off()  # a server that opens and then fails must not make us spin
        self.last_error = exc
        log.warning(
            "%s: RELP session lost: %s; %d messages kept, %d of them to send again",
            self.url,
            exc,
            kept,
            again,
        )
        self._disconnect(graceful=False)

    def _close_session(self, sock: socket.socket) -> None:
        """ref §5 Commands / §8.5: send ``close``, accept the empty ``rsp`` (or serverclose, EOF), hang up."""
        deadline = time.monotonic() + self.close_timeout
        txnr = self._next_txnr
        try:
            sock.setblocking(True)
            sock.settimeout(self.close_timeout)
            sock.sendall(b"%d close 0\n" % txnr)
            done = False
            while not done:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no answer to RELP close")
                sock.settimeout(remaining)
                chunk = sock.recv(_RECV)
                if not chunk:
                    break
                for frame in self._reader.feed(chunk):
                    if (frame.command == "rsp" and frame.txnr == txnr) or frame.command == "serverclose":
                        done = True
        except (OSError, TransportError) as exc:
            log.info("%s: RELP close not answered cleanly: %s", self.url, exc)
        self._disconnect(graceful=True)


class RELPTLSSender(RELPSender):
    """RELP over TLS (ref §4: TLS from the first byte). TLS options as ``TLSSender``: ``ca_file``,
    ``ca_path``, ``cert_file``, ``key_file``, ``key_password``, ``verify``, ``server_hostname``,
    ``ssl_context``. A certificate failure stops the sender for good (TLSHandshakeError)."""

    scheme = "relp+tls"

    def __init__(
        self,
        host: str,
        port: int = RELP_DEFAULT_PORTS["relp+tls"],
        *,
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
        super().__init__(host, port, **options)
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
