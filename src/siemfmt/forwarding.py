"""Forwarding rules as the Defender for IoT sensor has them: load, validate and match (no sockets).

A :class:`ForwardingConfig` holds rules and exclusions. A rule has conditions (minimal severity,
protocols, engines, optionally alert groups) and one or more actions (where and how to send). An
alert goes to every action of every rule it matches, unless an exclusion matches it: exclusions win
over every rule. See ``docs/forwarding.md`` for the TOML reference::

    config = load_config("rules.toml")
    if config.excluded(alert) is None:
        for action in config.actions_for(alert):
            ...
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from siemfmt.formats import DIALECTS, PROFILES, FormatName, make_formatter
from siemfmt.formats.base import Dialect, Profile, TimeFormat
from siemfmt.groups import canonical_group, resolve_group
from siemfmt.model import Alert, AlertType, Severity, canonical_ip, canonical_mac
from siemfmt.syslog import Clock

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "Action",
    "ConfigError",
    "Exclusion",
    "ForwardingConfig",
    "Rule",
    "default_format",
    "load_config",
    "loads_config",
    "parse_config",
]

HeaderKind = Literal["rfc3164", "rfc5424", "none"]
Framing = Literal["lf", "octet-counting"]
HEADERS: tuple[str, ...] = ("rfc3164", "rfc5424", "none")
# Every format some profile writes, in order: text, object, cef, leef, sd.
FORMAT_NAMES: tuple[str, ...] = tuple(dict.fromkeys(f for spec in PROFILES.values() for f in spec.writers))
TIME_FORMATS: tuple[str, ...] = ("default", "epoch-ms", "iso")
LEEF_VERSIONS: tuple[str, ...] = ("1.0", "2.0")
FRAMINGS: tuple[str, ...] = ("lf", "octet-counting")
SCHEMES: tuple[str, ...] = ("udp", "tcp", "tls", "relp", "relp+tls")
_TLS_SCHEMES: tuple[str, ...] = ("tls", "relp+tls")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WS = re.compile(r"\s+")


def default_format(profile: str, dialect: str = "current") -> str:
    """The format written when none is given: ``cef`` for the defender profile (``leef`` in dialect
    ``cyberx-qradar``, which writes nothing else), else the profile's only format."""
    if profile == "defender":
        return "leef" if dialect == "cyberx-qradar" else "cef"
    spec = PROFILES.get(profile)
    return "cef" if spec is None else next(iter(spec.writers))


class ConfigError(ValueError):
    """A forwarding configuration is invalid; the message names the file, the rule and the key."""


def _fold(text: str) -> str:
    return _WS.sub(" ", text).strip().casefold()


