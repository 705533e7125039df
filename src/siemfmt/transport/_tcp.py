"""Syslog over TCP (RFC 6587): a bounded queue, one writer thread, reconnects with backoff."""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable
from itertools import accumulate, repeat
from typing import Any, cast

from siemfmt.syslog import frame_lf, frame_octet_counting
from siemfmt.transport._base import (
    DEFAULT_PORTS,
    Framing,
    MessageError,
    OnFull,
    OnOversize,
    Payload,
    QueueFullError,
    StreamSender,
    TLSHandshakeError,
    TransportError,
    check_choice,
    live,
    log,
)


class _SizeCache(dict[int, Any]):
    """``size -> make(size)``, remembered for the sizes of ordinary syslog lines (cheap batch framing)."""

    def __init__(self, make: Callable[[int], Any]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, size: int) -> Any:
        value = self.make(size)
        if size < 16_384:
            self[size] = value
        return value


_HEADERS = _SizeCache(lambda n: b"%d " % n)  # RFC 6587 §3.4.1 MSG-LEN SP
_TEXT_HEADERS = _SizeCache(lambda n: f"{n} ")

# Frames are queued in chunks of about this many bytes at most (``send_many`` splits a big batch):
# below glibc's default mmap threshold (128 KiB), so that a chunk's memory is reused from the heap
# rather than mapped and faulted in afresh for every batch, which cost more than the framing itself.
CHUNK_BYTES = 65_536


# The most the writer takes from the queue for one write (default of ``max_batch_bytes``). Writes are
# only this large when messages wait (a receiver slower than the sender), and then the kernel's socket
# buffers (megabytes) hold far more than one write; each write costs the writer thread a few
# round trips through the interpreter lock, which at 64 KiB cost more than half the throughput.
MAX_BATCH_BYTES = 1_048_576


class _Chunk:
    """Messages queued together, in order: frames ``first`` to ``count - 1`` of ``data``, which holds
    them back to back (frames before ``first`` are gone: taken by the writer or dropped).

    ``ends[i]``, the offset at which frame ``i`` ends, is only worked out (``frame_ends``) when a chunk
    is split or a write fails; while ``ends`` is None the chunk is whole (``first`` is 0 and ``data``
    holds exactly ``count`` frames), which is all the writer needs to know in the common case.

    A text chunk holds ASCII ``str`` messages that ``send`` queued unframed (``texts``); the writer
    frames them all at once when it takes the chunk (``framed``: C loops instead of per-message work
    in the caller). ``send`` frames any other message at once and appends it to the newest chunk's
    ``data`` (a ``bytearray``, with ``ends`` kept as it grows); ``send_many`` queues framed chunks.
    """

    __slots__ = ("count", "data", "ends", "first", "texts")

    def __init__(
        self,
        data: bytes | bytearray,
        count: int,
        ends: list[int] | None = None,
        first: int = 0,
        texts: list[str] | None = None,
    ) -> None:
        self.data = data
        self.count = count
        self.ends = ends
        self.first = first
        self.texts = texts

    def framed(self, octets: bool) -> _Chunk:
        """This chunk with ``texts`` (if any) framed into ``data``."""
        texts = self.texts
        if texts is not None:
            self.data = frame_texts(texts, list(map(len, texts)) if octets else None)
            self.count = len(texts)
            self.texts = None
        return self

    def offsets(self, octets: bool) -> list[int]:
        """``ends``, worked out from ``data`` the first time it is needed."""
        if self.ends is None:
            self.ends = frame_ends(self.data, octets)
        return self.ends

    def span(self, first: int, end: int) -> tuple[int, int]:
        """The bytes of frames ``first`` to ``end - 1`` (``ends`` known, or the whole chunk)."""
        ends = self.ends
        if ends is None:
            return 0, len(self.data)
        return (ends[first - 1] if first else 0), ends[end - 1]


def frame_texts(texts: list[str], lengths: list[int] | None) -> bytes:
    """The frames of ASCII messages (characters are octets) back to back: octet counting with their
    ``lengths``, LF trailers without. The caller has checked that each is non-empty ASCII and, for LF
    framing, holds no LF."""
    return _join_texts(texts, lengths).encode()


