"""Syslog over TCP (RFC 6587): a bounded queue, one writer thread, reconnects with backoff."""

from __future__ import annotations

import contextlib
import random
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from siemfmt.syslog import frame_lf, frame_octet_counting
from siemfmt.transport._base import (
    DEFAULT_PORTS,
    Framing,
    MessageError,
    OnFull,
    OnOversize,
    Payload,
    QueueFullError,
    Sender,
    TLSHandshakeError,
    TransportError,
    check_choice,
    check_positive,
    live,
    log,
)


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


class TCPSender(Sender):
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
        for name, value in (
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
        self.framing: Framing = framing
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
        self._frame: Callable[[bytes], bytes] = frame_lf if framing == "lf" else frame_octet_counting
        self._cond = threading.Condition(self._lock)
        self._pending: deque[bytes] = deque()
        self._batch: list[bytes] = []  # frames the writer took and has not written in full
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

    def open(self, timeout: float | None = None) -> None:
        """Connect (and for TLS, handshake) now; raise TransportError on failure instead of retrying.

        ``timeout`` overrides ``connect_timeout`` for this attempt. Later messages use this connection.
        """
        self._check_usable()
        with self._connect_lock:
            if self._sock is not None:
                return
            try:
                sock = self._connect(self.connect_timeout if timeout is None else timeout)
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
        self._check_usable()
        self._enqueue([self._frame_one(message)])

    def send_many(self, messages: Iterable[Payload]) -> None:
        """Frame several messages (all checked before any is queued) and queue them in order."""
        self._check_usable()
        self._enqueue([self._frame_one(m) for m in messages])

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued message has been written to the socket (handed to the kernel).

        True when nothing is left; False when ``timeout`` passed first, or at once when the sender is
        closed or failed for good with messages left (``state``, ``last_error`` and the log say why).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending or self._batch:
                if self._fatal is not None:
                    return False
                if self._thread is None or not self._thread.is_alive():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

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
            stuck = bool(self._pending or self._batch)
        if sock is not None and stuck:
            # Unblock a writer stuck on a receiver that does not read; the kernel then refuses any
            # write. socket.socket.shutdown, not SSLSocket's, leaves the TLS layer in place.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(max(self.write_timeout, self.connect_timeout) + 1.0)
        with self._cond:
            left = len(self._pending) + len(self._batch)
            self._dropped += left
            self._pending.clear()
            self._batch = []
            self._cond.notify_all()
        self._disconnect(graceful=True)
        live.discard(self)
        if left:
            log.warning("%s: closed with %d unsent messages dropped", self.url, left)
        else:
            log.info("%s: closed", self.url)

    # --- queueing ---------------------------------------------------------------------------------

    def _check_usable(self) -> None:
        self._check_open()
        if self._fatal is not None:
            raise self._fatal

    def _frame_one(self, message: Payload) -> bytes:
        data = self._encode(message)
        try:
            return self._frame(data)
        except ValueError as exc:  # frame_lf: an LF would split the message (RFC 6587 §3.4.2)
            raise MessageError(f"{exc}; use framing='octet-counting' or escape it") from exc

    def _queued_locked(self) -> int:
        return len(self._pending) + len(self._batch)

    def _enqueue(self, frames: list[bytes]) -> None:
        """Queue frames in order. The sender holds at most ``max_queue`` messages, counting the batch
        being written; ``drop-oldest`` drops the oldest message not already being written."""
        if not frames:
            return
        self._start_writer()
        deadline = None if self.block_timeout is None else time.monotonic() + self.block_timeout
        with self._cond:
            try:
                for frame in frames:
                    keep = True
                    while len(self._pending) + len(self._batch) >= self.max_queue:
                        if self.on_full == "error":
                            raise QueueFullError(f"{self.url}: queue full ({self.max_queue} messages)")
                        if self.on_full == "drop-oldest":
                            self._dropped += 1
                            if self._pending:
                                self._pending.popleft()
                            else:  # every held message is being written: the new one goes
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
                        self._cond.notify_all()  # the writer may be asleep while frames wait
                        self._cond.wait(remaining)
                        self._check_usable()
                    if keep:
                        self._pending.append(frame)
            finally:
                self._cond.notify_all()

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
                        self._cond.wait()
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
        """Move frames from the queue into the batch, up to ``max_batch_bytes`` (one frame at least)."""
        size = 0
        batch: list[bytes] = []
        while self._pending and (not batch or size + len(self._pending[0]) <= self.max_batch_bytes):
            frame = self._pending.popleft()
            batch.append(frame)
            size += len(frame)
        self._batch = batch
        if not self._pending and self._dropping:
            self._dropping = False
        self._cond.notify_all()

    def _back_off(self) -> None:
        """After a failed attempt: wait ``backoff_base`` doubling to ``backoff_cap``, less 0-25% jitter."""
        self._backoff_step += 1
        delay = min(self.backoff_cap, self.backoff_base * 2.0 ** (self._backoff_step - 1))
        self._retry_delay = delay * random.uniform(0.75, 1.0)

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
                sock = self._connect(self.connect_timeout)
            except TLSHandshakeError:
                return None
            except OSError as exc:
                self._back_off()
                with self._lock:
                    self._failures += 1
                self.last_error = exc
                log.warning("%s: cannot connect: %s; retrying in %.2f s", self.url, exc, self._retry_delay)
                return None
            return self._install(sock)

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

    def _connect(self, timeout: float) -> socket.socket:
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

    def _tune(self, sock: socket.socket) -> None:
        """TCP_NODELAY (the writer batches by itself) and keepalive, to notice a silently dead peer."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self.keepalive:
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (
            ("TCP_KEEPIDLE", self.keepalive_idle),
            ("TCP_KEEPINTVL", self.keepalive_interval),
            ("TCP_KEEPCNT", self.keepalive_count),
        ):
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)

    def _wrap(self, sock: socket.socket, timeout: float) -> socket.socket:
        """Plain TCP: the socket itself. TLS overrides this with the handshake."""
        return sock

    def _write(self, sock: socket.socket) -> None:
        """Write the batch; on failure keep the frames not written in full and drop the connection."""
        frames = self._batch
        data = b"".join(frames)
        view = memoryview(data)
        done = writes = 0
        try:
            while done < len(data):
                if peer_closed(sock, self.write_timeout):
                    raise ConnectionResetError("the receiver closed the connection")
                writes += 1
                done += sock.send(view[done:])
        except OSError as exc:
            self._lost(frames, done, writes, exc)
            return
        finally:
            view.release()
        with self._cond:
            self._writes += writes
            self._batch = []
            self._sent += len(frames)
            self._bytes += len(data)
            self._cond.notify_all()
        self._backoff_step = 0
        self._retry_delay = 0.0
        self._wrote_on_connection = True

    def _lost(self, frames: list[bytes], done: int, writes: int, exc: OSError) -> None:
        """Account for a broken write: frames written in full count as sent, the rest stay queued."""
        count = offset = 0
        for frame in frames:
            if offset + len(frame) > done:
                break
            offset += len(frame)
            count += 1
        partial = done - offset
        with self._cond:
            self._batch = frames[count:]
            self._sent += count
            self._bytes += done
            self._writes += writes
            self._failures += 1
            kept = len(self._batch) + len(self._pending)
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
            kept,
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