@dataclass(frozen=True, slots=True)
class Action:
    """Where and how to send: a destination URL and the message and transport options.

    ``format`` None means the profile's format (``cef`` for ``defender``); ``header`` None means the
    profile's header. The message options are those of :func:`siemfmt.format_alert`.
    """

    url: str
    format: FormatName | None = None
    header: HeaderKind | None = None
    tz: str = "UTC"
    hostname: str | None = None
    profile: Profile = "defender"
    dialect: Dialect = "current"
    cef_header_space: bool = False
    pad_day: bool | None = None
    leef_version: Literal["1.0", "2.0"] = "1.0"
    leef_delimiter: str | None = None
    leef_delimiter_hex: bool = False
    time_format: TimeFormat = "default"
    infer_group: bool = True
    enterprise_number: int = 32473
    framing: Framing | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True
    label: str = ""

    @property
    def resolved_format(self) -> str:
        """The format written: ``format``, else the profile's (``cef`` for ``defender``)."""
        return default_format(self.profile, self.dialect) if self.format is None else self.format

    def describe(self) -> str:
        """``cef``; ``arcsight cef``; ``leef cyberx-qradar``: profile (unless defender), format, dialect."""
        parts: list[str] = [self.profile] if self.profile != "defender" else []
        parts.append(self.resolved_format)
        if self.dialect != "current":
            parts.append(self.dialect)
        return " ".join(parts)

    @property
    def scheme(self) -> str:
        """``udp``, ``tcp``, ``tls``, ``relp`` or ``relp+tls``."""
        return urlsplit(self.url).scheme.lower()

    def transport_options(self) -> dict[str, Any]:
        """Keyword options for :func:`siemfmt.transport.connect` (only those that apply to the scheme)."""
        options: dict[str, Any] = {}
        if self.scheme in ("tcp", "tls") and self.framing is not None:
            options["framing"] = self.framing
        if self.scheme in _TLS_SCHEMES:
            for key in ("ca_file", "cert_file", "key_file"):
                value = getattr(self, key)
                if value is not None:
                    options[key] = value
            if not self.verify:
                options["verify"] = False
        return options

    def format_options(self) -> dict[str, Any]:
        """Keyword options for :func:`siemfmt.make_formatter` (all but the format)."""
        return {
            "header": self.header,
            "tz": self.tz,
            "hostname": self.hostname,
            "profile": self.profile,
            "dialect": self.dialect,
            "cef_header_space": self.cef_header_space,
            "pad_day": self.pad_day,
            "leef_version": self.leef_version,
            "leef_delimiter": self.leef_delimiter,
            "leef_delimiter_hex": self.leef_delimiter_hex,
            "time_format": self.time_format,
            "infer_group": self.infer_group,
            "enterprise_number": self.enterprise_number,
        }

    def formatter(self, clock: Clock | None = None) -> Callable[[Alert | Mapping[str, Any]], str]:
        """The action's ``alert -> line`` function (raises ValueError for a bad option combination)."""
        return make_formatter(cast(FormatName, self.resolved_format), clock=clock, **self.format_options())


@dataclass(frozen=True, slots=True)
class Rule:
    """Conditions and actions. ``None`` for protocols, engines or groups means any."""

    name: str
    actions: tuple[Action, ...]
    min_severity: Severity = Severity.WARNING
    protocols: frozenset[str] | None = None  # casefolded
    engines: frozenset[AlertType] | None = None
    groups: frozenset[str] | None = None  # casefolded canonical group names

    def matches(self, alert: Alert) -> bool:
        """True when the alert meets every condition of the rule."""
        if alert.severity.rank < self.min_severity.rank:
            return False
        if self.protocols is not None and (alert.protocol is None or _fold(alert.protocol) not in self.protocols):
            return False
        if self.engines is not None and alert.type not in self.engines:
            return False
        return self.groups is None or _fold(resolve_group(alert.alert_group, alert.title)) in self.groups


@dataclass(frozen=True, slots=True)
class Exclusion:
    """An alert exclusion rule: every given criterion must match (any entry of a list matches).

    ``titles``: alert titles (case-insensitive, white space folded); ``devices``: IP or MAC addresses
    of the source or destination device; ``sensors``: sensor names (case-insensitive).
    """

    name: str
    titles: frozenset[str] | None = None
    devices: frozenset[str] | None = None
    sensors: frozenset[str] | None = None

    def matches(self, alert: Alert) -> bool:
        """True when the alert is excluded by this rule."""
        if self.titles is not None and _fold(alert.title) not in self.titles:
            return False
        if self.sensors is not None and _fold(alert.sensor_name) not in self.sensors:
            return False
        if self.devices is not None:
            addresses = {
                value
                for device in (alert.source, alert.destination)
                if device is not None
                for value in (device.ip, device.mac)
                if value is not None
            }
            if not addresses & self.devices:
                return False
        return True


@dataclass(frozen=True, slots=True)
class ForwardingConfig:
    """Rules and exclusions, in file order."""

    rules: tuple[Rule, ...]
    exclusions: tuple[Exclusion, ...] = ()
    source: str = "<config>"
    actions: tuple[Action, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "actions", tuple(a for r in self.rules for a in r.actions))

    def excluded(self, alert: Alert) -> Exclusion | None:
        """The first exclusion that matches the alert, if any."""
        for exclusion in self.exclusions:
            if exclusion.matches(alert):
                return exclusion
        return None

    def matching_rules(self, alert: Alert) -> list[Rule]:
        """The rules the alert matches (none when it is excluded)."""
        if self.excluded(alert) is not None:
            return []
        return [rule for rule in self.rules if rule.matches(alert)]

    def actions_for(self, alert: Alert) -> list[Action]:
        """Every action of every matching rule, in file order (an action shared by two rules twice)."""
        return [action for rule in self.matching_rules(alert) for action in rule.actions]


