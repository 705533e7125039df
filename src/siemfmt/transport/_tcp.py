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
from itertools import accumulate
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
_FRAME_SIZES = _SizeCache(lambda n: n + len(b"%d " % n))
_PLUS_ONE = (1).__add__  # an LF trailer


class _Chunk:
    """Frames queued together: ``data`` holds them back to back, frame ``i`` ends at ``ends[i]``;
    frames before ``first`` are gone (taken by the writer or dropped). ``send`` appends to the newest
    chunk (a ``bytearray``) until the writer takes it; ``send_many`` queues one chunk per call."""

    __slots__ = ("data", "ends", "first")

    def __init__(self, data: bytes | bytearray, ends: list[int], first: int = 0) -> None:
        self.data = data
        self.ends = ends
        self.first = first


def peer_closed(sock: socket.socket, timeout: float) -> bool:
    """True if the peer has closed or reset the connection, seen without blocking and without writing.

    Syslog receivers never talk back (RFC 6587 §3.4, RFC 5425 §4), so a readable socket means EOF, a
    reset, or TLS housekeeping such as TLS 1.3 session tickets, which a non-blocking read consumes.
    Checked before each write, this keeps a batch from being written into a connection the receiver
    already closed, where the kernel would accept it and then lose it.
    """
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        readable = True
    elif hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
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
        max_batch_bytes: int = 65_536,
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
        self._pending: deque[_Chunk] = deque()
        self._tail: _Chunk | None = None  # the newest chunk while ``send`` may still append to it
        self._held = 0  # messages in ``_pending``
        # The messages the writer took and has not written in full: (chunk, first, end) ranges.
        self._batch: list[tuple[_Chunk, int, int]] = []
        self._inflight = 0  # messages in ``_batch``
        self._idle = False  # the writer waits for messages (only then does queueing wake it)
        self._blocked = 0  # producers waiting for room (on_full="block")
        self._wake_room = 0  # the room the first of them waits for
        self._stop = threading.Event()
        self._connect_lock = threading.Lock()
        self._sock: socket.socket | None = None
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
        """Frame one message and queue it; raises MessageError for a message that cannot be framed."""
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
            if self._held + self._inflight < self.max_queue:
                tail = self._tail
                if tail is None:
                    tail = self._tail = _Chunk(bytearray(frame), [len(frame)])
                    self._pending.append(tail)
                else:
                    buf = tail.data
                    buf += frame
                    tail.ends.append(len(buf))
                    if len(buf) >= self.max_batch_bytes:
                        self._tail = None  # full: the next message starts a new chunk
                self._held += 1
                if self._idle:
                    self._cond.notify_all()
                return
            self._put_full(frame, [len(frame)])

    def send_many(self, messages: Iterable[Payload]) -> None:
        """Frame several messages (all checked before any is queued) and queue them in order."""
        self._check_usable()
        items = messages if type(messages) is list else list(messages)
        if not items:
            return
        data, ends = self._frame_batch(items)
        if self._thread is None:
            self._start_writer()
        with self._lock:
            if self._closed:
                self._check_open()
            if self._held + self._inflight + len(ends) <= self.max_queue:
                self._pending.append(_Chunk(data, ends))
                self._tail = None
                self._held += len(ends)
                if self._idle:
                    self._cond.notify_all()
                return
            self._put_full(data, ends)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued message has been written to the socket (handed to the kernel).

        True when nothing is left; False when ``timeout`` passed first, or at once when the sender is
        closed or failed for good with messages left (``state``, ``last_error`` and the log say why).
        """
        return self._wait_done(timeout)

    def _busy_locked(self) -> bool:
        return bool(self._held or self._inflight)

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
            self._stop.set()
            self._cond.notify_all()
            sock = self._sock
            stuck = bool(self._held or self._inflight)
        if sock is not None and stuck:
            # Unblock a writer stuck on a receiver that does not read; the kernel then refuses any
            # write. socket.socket.shutdown, not SSLSocket's, leaves the TLS layer in place.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(max(self.write_timeout, self.connect_timeout) + 1.0)
        with self._cond:
            left = self._held + self._inflight
            self._dropped += left
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

    def _frame_batch(self, items: list[Payload]) -> tuple[bytes, list[int]]:
        """The frames of ``items`` back to back and the end offset of each; every message is checked
        first, so a bad one raises before anything is queued.

        The fast path, for ``str`` messages that need no truncation, works on the whole batch at once
        (C loops: ``map``, ``join``, ``accumulate``); anything else goes message by message.
        """
        strs = cast("list[str]", items)  # until str.isascii or str.encode meets something else
        texts: list[str] | None = strs
        encoded: list[bytes] = []
        try:
            if all(map(str.isascii, strs)):  # TypeError at the first item that is not a str
                lengths = list(map(len, strs))
            else:
                texts = None
                encoded = list(map(str.encode, strs))
                lengths = list(map(len, encoded))
        except (TypeError, UnicodeEncodeError):
            return self._frame_each(items)
        if not min(lengths) or (self.max_size is not None and max(lengths) > self.max_size):
            return self._frame_each(items)  # raises, or truncates and counts
        count = len(lengths)
        if self._octets:  # "LEN SP MSG" (RFC 6587 §3.4.1), LEN in octets
            parts: list[Any] = [None] * (2 * count)
            if texts is not None:  # ASCII: characters are octets; encode the joined batch once
                parts[::2] = map(_TEXT_HEADERS.__getitem__, lengths)
                parts[1::2] = texts
                data = "".join(parts).encode()
            else:
                parts[::2] = map(_HEADERS.__getitem__, lengths)
                parts[1::2] = encoded
                data = b"".join(parts)
            return data, list(accumulate(map(_FRAME_SIZES.__getitem__, lengths)))
        # LF trailer (RFC 6587 §3.4.2): the joined batch holds exactly one LF per message, or one of
        # them holds an LF itself.
        if texts is not None:
            text = "\n".join([*texts, ""])
            if text.count("\n") != count:
                return self._frame_each(items)  # raises MessageError
            data = text.encode()
        else:
            data = b"\n".join([*encoded, b""])
            if data.count(b"\n") != count:
                return self._frame_each(items)  # raises MessageError
        return data, list(accumulate(map(_PLUS_ONE, lengths)))

    def _frame_each(self, items: list[Payload]) -> tuple[bytes, list[int]]:
        frames = [self._frame_one(m) for m in items]
        return b"".join(frames), list(accumulate(map(len, frames)))

    def _queued_locked(self) -> int:
        return self._held + self._inflight

    def _put_full(self, data: bytes, ends: list[int]) -> None:
        """Queue the frames of ``data`` (ending at ``ends``) when they do not all fit: ``on_full`` decides.

        Called with the lock held. The result is what queueing them one by one would give: the
        sender holds at most ``max_queue`` messages, counting the batch being written; ``error``
        queues what fits and raises; ``drop-oldest`` drops the oldest message not already being
        written (a new one when every held message is being written); ``block`` waits for room.
        """
        count = len(ends)
        self._tail = None
        try:
            if self.on_full == "drop-oldest":
                room = self.max_queue - self._inflight  # for the queue, counting what it holds now
                excess = self._held + count - room
                first = max(0, excess - self._held)  # the new messages dropped too
                if excess > 0:
                    self._dropped += excess
                    self._drop_pending(min(excess, self._held))
                    if not self._dropping:
                        self._dropping = True
                        log.warning("%s: queue full (%d), dropping the oldest", self.url, self.max_queue)
                if first < count:
                    self._pending.append(_Chunk(data, ends, first))
                    self._held += count - first
                return
            first = 0
            deadline = None
            wanted = 1  # after a wait: room for this many (or for all that is left), not just one
            while True:
                room = self.max_queue - self._held - self._inflight
                if room >= min(wanted, count - first):
                    last = min(count, first + room)
                    self._pending.append(_Chunk(data, ends[:last], first))
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
            chunk = pending[0]
            left = len(chunk.ends) - chunk.first
            if left > n:
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

    # --- the writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with self._cond:
                    while not self._batch and not self._pending and not self._stop.is_set():
                        self._idle = True
                        try:
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
        pending, budget = self._pending, self.max_batch_bytes
        batch: list[tuple[_Chunk, int, int]] = []
        taken = 0
        while pending:
            chunk = pending[0]
            if chunk is self._tail:
                self._tail = None  # the writer reads it from now on: ``send`` starts a new chunk
            ends, first = chunk.ends, chunk.first
            start = ends[first - 1] if first else 0
            if ends[-1] - start <= budget:  # the whole chunk fits
                pending.popleft()
                batch.append((chunk, first, len(ends)))
                taken += len(ends) - first
                budget -= ends[-1] - start
                continue
            end = bisect_right(ends, start + budget, first)  # the frames that fit
            if end == first:
                if batch:
                    break
                end = first + 1  # one frame at least, however large
            chunk.first = end
            batch.append((chunk, first, end))
            taken += end - first
            break
        self._batch = batch
        self._held -= taken
        self._inflight = taken
        if not pending and self._dropping:
            self._dropping = False

    def _install(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sock = sock
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
        views = [memoryview(c.data)[c.ends[i - 1] if i else 0 : c.ends[j - 1]] for c, i, j in batch]
        view = views[0] if len(views) == 1 else memoryview(b"".join(views))
        size = len(view)
        done = writes = 0
        try:
            while done < size:
                if peer_closed(sock, self.write_timeout):
                    raise ConnectionResetError("the receiver closed the connection")
                writes += 1
                done += sock.send(view[done:] if done else view)
        except OSError as exc:
            self._lost(done, writes, exc)
            return
        finally:
            view.release()
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
            ends = chunk.ends
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
        if sock is None:
            return
        if graceful and isinstance(sock, ssl.SSLSocket):
            # RFC 5425 §4.4: close with close_notify. Some servers close without answering it.
            with contextlib.suppress(OSError, ValueError):
                sock.settimeout(1.0)
                sock.unwrap()
        sock.close()
