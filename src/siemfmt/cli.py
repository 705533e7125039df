"""The ``siemfmt`` command: format, send, forward, parse and listen to OT alert syslog messages.

Bad input never stops the run: each rejected record is reported on stderr with file, line, field and
reason (and written verbatim to ``--rejects FILE``), and a summary line counts what was read, sent,
rejected and dropped. Exit 0 when all went out, 2 when some records were rejected, 1 on a fatal
error (bad configuration, missing file, destination unreachable). See ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from importlib import resources
from types import FrameType
from typing import IO, Any, NoReturn, cast

from siemfmt.errors import AlertValidationError, ParseError
from siemfmt.formats import DIALECTS, PROFILES, FormatName, Message, make_formatter, parse
from siemfmt.forwarding import (
    FORMAT_NAMES,
    LEEF_VERSIONS,
    TIME_FORMATS,
    Action,
    ConfigError,
    ForwardingConfig,
    default_format,
    load_config,
    loads_config,
)
from siemfmt.inputs import read_records, utf8_error
from siemfmt.model import Alert, load_alert, parse_time
from siemfmt.transport import Sender, TransportError, connect

__all__ = ["build_parser", "main"]

Clock = Callable[[], datetime]

TEST_ALERT: dict[str, Any] = {
    "sensor_name": "siemfmt",
    "time": "2026-01-01T00:00:00Z",
    "title": "siemfmt forwarding test",
    "message": "Test alert sent by siemfmt forward --test.",
    "severity": "Warning",
    "type": "Operational",
}


class Fatal(Exception):
    """An error that ends the run with exit status 1."""


# --- input -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Counts:
    """What happened to the input, for the summary line."""

    read: int = 0
    rejected: int = 0
    sent: int = 0
    dropped: int = 0
    failed: int = 0
    excluded: int = 0
    unmatched: int = 0


class Rejects:
    """Writes rejected records verbatim to ``--rejects FILE``, opened before any input is read so that a
    bad path is a fatal error up front, not in the middle of a run."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._stream: IO[str] | None = None
        if path is not None:
            try:
                # surrogateescape: a line that was not UTF-8 is written back byte for byte
                self._stream = open(path, "w", encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
            except OSError as exc:
                raise Fatal(f"--rejects {path}: {exc.strerror or exc}") from None

    def write(self, text: str) -> None:
        if self._stream is not None:
            self._stream.write(text.replace("\n", " ") + "\n")

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


def _sample_lines() -> list[str]:
    text = resources.files("siemfmt").joinpath("data/samples.jsonl").read_text(encoding="utf-8")
    return text.splitlines(keepends=True)


def _sources(files: Sequence[str]) -> Iterator[tuple[str, IO[str]]]:
    """(name, stream) for each file, ``-`` being stdin; each file is opened only when its turn comes."""
    for path in files:
        if path == "-":
            # Bytes that are not UTF-8 become lone surrogates, reported per line (inputs.utf8_error).
            if isinstance(sys.stdin, io.TextIOWrapper):
                sys.stdin.reconfigure(errors="surrogateescape")
            yield "<stdin>", sys.stdin
            continue
        try:
            stream = open(path, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise Fatal(f"{path}: {exc.strerror or exc}") from None
        with stream:
            yield path, stream


def _alerts(
    sources: Iterator[tuple[str, IO[str]]],
    counts: Counts,
    rejects: Rejects,
    defaults: dict[str, Any] | None = None,
) -> Iterator[Alert]:
    """The valid alerts of every source; the others are reported, counted and written to rejects."""
    for name, stream in sources:
        for record in read_records(stream):
            counts.read += 1
            try:
                if record.error is not None:
                    raise ValueError(record.error)
                alert = load_alert(record.value, defaults=defaults)
            except (AlertValidationError, ValueError) as exc:
                counts.rejected += 1
                print(f"{name}:{record.where}: rejected: {exc}", file=sys.stderr)
                rejects.write(record.text)
                continue
            yield alert


def _input(args: argparse.Namespace, counts: Counts, rejects: Rejects) -> Iterator[Alert]:
    defaults = {"sensor_name": args.sensor_name} if getattr(args, "sensor_name", None) else None
    sources: Iterator[tuple[str, IO[str]]]
    if getattr(args, "samples", False):
        sources = iter([("<samples>", cast(IO[str], io.StringIO("".join(_sample_lines()))))])
        if args.files:
            sources = _chain(sources, _sources(args.files))
    else:
        sources = _sources(args.files or ["-"])
    return _alerts(sources, counts, rejects, defaults)


def _chain(*parts: Iterator[tuple[str, IO[str]]]) -> Iterator[tuple[str, IO[str]]]:
    for part in parts:
        yield from part


def _fixed_clock(now: str | None) -> Clock | None:
    if now is None:
        return None
    instant = parse_time(now)
    return lambda: instant


# --- progress --------------------------------------------------------------------------------------


class Progress:
    """A live count and rate on stderr, rewritten with ``\\r`` at most ``per_second`` times a second.

    Shown only when stderr is a terminal and ``quiet`` is false.
    """

    def __init__(self, label: str, quiet: bool, per_second: float = 4.0) -> None:
        self.label = label
        self.enabled = not quiet and sys.stderr.isatty()
        self.interval = 1.0 / per_second
        self.count = 0
        self.start = time.monotonic()
        self._last = 0.0
        self._shown = False

    def tick(self, n: int = 1) -> None:
        self.count += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            rate = self.count / max(now - self.start, 1e-6)
            sys.stderr.write(f"\r{self.label}: {self.count} alerts, {rate:.0f}/s ")
            sys.stderr.flush()
            self._shown = True

    def finish(self) -> None:
        if self._shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


# --- format ----------------------------------------------------------------------------------------


def _format_options(args: argparse.Namespace) -> dict[str, Any]:
    """The message options of ``format`` and ``send`` as keyword options of :func:`make_formatter`."""
    return {
        "header": args.header,
        "tz": args.tz,
        "hostname": args.hostname,
        "profile": args.profile,
        "dialect": args.dialect,
        "cef_header_space": args.cef_header_space,
        "pad_day": args.pad_day,
        "leef_version": args.leef_version,
        "leef_delimiter": args.leef_delimiter,
        "leef_delimiter_hex": args.leef_delimiter_hex,
        "time_format": args.time_format,
        "infer_group": args.infer_group,
        "enterprise_number": args.enterprise_number,
    }


def _formatter(fmt: str | None, options: dict[str, Any], clock: Clock | None = None) -> Callable[[Alert], str]:
    """``make_formatter`` with option errors as :class:`Fatal`; no format: the profile's (defender: cef)."""
    if fmt is None:
        fmt = default_format(options["profile"], options["dialect"])
    try:
        return make_formatter(cast(FormatName | None, fmt), clock=clock, **options)
    except (ValueError, TypeError) as exc:
        raise Fatal(str(exc)) from None


def _formatters(args: argparse.Namespace) -> list[Callable[[Alert], str]]:
    """One formatter, or with ``--format all`` one per format the profile (and dialect) can write."""
    options = _format_options(args)
    clock = _fixed_clock(args.now)
    if args.format != "all":
        return [_formatter(args.format, options, clock)]
    formatters: list[Callable[[Alert], str]] = []
    first_error: Fatal | None = None
    for fmt in PROFILES[args.profile].writers:
        try:
            formatters.append(_formatter(fmt, options, clock))
        except Fatal as exc:  # e.g. dialect cyberx-qradar writes LEEF only
            first_error = first_error or exc
    if not formatters and first_error is not None:
        raise first_error
    return formatters


def _format(args: argparse.Namespace) -> int:
    formatters = _formatters(args)
    counts = Counts()
    rejects = Rejects(args.rejects)
    written = 0
    out = sys.stdout
    try:
        for alert in _input(args, counts, rejects):
            for formatter in formatters:
                out.write(formatter(alert))
                out.write("\n")
                written += 1
    finally:
        rejects.close()
    print(f"siemfmt: read {counts.read}, written {written}, rejected {counts.rejected}", file=sys.stderr)
    return 2 if counts.rejected else 0


# --- send ------------------------------------------------------------------------------------------


def _connect(url: str, options: dict[str, Any]) -> Sender:
    try:
        return connect(url, **options)
    except OSError as exc:  # a CA, certificate or key file that cannot be read: name it
        path = exc.filename or next((v for k, v in options.items() if k.endswith("_file") and v), "")
        raise Fatal(f"{url}: cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise Fatal(f"{url}: {exc}") from None


def _send_one(sender: Sender, line: str, counts: Counts) -> bool:
    try:
        sender.send(line)
    except (TransportError, OSError) as exc:
        counts.failed += 1
        print(f"siemfmt: {sender.url}: not sent: {exc}", file=sys.stderr)
        return False
    return True


def _finish(senders: Sequence[Sender], timeout: float, counts: Counts) -> bool:
    """Flush every sender within ``timeout`` seconds in all, close them, add their stats to ``counts``."""
    deadline = time.monotonic() + timeout
    ok = True
    for sender in senders:
        if not sender.flush(max(deadline - time.monotonic(), 0.0)):
            ok = False
            print(f"siemfmt: {sender.url}: not everything was written within {timeout:g} s", file=sys.stderr)
    for sender in senders:
        sender.close(0.5)
        stats = sender.stats
        counts.sent += stats.sent
        counts.dropped += stats.dropped
    return ok


def _status(counts: Counts, ok: bool) -> int:
    if not ok or counts.failed or counts.dropped:
        return 1
    return 2 if counts.rejected else 0


def _send_summary(counts: Counts, extra: str = "") -> None:
    print(
        f"siemfmt: read {counts.read}, sent {counts.sent}, rejected {counts.rejected}, dropped {counts.dropped}"
        + (f", failed {counts.failed}" if counts.failed else "")
        + extra,
        file=sys.stderr,
    )


def _send_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.framing:
        options["framing"] = args.framing
    for arg, key in (("cafile", "ca_file"), ("cert", "cert_file"), ("key", "key_file")):
        if getattr(args, arg):
            options[key] = getattr(args, arg)
    if args.insecure:
        options["verify"] = False
    return options


def _send(args: argparse.Namespace) -> int:
    formatter = _formatter(args.format, _format_options(args))
    sender = _connect(args.to, _send_options(args))
    counts = Counts()
    rejects = Rejects(args.rejects)
    progress = Progress("send", args.quiet)
    try:
        for alert in _input(args, counts, rejects):
            _send_one(sender, formatter(alert), counts)
            progress.tick()
    finally:
        progress.finish()
        rejects.close()
        ok = _finish([sender], args.timeout, counts)
    _send_summary(counts)
    return _status(counts, ok)


# --- forward ---------------------------------------------------------------------------------------


class Forwarder:
    """Routes alerts through a :class:`ForwardingConfig`: one sender per distinct destination."""

    def __init__(self, config: ForwardingConfig, clock: Clock | None = None) -> None:
        self.config = config
        self._senders: dict[tuple[str, tuple[tuple[str, Any], ...]], Sender] = {}
        self._routes: dict[int, tuple[Callable[[Alert], str], Sender]] = {}
        for action in config.actions:
            options = action.transport_options()
            key = (action.url, tuple(sorted(options.items())))
            if key not in self._senders:
                self._senders[key] = _connect(action.url, options)
            formatter = action.formatter(clock)
            self._routes[id(action)] = (formatter, self._senders[key])

    @property
    def senders(self) -> list[Sender]:
        return list(self._senders.values())

    def route(self, alert: Alert, counts: Counts, on_sent: Callable[[Action, str], None] | None = None) -> None:
        """Send the alert through every action of every rule it matches (unless excluded)."""
        if self.config.excluded(alert) is not None:
            counts.excluded += 1
            return
        actions = self.config.actions_for(alert)
        if not actions:
            counts.unmatched += 1
        for action in actions:
            formatter, sender = self._routes[id(action)]
            line = formatter(alert)
            if _send_one(sender, line, counts) and on_sent is not None:
                on_sent(action, line)


def _load(args: argparse.Namespace) -> ForwardingConfig:
    variables: dict[str, str] = {}
    for item in args.var or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise Fatal(f"--var {item!r}: expected NAME=VALUE")
        variables[name] = value
    try:
        return load_config(args.config, variables)
    except OSError as exc:
        raise Fatal(f"{args.config}: {exc.strerror or exc}") from None
    except ConfigError as exc:
        raise Fatal(str(exc)) from None


def _forward_test(config: ForwardingConfig, timeout: float) -> int:
    alert = load_alert(TEST_ALERT)
    failures = 0
    for rule in config.rules:
        for number, action in enumerate(rule.actions, 1):
            sender = _connect(action.url, action.transport_options())
            line = action.formatter()(alert)
            error = ""
            try:
                sender.send(line)
                flushed = sender.flush(timeout)
                if not flushed:
                    error = f"not written within {timeout:g} s"
                elif sender.stats.failures:
                    error = f"{sender.stats.failures} failed attempt(s)"
            except (TransportError, OSError) as exc:
                error = str(exc)
            finally:
                sender.close(0.5)
            where = f'rule "{rule.name}" action {number} {action.url} ({action.describe()})'
            if error:
                failures += 1
                print(f"{where}: FAILED: {error}")
            else:
                print(f"{where}: ok")
    print(f"siemfmt: {len(config.actions) - failures} of {len(config.actions)} actions ok", file=sys.stderr)
    return 1 if failures else 0


def _forward(args: argparse.Namespace) -> int:
    config = _load(args)
    if args.test:
        return _forward_test(config, args.timeout)
    forwarder = Forwarder(config)
    counts = Counts()
    rejects = Rejects(args.rejects)
    progress = Progress("forward", args.quiet)
    try:
        for alert in _input(args, counts, rejects):
            forwarder.route(alert, counts)
            progress.tick()
    finally:
        progress.finish()
        rejects.close()
        ok = _finish(forwarder.senders, args.timeout, counts)
    _send_summary(counts, f", excluded {counts.excluded}, unmatched {counts.unmatched}")
    return _status(counts, ok)


# --- parse -----------------------------------------------------------------------------------------


def message_json(message: Message) -> dict[str, Any]:
    """A parsed message as a JSON-ready dict.

    Formats ``sd`` and ``raw`` also give ``body`` (the MSG: for ``sd`` the alert message, which is not
    among the fields); ``sd`` also gives ``sd``, every SD-ELEMENT as ``{"id": ..., "params": [[k, v]]}``.
    """
    out: dict[str, Any] = {
        "syslog": dataclasses.asdict(message.syslog),
        "format": message.format,
        "prefix": message.prefix,
        "header": list(message.header),
        "fields": [list(pair) for pair in message.fields],
        "alert_group": message.alert_group,
    }
    if message.format in ("sd", "raw"):
        out["body"] = message.body
    if message.format == "sd":
        out["sd"] = [{"id": sd_id, "params": [list(p) for p in params]} for sd_id, params in message.syslog.sd]
    return out


def _parse(args: argparse.Namespace) -> int:
    read = rejected = 0
    for name, stream in _sources(args.files or ["-"]):
        for number, raw in enumerate(stream, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            read += 1
            try:
                bad = utf8_error(line)
                if bad is not None:
                    raise ParseError(bad[0], bad[1])
                message = parse(line)
                if args.strict and message.format == "raw":
                    raise ValueError("not a text, object, CEF, LEEF or RFC 5424 SD message")
            except (ParseError, ValueError) as exc:
                print(f"{name}:{number}: malformed: {exc}", file=sys.stderr)
                rejected += 1
                continue
            print(json.dumps({"source": name, "line": number, **message_json(message)}, ensure_ascii=False))
    print(f"siemfmt: read {read}, parsed {read - rejected}, rejected {rejected}", file=sys.stderr)
    return 2 if rejected and args.strict else 0


# --- listen ----------------------------------------------------------------------------------------


class _Stop(Exception):
    pass


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _listen(args: argparse.Namespace) -> int:
    from siemfmt.testing import SyslogReceiver  # noqa: PLC0415 - only these commands need it

    specs: list[tuple[str, int, dict[str, Any]]] = []
    if args.udp is not None:
        specs.append(("udp", args.udp, {}))
    if args.tcp is not None:
        specs.append(("tcp", args.tcp, {}))
    if args.tls is not None:
        if not args.tls_cert:
            raise Fatal("--tls needs --tls-cert (and --tls-key)")
        specs.append(("tls", args.tls, {"certfile": args.tls_cert, "keyfile": args.tls_key}))
    if not specs:
        raise Fatal("give at least one of --udp PORT, --tcp PORT, --tls PORT")
    receivers = []
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for scheme, port, options in specs:
            try:
                receivers.append(SyslogReceiver(scheme, args.host, port, **options).start())  # type: ignore[arg-type]
            except OSError as exc:
                raise Fatal(f"{scheme} port {port}: {exc.strerror or exc}") from None
            print(f"siemfmt: listening on {receivers[-1].url}", file=sys.stderr, flush=True)
        shown = [0] * len(receivers)
        total = 0
        deadline = None if args.timeout is None else time.monotonic() + args.timeout
        while args.count is None or total < args.count:
            if deadline is not None and time.monotonic() >= deadline:
                break
            for i, receiver in enumerate(receivers):
                for record in receiver.received[shown[i] :]:
                    shown[i] += 1
                    total += 1
                    out: dict[str, Any] = {"transport": receiver.scheme, "peer": str(record.peer[0])}
                    if record.message is not None:
                        out.update(message_json(record.message))
                    else:
                        out.update({"raw": record.line, "error": str(record.error)})
                    print(json.dumps(out, ensure_ascii=False), flush=True)
                    if args.count is not None and total >= args.count:
                        break
            time.sleep(0.02)
    except _Stop:
        return 0  # SIGINT/SIGTERM: a normal end, whatever has arrived (docs/cli.md)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for receiver in receivers:
            receiver.close()
    if args.count is not None and total < args.count:
        print(f"siemfmt: {total} of {args.count} messages arrived within {args.timeout:g} s", file=sys.stderr)
        return 1
    return 0


# --- demo ------------------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from siemfmt.testing import SyslogReceiver  # noqa: PLC0415 - only these commands need it

    text = resources.files("siemfmt").joinpath("data/rules.toml").read_text(encoding="utf-8")
    instant = datetime.now(timezone.utc).replace(microsecond=0)
    with SyslogReceiver("udp") as udp, SyslogReceiver("tcp") as tcp:
        config = loads_config(text, "rules.toml", {"udp_port": str(udp.port), "tcp_port": str(tcp.port)})
        forwarder = Forwarder(config, clock=lambda: instant)
        counts = Counts()
        expected: dict[str, Counter[str]] = {"udp": Counter(), "tcp": Counter()}
        for alert in _alerts(iter([("<samples>", io.StringIO("".join(_sample_lines())))]), counts, Rejects(None)):
            forwarder.route(alert, counts, lambda action, line: expected[action.scheme].update([line]))
        ok = _finish(forwarder.senders, 5.0, counts)
        arrived: dict[str, Counter[str]] = {}
        for scheme, receiver in (("udp", udp), ("tcp", tcp)):
            with contextlib.suppress(TimeoutError):
                receiver.wait_for(sum(expected[scheme].values()), timeout=5.0)
            arrived[scheme] = Counter(receiver.lines)
            for record in receiver.received:
                message = record.message
                fmt = message.format if message is not None else "?"
                group = (message.alert_group if message is not None else None) or "-"
                print(f"{scheme} {fmt:<6} group={group!r:<36} {record.line}")
    missing = sum(((expected[s] - arrived[s]) for s in expected), Counter())
    extra = sum(((arrived[s] - expected[s]) for s in expected), Counter())
    for line in missing:
        print(f"siemfmt demo: MISSING or altered: {line}", file=sys.stderr)
    for line in extra:
        print(f"siemfmt demo: UNEXPECTED: {line}", file=sys.stderr)
    intact = ok and not missing and not extra and not counts.rejected
    total = sum(sum(c.values()) for c in expected.values())
    print(
        f"siemfmt demo: {counts.read} alerts, {total} messages over UDP and TCP, "
        f"excluded {counts.excluded}, unmatched {counts.unmatched}: " + ("all arrived intact" if intact else "FAILED"),
        file=sys.stderr,
    )
    return 0 if intact else 1


# --- the parser ------------------------------------------------------------------------------------


def _delimiter(text: str) -> str:
    """``--leef-delimiter``: one character, or its code as ``xHH`` / ``0xHH`` (``x09`` for TAB)."""
    if len(text) > 1 and text.lower().startswith(("x", "0x")):
        try:
            return chr(int(text.lower().removeprefix("0").removeprefix("x"), 16))
        except (ValueError, OverflowError):
            pass
    if len(text) != 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give one character or its code as xHH")
    return text


def _add_format_options(p: argparse.ArgumentParser, allow_all: bool = False) -> None:
    p.add_argument(
        "--format",
        choices=[*FORMAT_NAMES, "all"] if allow_all else list(FORMAT_NAMES),
        default=None,
        help="message format (default: the profile's; cef for defender, leef in dialect cyberx-qradar)"
        + ("; all: every format of the profile" if allow_all else ""),
    )
    p.add_argument("--profile", choices=list(PROFILES), default="defender", help="what to write (default defender)")
    p.add_argument(
        "--dialect", choices=list(DIALECTS), default="current", help="defender profile: older sensors' output"
    )
    p.add_argument(
        "--header",
        choices=["rfc3164", "rfc5424", "none"],
        default=None,
        help="syslog header (default: the profile's, rfc3164 or rfc5424 for qradar and rfc5424-sd)",
    )
    p.add_argument("--tz", default="UTC", help="IANA time zone of the body's alert time (default UTC)")
    p.add_argument("--hostname", default=None, help="syslog HOST (default: derived from the sensor name)")
    p.add_argument("--time-format", dest="time_format", choices=TIME_FORMATS, default="default")
    p.add_argument(
        "--no-infer-group",
        dest="infer_group",
        action="store_false",
        help="no alert group from the catalog when the record has none",
    )
    p.add_argument("--leef-version", dest="leef_version", choices=LEEF_VERSIONS, default="1.0")
    p.add_argument(
        "--leef-delimiter",
        dest="leef_delimiter",
        metavar="CHAR",
        type=_delimiter,
        default=None,
        help="LEEF 2.0 attribute delimiter: one character or xHH (default ^ for 2.0)",
    )
    p.add_argument(
        "--leef-delimiter-hex",
        dest="leef_delimiter_hex",
        action="store_true",
        help="write the LEEF 2.0 delimiter field as xHH",
    )
    p.add_argument(
        "--cef-header-space",
        dest="cef_header_space",
        action="store_true",
        help="a space after the last CEF header pipe (rsyslog mmnormalize)",
    )
    p.add_argument(
        "--pad-day",
        dest="pad_day",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="RFC 3164 day padded to two places (default: yes, but no for dialect cyberx-qradar)",
    )
    p.add_argument(
        "--enterprise-number",
        dest="enterprise_number",
        metavar="N",
        type=int,
        default=32473,
        help="rfc5424-sd: SD-ID alert@N (default 32473)",
    )


def _add_input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sensor-name", dest="sensor_name", default=None, help="default sensor name for records")
    p.add_argument("--rejects", metavar="FILE", default=None, help="write rejected records verbatim to FILE")
    p.add_argument("files", nargs="*", help="JSON Lines / JSON array / API alert list files, - for stdin (default)")


def _add_delivery_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for delivery at the end (10)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress display")


class _Parser(argparse.ArgumentParser):
    """Usage errors are fatal errors: exit 1, as documented (2 means "some lines were rejected")."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``siemfmt`` command."""
    parser = _Parser(prog="siemfmt", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    fmt = sub.add_parser("format", help="format alert records as syslog lines on stdout")
    _add_format_options(fmt, allow_all=True)
    fmt.add_argument("--now", default=None, help="fix the header's send time (ISO 8601) for reproducible output")
    fmt.add_argument("--samples", action="store_true", help="format the bundled sample alerts")
    _add_input_options(fmt)

    send = sub.add_parser("send", help="send alert records to one syslog destination")
    send.add_argument(
        "--to", required=True, metavar="URL", help="udp://, tcp://, tls://, relp:// or relp+tls://host:port"
    )
    _add_format_options(send)
    send.add_argument("--framing", choices=["lf", "octet-counting"], default=None, help="TCP/TLS framing")
    send.add_argument("--cafile", default=None, help="TLS: CA certificates to verify the server")
    send.add_argument("--cert", default=None, help="TLS: client certificate (PEM)")
    send.add_argument("--key", default=None, help="TLS: client key (PEM)")
    send.add_argument("--insecure", action="store_true", help="TLS: do not verify the server certificate")
    _add_delivery_options(send)
    _add_input_options(send)

    fwd = sub.add_parser("forward", help="forward alert records through forwarding rules (TOML)")
    fwd.add_argument("--config", required=True, metavar="FILE", help="forwarding rules (see docs/forwarding.md)")
    fwd.add_argument("--var", action="append", metavar="NAME=VALUE", help="fill {NAME} placeholders in URLs")
    fwd.add_argument("--test", action="store_true", help="send one test alert through every action and report")
    _add_delivery_options(fwd)
    _add_input_options(fwd)

    prs = sub.add_parser("parse", help="parse syslog lines into JSON lines")
    prs.add_argument("--strict", action="store_true", help="exit 2 on any malformed or unrecognised line")
    prs.add_argument("files", nargs="*", help="files of syslog lines, - for stdin (default)")

    lst = sub.add_parser("listen", help="receive syslog messages and print them parsed (JSON lines)")
    lst.add_argument("--udp", type=int, metavar="PORT", default=None)
    lst.add_argument("--tcp", type=int, metavar="PORT", default=None)
    lst.add_argument("--tls", type=int, metavar="PORT", default=None)
    lst.add_argument("--tls-cert", dest="tls_cert", default=None)
    lst.add_argument("--tls-key", dest="tls_key", default=None)
    lst.add_argument("--host", default="127.0.0.1")
    lst.add_argument("--count", type=int, default=None, help="stop after N messages")
    lst.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")

    sub.add_parser("demo", help="forward the bundled samples through the bundled rules to local receivers")

    samples = sub.add_parser("samples", help="print the bundled sample alerts in all four formats")
    samples.add_argument("--now", default="2026-03-10T08:15:31Z", help="header send time (ISO 8601)")
    return parser


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "format": _format,
    "send": _send,
    "forward": _forward,
    "parse": _parse,
    "listen": _listen,
    "demo": _demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "samples":
        args = build_parser().parse_args(["format", "--format", "all", "--samples", "--now", args.now])
    try:
        return _COMMANDS[args.command](args)
    except BrokenPipeError:  # e.g. piped into `head`: not an error
        sys.stderr.close()
        return 0
    except Fatal as exc:
        print(f"siemfmt: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"siemfmt: error: {exc}", file=sys.stderr)
        return 1