# --- loading and validation ---------------------------------------------------------------------------


class _Where:
    """Builds error messages: ``file: rule "name" action 2: key: reason``."""

    def __init__(self, source: str, parts: tuple[str, ...] = ()) -> None:
        self.source = source
        self.parts = parts

    def at(self, part: str) -> _Where:
        return _Where(self.source, (*self.parts, part))

    def error(self, key: str | None, reason: str) -> ConfigError:
        where = " ".join(self.parts)
        text = self.source + ": " + (where + ": " if where else "") + (f"{key}: " if key else "") + reason
        return ConfigError(text)


def _table(value: object, where: _Where, key: str | None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise where.error(key, f"{value!r} must be a table")
    return cast(Mapping[str, Any], value)


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: _Where) -> None:
    for key in table:
        if key not in allowed:
            raise where.error(key, f"unknown key (allowed: {', '.join(allowed)})")


def _string(table: Mapping[str, Any], key: str, where: _Where, default: str | None = None) -> str | None:
    value = table.get(key, default)
    if value is not None and not (isinstance(value, str) and value.strip()):
        raise where.error(key, f"{value!r} must be a non-empty string")
    return value


def _choice(table: Mapping[str, Any], key: str, choices: tuple[str, ...], where: _Where, default: str | None) -> Any:
    value = table.get(key, default)
    if value is not None and value not in choices:
        raise where.error(key, f"{value!r} must be one of {', '.join(choices)}")
    return value


def _string_list(table: Mapping[str, Any], key: str, where: _Where, allow_any: bool) -> list[str] | None:
    """A list of non-empty strings; ``"any"`` (when allowed) or a missing key gives None."""
    value = table.get(key)
    if value is None:
        return None
    if allow_any and isinstance(value, str) and value.strip().casefold() == "any":
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        shape = '"any" or ' if allow_any else ""
        raise where.error(key, f"{value!r} must be {shape}a non-empty list of non-empty strings")
    return cast(list[str], value)


def _substitute(url: str, variables: Mapping[str, str], where: _Where) -> str:
    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise where.error("url", f"{url!r}: no value for placeholder {{{name}}}")
        return str(variables[name])

    return _PLACEHOLDER.sub(repl, url)


def _bool(table: Mapping[str, Any], key: str, where: _Where, default: bool | None) -> Any:
    value = table.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise where.error(key, f"{value!r} must be true or false")
    return value


def _leef_version(table: Mapping[str, Any], where: _Where) -> str:
    value = table.get("leef_version", "1.0")
    if isinstance(value, float) and value in (1.0, 2.0):  # leef_version = 2.0 (a TOML float)
        value = f"{value:.1f}"
    if value not in LEEF_VERSIONS:
        raise where.error("leef_version", f"{value!r} must be one of {', '.join(LEEF_VERSIONS)}")
    return cast(str, value)


def _enterprise_number(table: Mapping[str, Any], where: _Where) -> int:
    value = table.get("enterprise_number", 32473)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise where.error("enterprise_number", f"{value!r} must be a positive integer (IANA PEN)")
    return value


_ACTION_KEYS = (
    "url",
    "format",
    "header",
    "tz",
    "hostname",
    "profile",
    "dialect",
    "cef_header_space",
    "pad_day",
    "leef_version",
    "leef_delimiter",
    "leef_delimiter_hex",
    "time_format",
    "infer_group",
    "enterprise_number",
    "framing",
    "ca_file",
    "cert_file",
    "key_file",
    "verify",
)