def _join_texts(texts: list[str], lengths: list[int] | None) -> str:
    """``frame_texts`` before encoding (one join and one encode for them all)."""
    if lengths is not None:  # "LEN SP MSG" (RFC 6587 §3.4.1)
        parts: list[str] = [""] * (2 * len(texts))
        parts[::2] = map(_TEXT_HEADERS.__getitem__, lengths)
        parts[1::2] = texts
        return "".join(parts)
    return "\n".join([*texts, ""])  # MSG LF (RFC 6587 §3.4.2)


def frame_ends(data: bytes | bytearray, octets: bool) -> list[int]:
    """The offset at which each frame of ``data`` ends, read back from the frames themselves: the
    MSG-LEN of each (octet counting) or each LF (no message holds one under LF framing)."""
    ends: list[int] = []
    size = len(data)
    pos = 0
    if octets:
        while pos < size:
            space = data.index(b" ", pos)
            pos = space + 1 + int(data[pos:space])
            ends.append(pos)
    else:
        while pos < size:
            pos = data.index(b"\n", pos) + 1
            ends.append(pos)
    return ends


def _after(views: list[memoryview], done: int) -> list[memoryview]:
    """What is left of ``views`` once their first ``done`` bytes are written."""
    if not done:
        return views
    for i, view in enumerate(views):
        if done < len(view):
            return [view[done:], *views[i + 1 :]]
        done -= len(view)
    return []


_IOV_MAX = 512  # buffers per sendmsg: below every system's IOV_MAX (1024 on Linux)

# TLS writes at most one record's plaintext at a time (RFC 8446 §5.1, RFC 5246 §6.2.1: 2^14 bytes).
# ``SSLSocket.send`` writes all it is given or raises; had it been given several records and timed
# out part way, the records already out would reach the receiver uncounted and be written again. One
# record per write: a write that fails leaves at most a partial record, which the receiver cannot
# decrypt, so no message arrives twice.
TLS_RECORD = 16_384


def _poller_for(sock: socket.socket) -> Any:
    """A ``select.poll`` object watching ``sock`` for ``peer_closed``; None without ``poll`` (Windows)."""
    if not hasattr(select, "poll"):  # pragma: no cover - Windows
        return None
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    return poller


def peer_closed(sock: socket.socket, timeout: float, poller: Any = None) -> bool:
    """True if the peer has closed or reset the connection, seen without blocking and without writing.

    Syslog receivers never talk back (RFC 6587 §3.4, RFC 5425 §4), so a readable socket means EOF, a
    reset, or TLS housekeeping such as TLS 1.3 session tickets, which a non-blocking read consumes.
    Checked before each write, this keeps a batch from being written into a connection the receiver
    already closed, where the kernel would accept it and then lose it. ``poller``: a ``select.poll``
    object with ``sock`` registered, kept for the connection (one less object per write).
    """
    if poller is None:
        poller = _poller_for(sock)
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        readable = True
    elif poller is not None:
        readable = bool(poller.poll(0))
    else:  # pragma: no cover - Windows has no poll()
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


