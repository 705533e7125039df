"""Peak memory of ``siemfmt send`` over a big JSON Lines file, to a draining TCP receiver.

The child's peak resident set size is its ``VmHWM`` (the kernel's RSS high-water mark of its address
space), read from ``/proc/PID/status`` every few milliseconds until it exits. Not ``ru_maxrss``: Linux
carries the high-water mark of the address space a process had before ``execve`` into it, and a child
started by fork or vfork had the benchmark's own (large) one, so ``ru_maxrss`` reports the parent's size.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.pool import Pool, write_jsonl
from benchmarks.receiver import Receiver
from benchmarks.timing import Result, Settings, rate_of

__all__ = ["run_memory"]

POLL = 0.01  # seconds between reads of /proc/PID/status


def _vm_hwm_kib(pid: int) -> int:
    """``VmHWM`` of a live process in KiB; 0 once it has exited (a zombie has no memory lines)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_memory(pool: Pool, settings: Settings) -> list[Result]:
    """One row: ``siemfmt send --format cef`` of ``settings.memory_n`` alerts; peak RSS in ``extra``."""
    n = settings.memory_n
    drain = Receiver("tcp")
    drain.arm(-1)
    try:
        with tempfile.TemporaryDirectory(prefix="siemfmt-bench-") as tmp:
            path = Path(tmp) / "alerts.jsonl"
            size = write_jsonl(path, n, pool)
            err_path = Path(tmp) / "stderr.txt"
            argv = [
                sys.executable,
                "-m",
                "siemfmt",
                "send",
                "--to",
                f"tcp://127.0.0.1:{drain.port}",
                "--format",
                "cef",
                str(path),
            ]
            with err_path.open("wb") as err:
                start = time.perf_counter()
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
                peak_kib = 0  # Popen returns after the child's execve: no read sees this process's memory
                while proc.poll() is None:
                    peak_kib = max(peak_kib, _vm_hwm_kib(proc.pid))
                    time.sleep(POLL)
                elapsed = time.perf_counter() - start
            stderr = err_path.read_text(encoding="utf-8", errors="replace").strip()
    finally:
        time.sleep(0.2)  # let the receiver read the tail
        received = drain.count()[1]
        drain.close()
    if proc.returncode != 0:
        raise RuntimeError(f"siemfmt send exited {proc.returncode}: {stderr[-2000:]}")
    if peak_kib == 0:
        raise RuntimeError("could not read the child's VmHWM from /proc (Linux only)")
    peak_mb = peak_kib * 1024 / 1e6
    summary = stderr.splitlines()[-1] if stderr else ""
    return [
        Result(
            f"memory: siemfmt send {n:,} alerts (tcp, cef)",
            "memory",
            rate_of(n, elapsed),
            n,
            [rate_of(n, elapsed)],
            f"peak RSS {peak_mb:.1f} MB; wall time incl. start-up; input {size / 1e6:.0f} MB; {summary}",
            {
                "peak_rss_mb": peak_mb,
                "input_bytes": size,
                "received_bytes": received,
                "exit": proc.returncode,
                "poll_s": POLL,
            },
        )
    ]