def _message_options(table: Mapping[str, Any], where: _Where) -> dict[str, Any]:
    """The action's message options, each checked on its own (combinations are checked by the caller)."""
    profile = _choice(table, "profile", tuple(PROFILES), where, "defender")
    dialect = _choice(table, "dialect", DIALECTS, where, "current")
    fmt = _choice(table, "format", FORMAT_NAMES, where, None)
    delimiter = table.get("leef_delimiter")
    if delimiter is not None and not (isinstance(delimiter, str) and delimiter):
        raise where.error("leef_delimiter", f"{delimiter!r} must be a one-character string")
    return {
        "format": fmt,
        "header": _choice(table, "header", HEADERS, where, None),
        "profile": profile,
        "dialect": dialect,
        "cef_header_space": _bool(table, "cef_header_space", where, False),
        "pad_day": _bool(table, "pad_day", where, None),
        "leef_version": _leef_version(table, where),
        "leef_delimiter": delimiter,
        "leef_delimiter_hex": _bool(table, "leef_delimiter_hex", where, False),
        "time_format": _choice(table, "time_format", TIME_FORMATS, where, "default"),
        "infer_group": _bool(table, "infer_group", where, True),
        "enterprise_number": _enterprise_number(table, where),
    }


def _check_combination(action: Action, where: _Where) -> Action:
    """Build the action's formatter once, so a bad combination of options fails at load time."""
    try:
        action.formatter()
    except ValueError as exc:
        key, sep, reason = str(exc).partition(": ")
        if not sep:
            raise where.error(None, str(exc)) from None
        raise where.error("format" if key == "fmt" else key, reason) from None
    if action.format is None:
        return dataclasses.replace(action, format=cast(FormatName, action.resolved_format))
    return action


