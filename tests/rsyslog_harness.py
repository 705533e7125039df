"""Start a real rsyslogd for tests: foreground, own config, work directory and pid file, 127.0.0.1 only.

One instance listens on UDP, plain TCP and (given a PKI) TLS, each input writing ``%rawmsg%`` to its
own file, so a test compares exactly what arrived with what was sent. See
``/work/shared/reference/rsyslog-tls-relp.md`` §3 (config B) and §8 (gotchas).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from tests.tls_pki import PKI

__all__ = ["Rsyslog", "free_port", "rsyslog_module_dir", "rsyslogd_path"]

MODULE_DIRS = ("/usr/lib/*/rsyslog", "/usr/lib/rsyslog", "/usr/lib64/rsyslog")


def rsyslogd_path() -> str | None:
    """The rsyslogd binary, if installed (it lives in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("rsyslogd") or shutil.which("rsyslogd", path="/usr/sbin:/sbin")


def rsyslog_module_dir() -> Path | None:
    """The folder holding rsyslog's loadable modules (``imtcp.so``, ``lmnsd_gtls.so``...)."""
    for pattern in MODULE_DIRS:
        for found in glob.glob(os.path.join(pattern, "imtcp.so")):
            return Path(found).parent
    return None


def has_module(name: str) -> bool:
    """True when ``name.so`` (``lmnsd_gtls``, ``lmnsd_ossl``) is installed."""
    folder = rsyslog_module_dir()
    return folder is not None and (folder / f"{name}.so").exists()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 free for both TCP and UDP right now (the kernel picks it)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, other) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port on 127.0.0.1")


def _listening(port: int, udp: bool) -> bool:
    """Whether 127.0.0.1:port is bound (UDP) or listening (TCP), read from /proc/net without probing."""
    table = Path("/proc/net/udp" if udp else "/proc/net/tcp").read_text().splitlines()[1:]
    want = f"0100007F:{port:04X}"
    for row in table:
        cols = row.split()
        if cols[1] == want and (udp or cols[3] == "0A"):  # 0A = TCP_LISTEN
            return True
    return False


class Rsyslog:
    """One rsyslogd process. ``start()``, ``stop()``, ``kill()``, ``restart()``; output per input.

    ``tls_driver``: ``gtls`` or ``ossl`` (needs ``pki``). ``direct_queue``: the main queue hands each
    message to omfile before reading on (rsyslog-tls-relp.md §7), so a SIGKILL loses nothing that
    rsyslog had already read.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        pki: PKI | None = None,
        tls_driver: str = "gtls",
        direct_queue: bool = False,
    ) -> None:
        binary = rsyslogd_path()
        if binary is None:
            raise RuntimeError("rsyslogd is not installed")
        self.binary = binary
        self.dir = workdir
        self.pki = pki
        self.tls_driver = tls_driver
        self.direct_queue = direct_queue
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.tcp_port = free_port()
        self.tls_port = free_port() if pki else 0
        self.conf = workdir / "rsyslog.conf"
        self.pidfile = workdir / "rsyslogd.pid"
        self.stderr_path = workdir / "rsyslogd.stderr"
        self.proc: subprocess.Popen[bytes] | None = None
        (workdir / "work").mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self._config())

    def output(self, name: str) -> Path:
        """The file an input writes to: ``udp``, ``tcp`` or ``tls``."""
        return self.dir / f"{name}.log"

    def url(self, name: str) -> str:
        """``udp://127.0.0.1:P`` etc. for the input ``name``."""
        port = {"udp": self.udp_port, "tcp": self.tcp_port, "tls": self.tls_port}[name]
        return f"{name}://127.0.0.1:{port}"

    def _config(self) -> str:
        d = self.dir
        queue = 'main_queue(queue.type="Direct")\n' if self.direct_queue else ""
        tls = ""
        if self.pki is not None:
            tls = (
                f'input(type="imtcp" address="127.0.0.1" port="{self.tls_port}" ruleset="r_tls"\n'
                f'      streamDriver.name="{self.tls_driver}" streamDriver.mode="1" streamDriver.authMode="anon"\n'
                f'      streamDriver.CAFile="{self.pki.ca}" streamDriver.CertFile="{self.pki.server_cert}"\n'
                f'      streamDriver.KeyFile="{self.pki.server_key}")\n'
            )
        rulesets = "".join(
            f'ruleset(name="r_{name}") {{ action(type="omfile" file="{self.output(name)}" template="t_raw") }}\n'
            for name in ("udp", "tcp", "tls")
        )
        return (
            # §8.9: keep TAB and other control characters as sent; §8.8: room for big messages.
            f'global(workDirectory="{d / "work"}" parser.escapeControlCharactersOnReceive="off"\n'
            f'       maxMessageSize="64k" net.enableDNS="off")\n'
            f"{queue}"
            'module(load="imudp")\n'
            'module(load="imtcp")\n'
            'template(name="t_raw" type="string" string="%rawmsg%\\n")\n'
            f'input(type="imudp" address="127.0.0.1" port="{self.udp_port}" ruleset="r_udp")\n'
            f'input(type="imtcp" address="127.0.0.1" port="{self.tcp_port}" ruleset="r_tcp")\n'
            f"{tls}{rulesets}"
        )

    # --- process ----------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Rsyslog:
        """Start rsyslogd and wait until every input listens; raise with its stderr if it does not."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.pidfile.unlink(missing_ok=True)
        with self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(
                [self.binary, "-n", "-f", str(self.conf), "-i", str(self.pidfile)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
            )
        checks = [(self.udp_port, True), (self.tcp_port, False)]
        if self.tls_port:
            checks.append((self.tls_port, False))
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while not all(_listening(port, udp) for port, udp in checks):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"rsyslogd did not start listening:\n{self.stderr()}")
            pause.wait(0.02)  # rsyslogd signals nothing when ready: poll /proc/net
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Signal rsyslogd and wait for it to exit (SIGKILL after ``timeout``)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: a crash; rsyslog's in-memory queue and unread socket data are lost."""
        self.stop(signal.SIGKILL)

    def restart(self, sig: int = signal.SIGKILL) -> None:
        """Stop with ``sig`` and start again on the same ports, appending to the same files."""
        self.stop(sig)
        self.start()

    def stderr(self) -> str:
        """What rsyslogd printed so far."""
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    # --- output -----------------------------------------------------------------------------------

    def lines(self, name: str) -> list[bytes]:
        """The complete lines written so far by input ``name``."""
        path = self.output(name)
        if not path.exists():
            return []
        *complete, _ = path.read_bytes().split(b"\n")
        return complete

    def wait_lines(self, name: str, n: int, timeout: float = 10.0) -> list[bytes]:
        """Wait until input ``name`` wrote at least ``n`` lines (omfile gives no event: poll the file)."""
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while True:
            got = self.lines(name)
            if len(got) >= n or time.monotonic() > deadline:
                return got
            pause.wait(0.02)

    def wait_last(self, name: str, last: bytes, timeout: float = 10.0) -> list[bytes]:
        """Wait until the last line input ``name`` wrote is ``last``; return all lines."""
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while True:
            got = self.lines(name)
            if got[-1:] == [last] or time.monotonic() > deadline:
                return got
            pause.wait(0.02)

    def __enter__(self) -> Rsyslog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
