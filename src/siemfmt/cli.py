"""The ``siemfmt`` command (first cut): ``format`` alert files and show the bundled ``samples``.

Bad input never stops the run: each rejected line is reported on stderr with file, line, field and
reason, and a summary line counts what was read and rejected. Exit 0 when all went out, 2 when some
lines were rejected, 1 on a fatal error.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator, Sequence
from importlib import resources
from typing import IO, Any, cast

from siemfmt.errors import AlertValidationError
from siemfmt.formats import FORMATS, FormatName, make_formatter
from siemfmt.model import load_alert, parse_time

__all__ = ["main"]


def _records(name: str, stream: IO[str]) -> Iterator[tuple[int, Any]]:
    """(line number, decoded JSON or the exception) for each non-blank line of JSON Lines."""
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, exc


def _sample_lines() -> list[str]:
    text = resources.files("siemfmt").joinpath("data/samples.jsonl").read_text(encoding="utf-8")
    return text.splitlines(keepends=True)


def _fixed_clock(now: str | None) -> Any:
    if now is None:
        return None
    instant = parse_time(now)
    return lambda: instant


def _format(args: argparse.Namespace) -> int:
    formats = cast(list[FormatName], list(FORMATS) if args.format == "all" else [args.format])
    clock = _fixed_clock(args.now)
    formatters = [
        make_formatter(f, header=args.header, tz=args.tz, hostname=args.hostname, clock=clock) for f in formats
    ]
    read = rejected = written = 0
    sources: list[tuple[str, IO[str]]] = []
    if args.samples:
        sources.append(("<samples>", io.StringIO("".join(_sample_lines()))))
    for path in args.files or ([] if args.samples else ["-"]):
        sources.append((path, sys.stdin if path == "-" else open(path, encoding="utf-8")))  # noqa: SIM115
    out = sys.stdout
    for name, stream in sources:
        try:
            for number, record in _records(name, stream):
                read += 1
                try:
                    if isinstance(record, Exception):
                        raise ValueError(f"not JSON: {record}")
                    alert = load_alert(record, defaults=args.defaults)
                except (AlertValidationError, ValueError) as exc:
                    rejected += 1
                    print(f"{name}:{number}: rejected: {exc}", file=sys.stderr)
                    continue
                for formatter in formatters:
                    out.write(formatter(alert))
                    out.write("\n")
                    written += 1
        finally:
            if stream is not sys.stdin:
                stream.close()
    print(f"siemfmt: read {read}, written {written}, rejected {rejected}", file=sys.stderr)
    return 2 if rejected else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siemfmt", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = sub.add_parser("format", help="format alert records (JSON Lines) as syslog lines on stdout")
    fmt.add_argument("--format", choices=[*FORMATS, "all"], default="cef")
    fmt.add_argument("--header", choices=["rfc3164", "rfc5424", "none"], default="rfc3164")
    fmt.add_argument("--tz", default="UTC", help="IANA time zone of the body's alert time (default UTC)")
    fmt.add_argument("--hostname", default=None, help="syslog HOST (default: derived from the sensor name)")
    fmt.add_argument("--now", default=None, help="fix the header's send time (ISO 8601) for reproducible output")
    fmt.add_argument("--samples", action="store_true", help="format the bundled sample alerts")
    fmt.add_argument("--sensor-name", dest="sensor_name", default=None, help="default sensor name for records")
    fmt.add_argument("files", nargs="*", help="JSON Lines files, or - for stdin (default)")
    samples = sub.add_parser("samples", help="print the bundled sample alerts in all four formats")
    samples.add_argument("--now", default="2026-03-10T08:15:31Z", help="header send time (ISO 8601)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "samples":
            args = argparse.Namespace(
                format="all",
                header="rfc3164",
                tz="UTC",
                hostname=None,
                now=args.now,
                samples=True,
                files=[],
                defaults=None,
            )
        else:
            args.defaults = {"sensor_name": args.sensor_name} if args.sensor_name else None
        return _format(args)
    except BrokenPipeError:  # e.g. piped into `head`: not an error
        sys.stderr.close()
        return 0
    except (OSError, ValueError) as exc:
        print(f"siemfmt: error: {exc}", file=sys.stderr)
        return 1