def _action(value: object, where: _Where, variables: Mapping[str, str]) -> Action:
    table = _table(value, where, None)
    _check_keys(table, _ACTION_KEYS, where)
    raw_url = _string(table, "url", where)
    if raw_url is None:
        raise where.error("url", "is required")
    url = _substitute(raw_url, variables, where)
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 - urlsplit defers some checks (a bad [IPv6]) to the first access
    except ValueError as exc:
        raise where.error("url", f"{url!r}: {exc}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise where.error("url", f"{url!r} must start with udp://, tcp://, tls://, relp:// or relp+tls://")
    if not parts.hostname:
        raise where.error("url", f"{url!r} has no host")
    try:
        port = parts.port
    except ValueError as exc:
        raise where.error("url", f"{url!r}: {exc}") from None
    if port == 0:
        raise where.error("url", f"{url!r}: port must be 1..65535")
    if parts.query or (parts.path not in ("", "/")):
        raise where.error("url", f"{url!r}: give options as keys of the action, not in the URL")
    message = _message_options(table, where)
    tz = _string(table, "tz", where, "UTC")
    if tz is not None and tz.upper() != "UTC":
        try:
            ZoneInfo(tz)
        except (ValueError, LookupError, OSError):
            raise where.error("tz", f"{tz!r} is not a known IANA time zone") from None
    scheme = parts.scheme.lower()
    framing = _choice(table, "framing", FRAMINGS, where, None)
    if framing is not None and scheme not in ("tcp", "tls"):
        raise where.error("framing", "applies to tcp:// and tls:// only")
    verify = table.get("verify", True)
    if not isinstance(verify, bool):
        raise where.error("verify", f"{verify!r} must be true or false")
    files = {k: _string(table, k, where) for k in ("ca_file", "cert_file", "key_file")}
    if scheme not in _TLS_SCHEMES:
        for key, file_value in files.items():
            if file_value is not None:
                raise where.error(key, "applies to tls:// and relp+tls:// only")
        if "verify" in table:
            raise where.error("verify", "applies to tls:// and relp+tls:// only")
    if files["key_file"] is not None and files["cert_file"] is None:
        raise where.error("key_file", "needs cert_file")
    action = Action(
        url=url,
        tz=tz or "UTC",
        hostname=_string(table, "hostname", where),
        framing=framing,
        ca_file=files["ca_file"],
        cert_file=files["cert_file"],
        key_file=files["key_file"],
        verify=verify,
        label=" ".join(where.parts),
        **message,
    )
    return _check_combination(action, where)


def _rule(value: object, number: int, where: _Where, variables: Mapping[str, str]) -> Rule:
    table = _table(value, where.at(f"rule {number}"), None)
    name = table.get("name")
    if not (isinstance(name, str) and name.strip()):
        raise where.at(f"rule {number}").error("name", f"{name!r} must be a non-empty string")
    here = where.at(f'rule "{name}"')
    _check_keys(table, ("name", "severity", "protocols", "engines", "groups", "actions"), here)
    try:
        severity = Severity.coerce(table.get("severity", "Warning"))
    except ValueError as exc:
        raise here.error("severity", f"{table.get('severity')!r} {exc}") from None
    protocols = _string_list(table, "protocols", here, allow_any=True)
    engine_names = _string_list(table, "engines", here, allow_any=True)
    engines: frozenset[AlertType] | None = None
    if engine_names is not None:
        try:
            engines = frozenset(AlertType.coerce(e) for e in engine_names)
        except ValueError as exc:
            raise here.error("engines", f"{engine_names!r}: {exc}") from None
    groups = _string_list(table, "groups", here, allow_any=True)
    actions = table.get("actions")
    if not isinstance(actions, list) or not actions:
        raise here.error("actions", "at least one [[rules.actions]] table is required")
    return Rule(
        name=name,
        actions=tuple(_action(a, here.at(f"action {i}"), variables) for i, a in enumerate(actions, 1)),
        min_severity=severity,
        protocols=None if protocols is None else frozenset(_fold(p) for p in protocols),
        engines=engines,
        groups=None if groups is None else frozenset(_fold(canonical_group(g) or g) for g in groups),
    )


def _device(value: str, where: _Where) -> str:
    for canonical in (canonical_ip, canonical_mac):
        try:
            return canonical(value)
        except ValueError:
            continue
    raise where.error("devices", f"{value!r} is not an IP or MAC address")


def _exclusion(value: object, number: int, where: _Where) -> Exclusion:
    table = _table(value, where.at(f"exclusion {number}"), None)
    name = table.get("name", str(number))
    if not (isinstance(name, str) and name.strip()):
        raise where.at(f"exclusion {number}").error("name", f"{name!r} must be a non-empty string")
    here = where.at(f'exclusion "{name}"')
    _check_keys(table, ("name", "titles", "devices", "sensors"), here)
    titles = _string_list(table, "titles", here, allow_any=False)
    devices = _string_list(table, "devices", here, allow_any=False)
    sensors = _string_list(table, "sensors", here, allow_any=False)
    if titles is None and devices is None and sensors is None:
        raise here.error(None, "give at least one of titles, devices, sensors")
    return Exclusion(
        name=name,
        titles=None if titles is None else frozenset(_fold(t) for t in titles),
        devices=None if devices is None else frozenset(_device(d, here) for d in devices),
        sensors=None if sensors is None else frozenset(_fold(s) for s in sensors),
    )


def parse_config(
    data: Mapping[str, Any], source: str = "<config>", variables: Mapping[str, str] | None = None
) -> ForwardingConfig:
    """Validate decoded TOML; ``{name}`` placeholders in URLs are filled from ``variables``."""
    where = _Where(source)
    _check_keys(data, ("rules", "exclusions"), where)
    rules = data.get("rules")
    if not isinstance(rules, list) or not rules:
        raise where.error("rules", "at least one [[rules]] table is required")
    exclusions = data.get("exclusions", [])
    if not isinstance(exclusions, list):
        raise where.error("exclusions", "must be an array of [[exclusions]] tables")
    parsed = tuple(_rule(r, i, where, variables or {}) for i, r in enumerate(rules, 1))
    names = [r.name for r in parsed]
    for name in names:
        if names.count(name) > 1:
            raise where.at(f'rule "{name}"').error("name", "is used by more than one rule")
    return ForwardingConfig(
        rules=parsed,
        exclusions=tuple(_exclusion(e, i, where) for i, e in enumerate(exclusions, 1)),
        source=source,
    )


def load_config(path: str | Path, variables: Mapping[str, str] | None = None) -> ForwardingConfig:
    """Read and validate a TOML forwarding configuration; raises ConfigError (and OSError)."""
    path = Path(path)
    with path.open("rb") as stream:
        try:
            data = tomllib.load(stream)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path.name}: not valid TOML: {exc}") from None
    return parse_config(data, path.name, variables)


def loads_config(text: str, source: str = "<config>", variables: Mapping[str, str] | None = None) -> ForwardingConfig:
    """Like :func:`load_config`, from TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return parse_config(data, source, variables)
