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

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from siemfmt.formats import FORMATS, FormatName
from siemfmt.groups import canonical_group, resolve_group
from siemfmt.model import Alert, AlertType, Severity, canonical_ip, canonical_mac

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
    "load_config",
    "loads_config",
    "parse_config",
]

HeaderKind = Literal["rfc3164", "rfc5424", "none"]
Framing = Literal["lf", "octet-counting"]
HEADERS: tuple[str, ...] = ("rfc3164", "rfc5424", "none")
FRAMINGS: tuple[str, ...] = ("lf", "octet-counting")
SCHEMES: tuple[str, ...] = ("udp", "tcp", "tls")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WS = re.compile(r"\s+")


class ConfigError(ValueError):
    """A forwarding configuration is invalid; the message names the file, the rule and the key."""


def _fold(text: str) -> str:
    return _WS.sub(" ", text).strip().casefold()


@dataclass(frozen=True, slots=True)
class Action:
    """Where and how to send: a destination URL and the message and transport options."""

    url: str
    format: FormatName = "cef"
    header: HeaderKind = "rfc3164"
    tz: str = "UTC"
    hostname: str | None = None
    framing: Framing | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True
    label: str = ""

    @property
    def scheme(self) -> str:
        """``udp``, ``tcp`` or ``tls``."""
        return urlsplit(self.url).scheme.lower()

    def transport_options(self) -> dict[str, Any]:
        """Keyword options for :func:`siemfmt.transport.connect` (only those that apply to the scheme)."""
        options: dict[str, Any] = {}
        if self.scheme in ("tcp", "tls") and self.framing is not None:
            options["framing"] = self.framing
        if self.scheme == "tls":
            for key in ("ca_file", "cert_file", "key_file"):
                value = getattr(self, key)
                if value is not None:
                    options[key] = value
            if not self.verify:
                options["verify"] = False
        return options

    def format_options(self) -> dict[str, Any]:
        """Keyword options for :func:`siemfmt.make_formatter`."""
        return {"header": self.header, "tz": self.tz, "hostname": self.hostname}


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


def _action(value: object, where: _Where, variables: Mapping[str, str]) -> Action:
    table = _table(value, where, None)
    allowed = ("url", "format", "header", "tz", "hostname", "framing", "ca_file", "cert_file", "key_file", "verify")
    _check_keys(table, allowed, where)
    raw_url = _string(table, "url", where)
    if raw_url is None:
        raise where.error("url", "is required")
    url = _substitute(raw_url, variables, where)
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise where.error("url", f"{url!r} must start with udp://, tcp:// or tls://")
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
    fmt = _choice(table, "format", tuple(FORMATS), where, "cef")
    header = _choice(table, "header", HEADERS, where, "rfc3164")
    tz = _string(table, "tz", where, "UTC")
    if tz is not None and tz.upper() != "UTC":
        try:
            ZoneInfo(tz)
        except (ValueError, LookupError, OSError):
            raise where.error("tz", f"{tz!r} is not a known IANA time zone") from None
    scheme = parts.scheme.lower()
    framing = _choice(table, "framing", FRAMINGS, where, None)
    if framing is not None and scheme == "udp":
        raise where.error("framing", "applies to tcp:// and tls:// only")
    verify = table.get("verify", True)
    if not isinstance(verify, bool):
        raise where.error("verify", f"{verify!r} must be true or false")
    files = {k: _string(table, k, where) for k in ("ca_file", "cert_file", "key_file")}
    if scheme != "tls":
        for key, file_value in files.items():
            if file_value is not None:
                raise where.error(key, "applies to tls:// only")
        if "verify" in table:
            raise where.error("verify", "applies to tls:// only")
    if files["key_file"] is not None and files["cert_file"] is None:
        raise where.error("key_file", "needs cert_file")
    return Action(
        url=url,
        format=fmt,
        header=header,
        tz=tz or "UTC",
        hostname=_string(table, "hostname", where),
        framing=framing,
        ca_file=files["ca_file"],
        cert_file=files["cert_file"],
        key_file=files["key_file"],
        verify=verify,
        label=" ".join(where.parts),
    )


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