class TCPSender(StreamSender):
    """Syslog over TCP (RFC 6587) through a bounded queue and one writer thread.

    ``send`` frames the message in the caller's thread (so a bad message raises there) and queues it.
    The writer connects on the first message, joins queued frames into writes of up to
    ``max_batch_bytes``, checks before each write that the receiver has not hung up, and after a
    failure reconnects (at once, then ``backoff_base`` doubling to ``backoff_cap``, with jitter) and
    writes again every frame the kernel did not accept. See ``siemfmt.transport.connect`` for options.
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
        max_batch_bytes: int = MAX_BATCH_BYTES,
        keepalive: bool = True,
        keepalive_idle: int = 60,
        keepalive_interval: int = 10,
        keepalive_count: int = 5,
        exit_timeout: float = 5.0,
    ) -> None:
        super().__init__(host, port, max_size=max_size, on_oversize=on_oversize, exit_timeout=exit_timeout)
        # RFC 6587 §3.4.1 octet counting or §3.4.2 non-transparent framing with an LF trailer.
        check_choice("framing", framing, ("lf", "octet-counting"))
        check_choice("on_full", on_full, ("block", "drop-oldest", "error"))
        self._stream_options(
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
        self.framing: Framing = framing
        self._frame: Callable[[bytes], bytes] = frame_lf if framing == "lf" else frame_octet_counting
        self._cond = threading.Condition(self._lock)
        self._octets = framing == "octet-counting"
        self._limited = self.max_size is not None  # a size rule: every message is encoded when sent
        self._chunk_bytes = min(CHUNK_BYTES, self.max_batch_bytes)  # the most a queued chunk holds, about
        self._pending: deque[_Chunk] = deque()
        self._tail: _Chunk | None = None  # the newest chunk while ``send`` may still append to it
        self._held = 0  # messages in ``_pending``
        # ASCII text that ``send`` queued without the lock, newest last: the queue's tail, moved into
        # ``_pending`` by ``_gather_texts`` (lock held) before anything else is queued or taken.
        self._texts: list[str] = []
        self._fast = False  # ``send`` may append to ``_texts``: the writer runs, no size rule, not closed
        # The messages the writer took and has not written in full: (chunk, first, end) ranges.
        self._batch: list[tuple[_Chunk, int, int]] = []
        self._inflight = 0  # messages in ``_batch``
        self._idle = False  # the writer waits for messages (only then does queueing wake it)
        self._blocked = 0  # producers waiting for room (on_full="block")
        self._wake_room = 0  # the room the first of them waits for
        self._stop = threading.Event()
        self._connect_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._poller: Any = None  # select.poll for _sock, where the system has it
        self._thread: threading.Thread | None = None
        self._fatal: TransportError | None = None
        self._closing = False
        self._ever_connected = False
        self._backoff_step = 0  # failed attempts since a write last went through
        self._retry_delay = 0.0  # wait before the next connect
        self._wrote_on_connection = False
        self._dropping = False

    # --- public -----------------------------------------------------------------------------------

    def open(self, timeout: float | None = None) -> None:
        """Connect (and for TLS, handshake) now; raise TransportError on failure instead of retrying.

        ``timeout`` overrides ``connect_timeout`` for this attempt. Later messages use this connection.
        """
        self._check_usable()
        with self._connect_lock:
            if self._sock is not None:
                return
            try:
                sock = self._connect_attempt(self.connect_timeout if timeout is None else timeout)
            except TLSHandshakeError:
                raise
            except OSError as exc:
                with self._lock:
                    self._failures += 1
                self.last_error = exc
                raise TransportError(f"{self.url}: cannot connect: {exc}") from exc
            self._install(sock)
        self._start_writer()

    def send(self, message: Payload) -> None:
        """Check one message and queue it; raises MessageError for a message that cannot be framed."""
        # The common case takes no lock: a non-empty ASCII str that the framing takes as it is (no LF
        # under LF framing) is appended to ``_texts`` (list.append is atomic) and framed later by the
        # writer, together with the others. Everything else is framed here (``_send_frame``).
        if (
            self._fast
            and self._fatal is None
            and type(message) is str
            and message
            and message.isascii()
            and (self._octets or "\n" not in message)
        ):
            texts = self._texts
            if len(texts) + self._held + self._inflight < self.max_queue:
                texts.append(message)
                if self._idle or self._closed:
                    self._appended(message)
                return
        self._send_frame(message)

    def _appended(self, message: str) -> None:
        """After ``send`` appended ``message`` to ``_texts``: wake the writer if it waits for messages.

        If the sender was closed meanwhile: when ``message`` is still in ``_texts``, it came after
        ``close`` had written or counted everything, so it is taken back and the caller gets the error;
        when it is gone, ``close`` wrote it or counted it as dropped, and the call returns normally.
        (It is looked for by identity: should another thread race ``close`` with this very object,
        one of the two calls raises, which is the one count that matters.)"""
        with self._cond:
            if self._closed:
                texts = self._texts
                for i in range(len(texts) - 1, -1, -1):
                    if texts[i] is message:
                        del texts[i]
                        self._check_open()  # raises
                return
            self._cond.notify_all()

    def _gather_texts(self) -> None:
        """Move the messages in ``_texts`` into the queue as text chunks (framed when the writer takes
        them); lock held. Producers only append to the list and every taker holds the lock, so the
        slice copied is the slice deleted, whatever was appended in between."""
        texts = self._texts
        n = len(texts)
        if not n:
            return
        self._held += n  # before the delete: ``send`` reads the sum without the lock, never too small
        taken = texts[:n]
        del texts[:n]
        sample = taken[:32]  # messages in a stream are of a size: the first few tell how many fit a chunk
        per = self._per_chunk(sum(map(len, sample)), len(sample))
        pending = self._pending
        for start in range(0, n, per):
            part = taken[start : start + per]
            pending.append(_Chunk(b"", len(part), texts=part))
        self._tail = None

    def _send_frame(self, message: Payload) -> None:
        """``send`` for anything but plain ASCII text (or when the queue is full, closed, not started):
        framed (and checked) here, queued as bytes after what ``_texts`` holds."""
        if self._closed or self._fatal is not None:
            self._check_usable()
        data = self._encode_fast(message)
        if self._octets:
            frame = b"%d %s" % (len(data), data)
        elif b"\n" in data:
            frame = self._frame_one(data)  # raises MessageError
        else:
            frame = data + b"\n"
        if self._thread is None:
            self._start_writer()
        with self._lock:
            if self._closed:
                self._check_open()
            self._gather_texts()
            if self._held + self._inflight < self.max_queue:
                tail = self._tail
                if tail is None or tail.ends is None:
                    tail = self._tail = _Chunk(bytearray(frame), 1, [len(frame)])
                    self._pending.append(tail)
                else:
                    buf = cast("bytearray", tail.data)
                    buf += frame
                    tail.ends.append(len(buf))
                    tail.count += 1
                    if len(buf) >= self._chunk_bytes:
                        self._tail = None  # full: the next message starts a new chunk
                self._held += 1
                if self._idle:
                    self._cond.notify_all()
                return
            self._put_full(_Chunk(frame, 1))

    def send_many(self, messages: Iterable[Payload]) -> None:
        """Frame several messages (all checked before any is queued) and queue them in order."""
        self._check_usable()
        items = messages if type(messages) is list else list(messages)
        if not items:
            return
        chunks = self._frame_batch(items)
        if self._thread is None:
            self._start_writer()
        with self._lock:
            if self._closed:
                self._check_open()
            self._gather_texts()
            count = len(items)
            if self._held + self._inflight + count <= self.max_queue:
                self._pending.extend(chunks)
                self._tail = None
                self._held += count
                if self._idle:
                    self._cond.notify_all()
                return
            for chunk in chunks:  # as if queued one chunk after another
                if self._held + self._inflight + chunk.count <= self.max_queue:
                    self._pending.append(chunk)
                    self._tail = None
                    self._held += chunk.count
                else:
                    self._put_full(chunk)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued message has been written to the socket (handed to the kernel).

        True when nothing is left; False when ``timeout`` passed first, or at once when the sender is
        closed or failed for good with messages left (``state``, ``last_error`` and the log say why).
        """
        return self._wait_done(timeout)

    def _busy_locked(self) -> bool:
        return bool(self._held or self._inflight or self._texts)

    def close(self, timeout: float | None = 5.0) -> None:
        """Flush for up to ``timeout`` seconds, stop the writer, close the socket (TLS: close_notify).

        Messages still queued after that are dropped, counted in ``stats.dropped`` and logged.
        """
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._fast = False
            self._stop.set()
            self._cond.notify_all()
            sock = self._sock
            stuck = self._busy_locked()
        if sock is not None and stuck:
            # Unblock a writer stuck on a receiver that does not read; the kernel then refuses any
            # write. socket.socket.shutdown, not SSLSocket's, leaves the TLS layer in place.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(max(self.write_timeout, self.connect_timeout) + 1.0)
        with self._cond:
            left = self._held + self._inflight + len(self._texts)
            self._dropped += left
            self._texts.clear()
            self._pending.clear()
            self._tail = None
            self._held = 0
            self._batch = []
            self._inflight = 0
            self._cond.notify_all()
        self._disconnect(graceful=True)
        live.discard(self)
        if left:
            log.warning("%s: closed with %d unsent messages dropped", self.url, left)
        else:
            log.info("%s: closed", self.url)

    # --- queueing ---------------------------------------------------------------------------------

    def _frame_one(self, message: Payload) -> bytes:
        data = self._encode(message)
        try:
            return self._frame(data)
        except ValueError as exc:  # frame_lf: an LF would split the message (RFC 6587 §3.4.2)
            raise MessageError(f"{exc}; use framing='octet-counting' or escape it") from exc

    def _frame_batch(self, items: list[Payload]) -> list[_Chunk]:
        """The frames of ``items`` in chunks of about ``CHUNK_BYTES`` (or ``max_batch_bytes``) at most;
        every message is checked first, so a bad one raises before anything is queued.

        Two fast paths work on the whole batch at once (C loops: ``map``, ``join``): ASCII text, then
        any ``str`` that needs no truncation; anything else goes message by message.
        """
        if self.max_size is None:
            fast = self._frame_ascii(items)
            if fast is not None:
                return fast
        strs = cast("list[str]", items)  # until str.encode meets something else
        try:
            encoded = list(map(str.encode, strs))  # TypeError at the first item that is not a str
        except (TypeError, UnicodeEncodeError):
            return self._frame_each(items)
        lengths = list(map(len, encoded))
        if not min(lengths) or (self.max_size is not None and max(lengths) > self.max_size):
            return self._frame_each(items)  # raises, or truncates and counts
        octets = self._octets
        if not octets and any(map(bytes.__contains__, encoded, repeat(b"\n"))):
            return self._frame_each(items)  # raises MessageError: an LF would split the message
        chunks: list[_Chunk] = []
        for start, end in self._chunk_ranges(lengths):
            if octets:  # "LEN SP MSG" (RFC 6587 §3.4.1), LEN in octets
                pieces: list[bytes] = [b""] * (2 * (end - start))
                pieces[::2] = map(_HEADERS.__getitem__, lengths[start:end])
                pieces[1::2] = encoded[start:end]
                chunks.append(_Chunk(b"".join(pieces), end - start))
            else:  # MSG LF (RFC 6587 §3.4.2)
                chunks.append(_Chunk(b"\n".join([*encoded[start:end], b""]), end - start))
        return chunks

    def _frame_ascii(self, items: list[Payload]) -> list[_Chunk] | None:
        """``_frame_batch`` for non-empty ASCII ``str`` messages (characters are octets); None for any
        other batch. ASCII is checked on each joined chunk at once: its UTF-8 encoding has as many
        octets as it has characters exactly when every character is ASCII."""
        try:
            lengths = list(map(len, items))
        except TypeError:
            return None
        if not min(lengths):
            return None
        strs = cast("list[str]", items)
        octets = self._octets
        chunks: list[_Chunk] = []
        for start, end in self._chunk_ranges(lengths):
            try:
                text = _join_texts(strs[start:end], lengths[start:end] if octets else None)
                data = text.encode()  # TypeError above for an item that is not a str
            except (TypeError, UnicodeEncodeError):
                return None
            if len(data) != len(text) or (not octets and data.count(b"\n") != end - start):
                return None  # not ASCII, or an LF in a message (LF framing)
            chunks.append(_Chunk(data, end - start))
        return chunks

    def _chunk_ranges(self, lengths: list[int]) -> list[tuple[int, int]]:
        """``(start, end)`` of the messages each chunk of a batch takes (``_per_chunk``)."""
        count = len(lengths)
        per = self._per_chunk(sum(lengths), count)
        return [(start, min(count, start + per)) for start in range(0, count, per)]

    def _per_chunk(self, size: int, count: int) -> int:
        """How many messages of ``count`` that measure ``size`` in all fit a chunk of ``CHUNK_BYTES`` (or
        ``max_batch_bytes``), by their mean size plus a few bytes of header or trailer; one at least."""
        return max(1, self._chunk_bytes * count // (size + 6 * count))

    def _frame_each(self, items: list[Payload]) -> list[_Chunk]:
        frames = [self._frame_one(m) for m in items]
        return [_Chunk(b"".join(frames), len(frames), list(accumulate(map(len, frames))))]

    def _queued_locked(self) -> int:
        return self._held + self._inflight + len(self._texts)

    def _put_full(self, chunk: _Chunk) -> None:
        """Queue the frames of a new ``chunk`` when they do not all fit: ``on_full`` decides.

        Called with the lock held. The result is what queueing them one by one would give: the
        sender holds at most ``max_queue`` messages, counting the batch being written; ``error``
        queues what fits and raises; ``drop-oldest`` drops the oldest message not already being
        written (a new one when every held message is being written); ``block`` waits for room.
        """
        count = chunk.count
        self._tail = None
        try:
            if self.on_full == "drop-oldest":
                room = self.max_queue - self._inflight  # for the queue, counting what it holds now
                # At most what is there: lock-free ``send``s of other threads can overfill the queue.
                excess = min(self._held + count, self._held + count - room)
                first = max(0, excess - self._held)  # the new messages dropped too
                if excess > 0:
                    self._dropped += excess
                    self._drop_pending(min(excess, self._held))
                    if not self._dropping:
                        self._dropping = True
                        log.warning("%s: queue full (%d), dropping the oldest", self.url, self.max_queue)
                if first < count:
                    if first:
                        chunk.offsets(self._octets)
                        chunk.first = first
                    self._pending.append(chunk)
                    self._held += count - first
                return
            first = 0
            deadline = None
            wanted = 1  # after a wait: room for this many (or for all that is left), not just one
            while True:
                # Counting what other threads' ``send`` appended to ``_texts`` meanwhile.
                room = self.max_queue - self._held - self._inflight - len(self._texts)
                if room >= min(wanted, count - first):
                    last = min(count, first + room)
                    if not first and last == count:
                        self._pending.append(chunk)
                    else:
                        ends = chunk.offsets(self._octets)[:last]
                        self._pending.append(_Chunk(chunk.data, last, ends, first))
                    # Not the chunk ``send`` appends to any more: while this thread waited, another may
                    # have queued one (``_tail``) that now comes before these frames.
                    self._tail = None
                    self._held += last - first
                    first = last
                    if first == count:
                        return
                if self.on_full == "error":
                    raise QueueFullError(f"{self.url}: queue full ({self.max_queue} messages)")
                if deadline is None and self.block_timeout is not None:
                    deadline = time.monotonic() + self.block_timeout
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    if wanted > 1:  # out of time: any room will do
                        wanted = 1
                        continue
                    raise QueueFullError(
                        f"{self.url}: queue full ({self.max_queue} messages) for {self.block_timeout} s"
                    )
                # Wait for room for a quarter of the queue, so that a producer faster than the network
                # wakes once per few batches written, not once per batch.
                wanted = max(1, self.max_queue // 4)
                need = min(wanted, count - first)
                self._wake_room = need if not self._blocked else min(self._wake_room, need)
                self._blocked += 1
                self._cond.notify_all()  # the writer may be asleep while frames wait
                try:
                    self._cond.wait(remaining)
                finally:
                    self._blocked -= 1
                self._check_usable()
        finally:
            self._cond.notify_all()

    def _drop_pending(self, n: int) -> None:
        """Drop the ``n`` oldest queued messages (not the batch being written). Lock held."""
        pending = self._pending
        while n:
            chunk = pending[0].framed(self._octets)
            left = chunk.count - chunk.first
            if left > n:
                chunk.offsets(self._octets)
                chunk.first += n
                self._held -= n
                if chunk is self._tail:
                    self._tail = None  # an open chunk is only ever appended to, never advanced
                return
            pending.popleft()
            if chunk is self._tail:
                self._tail = None
            self._held -= left
            n -= left

    def _start_writer(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name=f"siemfmt-{self.url}", daemon=True)
                self._thread.start()
                self._fast = not self._limited

    # --- the writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with self._cond:
                    # ``_idle`` is set before the last look at the queue: a ``send`` that appends after
                    # that look sees it and wakes this wait (``_appended``).
                    self._idle = True
                    try:
                        while not (self._batch or self._pending or self._texts or self._stop.is_set()):
                            self._cond.wait()
                    finally:
                        self._idle = False
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
        """Move messages from the queue into the batch, up to ``max_batch_bytes`` (one message at least)."""
        self._gather_texts()
        pending, budget = self._pending, self.max_batch_bytes
        batch: list[tuple[_Chunk, int, int]] = []
        taken = 0
        while pending:
            chunk = pending[0]
            if chunk is self._tail:
                self._tail = None  # the writer reads it from now on: ``send`` starts a new chunk
            chunk.framed(self._octets)
            first, count = chunk.first, chunk.count
            start, stop = chunk.span(first, count)
            if stop - start <= budget:  # the whole chunk fits
                pending.popleft()
                batch.append((chunk, first, count))
                taken += count - first
                budget -= stop - start
                continue
            if batch:
                break  # the next write starts with it
            ends = chunk.offsets(self._octets)
            end = max(first + 1, bisect_right(ends, start + budget, first, count))  # one frame at least
            if end == count:
                pending.popleft()  # its last frame: no empty chunk stays queued
            else:
                chunk.first = end
            batch.append((chunk, first, end))
            taken += end - first
            break
        self._batch = batch
        # ``send`` reads these without the lock: in this order their sum is never too small.
        self._inflight = taken
        self._held -= taken
        if not pending and self._dropping:
            self._dropping = False

    def _install(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sock = sock
            self._poller = _poller_for(sock)
            again = self._ever_connected
            if again:
                self._reconnects += 1
            self._ever_connected = True
        self._wrote_on_connection = False
        log.info("%s: %s", self.url, "reconnected" if again else "connected")
        return sock

    def _connect_attempt(self, timeout: float) -> socket.socket:
        """A new connected socket (TLS: after the handshake); raises OSError."""
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        try:
            self._tune(sock)
            sock = self._wrap(sock, timeout)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(self.write_timeout)
        return sock

    def _wrap(self, sock: socket.socket, timeout: float) -> socket.socket:
        """Plain TCP: the socket itself. TLS overrides this with the handshake."""
        return sock

    def _write(self, sock: socket.socket) -> None:
        """Write the batch; on failure keep the messages not written in full and drop the connection."""
        batch = self._batch
        views = [memoryview(c.data)[slice(*c.span(i, j))] for c, i, j in batch]
        size = sum(map(len, views))
        gather = type(sock) is socket.socket  # chunks go out in one write, uncopied; TLS: one by one
        done = writes = 0
        try:
            while done < size:
                if peer_closed(sock, self.write_timeout, self._poller):
                    raise ConnectionResetError("the receiver closed the connection")
                writes += 1
                rest = _after(views, done)
                if not gather:
                    done += sock.send(rest[0][:TLS_RECORD])
                elif len(rest) > 1:
                    done += sock.sendmsg(rest[:_IOV_MAX])
                else:
                    done += sock.send(rest[0])
        except OSError as exc:
            self._lost(done, writes, exc)
            return
        finally:
            for v in views:
                v.release()
        with self._cond:
            self._writes += writes
            self._sent += self._inflight
            self._bytes += size
            self._batch = []
            self._inflight = 0
            held = self._held
            if not held or (self._blocked and self.max_queue - held >= self._wake_room):
                self._cond.notify_all()  # flush() waits for an empty queue, blocked producers for room
        self._backoff_step = 0
        self._retry_delay = 0.0
        self._wrote_on_connection = True

    def _lost(self, done: int, writes: int, exc: OSError) -> None:
        """Account for a broken write: messages written in full count as sent, the rest stay queued."""
        batch = self._batch
        count = 0
        left = done
        kept: list[tuple[_Chunk, int, int]] = []
        partial = 0
        for n, (chunk, first, end) in enumerate(batch):
            ends = chunk.offsets(self._octets)
            start = ends[first - 1] if first else 0
            if left >= ends[end - 1] - start:
                left -= ends[end - 1] - start
                count += end - first
                continue
            whole = bisect_right(ends, start + left, first, end)  # frames before it were written in full
            count += whole - first
            partial = start + left - (ends[whole - 1] if whole else 0)
            kept = [(chunk, whole, end), *batch[n + 1 :]]
            break
        with self._cond:
            self._batch = kept
            self._inflight -= count
            self._sent += count
            self._bytes += done
            self._writes += writes
            self._failures += 1
            held = self._inflight + self._held
            self._cond.notify_all()
        if self._wrote_on_connection or count:
            self._backoff_step = 0  # a connection that worked: reconnect at once
            self._retry_delay = 0.0
        else:
            self._back_off()  # a receiver that accepts and hangs up must not make us spin
        self.last_error = exc
        log.warning(
            "%s: connection lost: %s; %d messages kept to write again%s",
            self.url,
            exc,
            held,
            f" (the first had {partial} bytes written)" if partial else "",
        )
        self._disconnect(graceful=False)

    def _disconnect(self, graceful: bool) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
            self._poller = None
        if sock is None:
            return
        if graceful and isinstance(sock, ssl.SSLSocket):
            # RFC 5425 §4.4: close with close_notify. Some servers close without answering it.
            with contextlib.suppress(OSError, ValueError):
                sock.settimeout(1.0)
                sock.unwrap()
        # Read what the receiver sent first (TLS 1.3 session tickets, say): closing a socket with unread
        # data makes the kernel reset the connection, which throws away what it had accepted from us
        # and not yet delivered; a plain close lets a receiver that was only slow still read it.
        with contextlib.suppress(OSError, ValueError):
            peer_closed(sock, 0.0)
        sock.close()
