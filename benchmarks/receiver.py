"""The benchmarks' receivers, each in a process of its own, as a SIEM's receiver would be.

Run as ``python benchmarks/receiver.py tcp|udp|relp`` (standard library only, so that nothing of
siemfmt is loaded in it); ``Receiver`` starts and drives one from the benchmark process. A receiver
thread in the benchmark process would compete with the sender under test for the interpreter lock,
and a sender that holds the lock longer would be slowed by its own receiver: out of process, the
senders and the raw-socket limits meet the same receiver and only the kernel in between.

Control, one line each way over the child's stdin and stdout:

* parent → child: ``arm N`` (TCP: bytes, RELP: ``syslog`` frames, UDP: datagrams to wait for; resets
  the counts), ``count``, ``quit``;
* child → parent: ``port P`` once started, ``armed``, ``count MESSAGES BYTES`` (since the last ``arm``;
  TCP counts bytes only), ``done T`` when the armed count is reached, where ``T`` is the child's
  ``time.perf_counter()``: a system-wide monotonic clock on Linux, macOS and Windows, so it compares
  with the parent's.

* ``tcp``: accepts connections one after another and reads each into one reused 1 MiB buffer.
* ``udp``: one socket with an 8 MiB receive buffer, counting datagrams.
* ``relp``: a minimal RELP server: answers ``open`` as librelp does, ``200 OK`` to every ``syslog``
  frame and the empty ``rsp`` plus ``serverclose`` to ``close`` (rsyslog-tls-relp.md §5).
"""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

__all__ = ["Receiver"]

BUF = 1 << 20
RCVBUF = 8 << 20


class _State:
    """What the serving thread counts and the control loop reads and resets."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages = 0
        self.bytes = 0
        self.expected = -1
        self.done = False

    def arm(self, expected: int) -> None:
        with self.lock:
            self.messages = self.bytes = 0
            self.expected = expected
            self.done = False

    def reached(self, value: int) -> None:
        """Report ``done`` once, the first time ``value`` reaches the armed count."""
        if value >= self.expected >= 0 and not self.done:
            self.done = True
            _say(f"done {time.perf_counter()!r}")


_say_lock = threading.Lock()


def _say(line: str) -> None:
    with _say_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _serve_tcp(server: socket.socket, state: _State) -> None:
    buf = bytearray(BUF)
    while True:
        conn, _ = server.accept()
        with conn:
            while True:
                try:
                    n = conn.recv_into(buf)
                except OSError:
                    break
                if not n:
                    break
                state.bytes += n
                state.reached(state.bytes)


def _serve_udp(sock: socket.socket, state: _State) -> None:
    buf = bytearray(65_536)
    while True:
        n = sock.recv_into(buf)
        state.messages += 1
        state.bytes += n
        state.reached(state.messages)


_RELP_HEADER = re.compile(rb"(\d{1,9}) ([a-z]{1,32}) (\d{1,9})[ \n]")
_RELP_OPEN_OK = b"200 OK\nrelp_version=0\nrelp_software=bench,1,x\ncommands=syslog"


def _serve_relp(server: socket.socket, state: _State) -> None:
    while True:
        conn, _ = server.accept()
        with conn:
            _relp_session(conn, state)


def _relp_session(conn: socket.socket, state: _State) -> None:
    buf = b""
    match = _RELP_HEADER.match
    scratch = bytearray(BUF)
    view = memoryview(scratch)
    while True:
        try:
            n = conn.recv_into(scratch)
        except OSError:
            return
        if not n:
            return
        buf += view[:n]
        pos, out = 0, []
        while (m := match(buf, pos)) is not None:
            length = int(m[3])
            end = m.end() + length + (1 if length else 0)  # DATALEN SP DATA TRAILER
            if end > len(buf):
                break
            command = m[2]
            if command == b"syslog":
                out.append(b"%s rsp 6 200 OK\n" % m[1])
                state.messages += 1
                state.bytes += length
            elif command == b"open":
                out.append(b"%s rsp %d %s\n" % (m[1], len(_RELP_OPEN_OK), _RELP_OPEN_OK))
            elif command == b"close":
                conn.sendall(b"".join(out) + b"%s rsp 0\n0 serverclose 0\n" % m[1])
                return
            pos = end
        buf = buf[pos:]
        if out:
            conn.sendall(b"".join(out))
            state.reached(state.messages)


def child_main(kind: str) -> int:
    state = _State()
    if kind == "udp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.bind(("127.0.0.1", 0))
        serve = threading.Thread(target=_serve_udp, args=(sock, state), daemon=True)
    elif kind in ("tcp", "relp"):
        sock = socket.create_server(("127.0.0.1", 0))
        target = _serve_tcp if kind == "tcp" else _serve_relp
        serve = threading.Thread(target=target, args=(sock, state), daemon=True)
    else:
        print(f"unknown receiver kind {kind!r}: tcp, udp or relp", file=sys.stderr)
        return 1
    serve.start()
    _say(f"port {sock.getsockname()[1]}")
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "arm":
            state.arm(int(arg))
            _say("armed")
        elif command == "count":
            _say(f"count {state.messages} {state.bytes}")
        elif command == "quit":
            break
    return 0


class Receiver:
    """A receiver child process (``tcp``, ``udp`` or ``relp``) and its control pipe."""

    def __init__(self, kind: str, timeout: float = 10.0) -> None:
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._pending = b""
        word, value = self._reply(timeout)
        if word != "port":
            self.close()
            raise RuntimeError(f"{kind} receiver: expected its port, got {word} {value}")
        self.port = int(value)

    def arm(self, expected: int) -> None:
        """Reset the counts and report ``done`` when ``expected`` is reached (-1: never)."""
        self._ask(f"arm {expected}", "armed")

    def wait(self, timeout: float) -> float:
        """The child's ``perf_counter`` time at which the armed count was reached."""
        return float(self._expect("done", timeout))

    def count(self) -> tuple[int, int]:
        """Messages and bytes received since the last ``arm``."""
        messages, _, size = self._ask("count", "count").partition(" ")
        return int(messages), int(size)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.close()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ask(self, command: str, answer: str, timeout: float = 10.0) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        return self._expect(answer, timeout)

    def _expect(self, answer: str, timeout: float) -> str:
        word, value = self._reply(timeout)
        if word != answer:
            raise RuntimeError(f"{self.kind} receiver: expected {answer!r}, got {word!r} {value!r}")
        return value

    def _reply(self, timeout: float) -> tuple[str, str]:
        """The next line from the child (unbuffered reads, so that ``select`` sees every byte)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise RuntimeError(f"{self.kind} receiver: no answer within {timeout:g} s")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"{self.kind} receiver exited ({self.proc.poll()})")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        word, _, value = line.decode().partition(" ")
        return word, value


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1] if len(sys.argv) > 1 else ""))
