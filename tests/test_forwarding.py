"""Forwarding rules: matching (severity edges, protocols, engines, groups, exclusions) and validation."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from siemfmt import Alert, AlertType, Severity, format_alert, load_alert, parse
from siemfmt.forwarding import Action, ConfigError, ForwardingConfig, load_config, loads_config
from siemfmt.syslog import Clock
from tests.conftest import FIXTURES, load_json

REFERENCE = load_json(FIXTURES / "alerts" / "01-reference.json")  # Major, Policy Violation, S7


def alert(**changes: Any) -> Alert:
    return load_alert({**REFERENCE, **changes})


def config(body: str, **variables: str) -> ForwardingConfig:
    return loads_config(body, "rules.toml", variables)


ACTION = '\n  [[rules.actions]]\n  url = "udp://127.0.0.1:5514"\n'


def one_rule(conditions: str) -> ForwardingConfig:
    return config(f'[[rules]]\nname = "r"\n{conditions}\n{ACTION}')


@pytest.mark.parametrize(
    ("threshold", "severity", "matches"),
    [
        ("Warning", "Warning", True),
        ("Minor", "Warning", False),
        ("Minor", "Minor", True),
        ("Major", "Minor", False),
        ("Major", "Major", True),
        ("Major", "Critical", True),
        ("Critical", "Major", False),
        ("critical", "Critical", True),
    ],
)
def test_minimal_severity_edges(threshold: str, severity: str, matches: bool) -> None:
    cfg = one_rule(f'severity = "{threshold}"')
    assert cfg.rules[0].min_severity == Severity.coerce(threshold)
    assert bool(cfg.actions_for(alert(severity=severity))) is matches


def test_default_severity_is_warning_and_any_matches_everything() -> None:
    cfg = one_rule('protocols = "any"\nengines = "ANY"')
    rule = cfg.rules[0]
    assert rule.min_severity is Severity.WARNING and rule.protocols is None and rule.engines is None
    assert cfg.actions_for(alert(severity="Warning", protocol=None, type="Malware"))


@pytest.mark.parametrize(
    ("protocol", "matches"),
    [("S7", True), ("s7", True), ("MODBUS", True), ("DNP3", False), (None, False)],
)
def test_protocol_filter_is_case_insensitive_and_needs_a_protocol(protocol: str | None, matches: bool) -> None:
    cfg = one_rule('protocols = ["S7", "Modbus"]')
    assert bool(cfg.actions_for(alert(protocol=protocol))) is matches


@pytest.mark.parametrize(
    ("engine", "matches"),
    [("Policy Violation", True), ("POLICY_VIOLATION", True), ("Malware", True), ("Anomaly", False)],
)
def test_engine_filter(engine: str, matches: bool) -> None:
    cfg = one_rule('engines = ["policy violation", "MALWARE"]')
    assert cfg.rules[0].engines == frozenset({AlertType.POLICY_VIOLATION, AlertType.MALWARE})
    assert bool(cfg.actions_for(alert(type=engine))) is matches


def test_group_filter_uses_the_resolved_group() -> None:
    cfg = one_rule('groups = ["programming", "Suspicion of Malware"]')
    assert cfg.actions_for(alert())  # catalog: "Unauthorized PLC Program Upload" -> Programming
    assert cfg.actions_for(alert(alert_group="suspicion of malware"))
    assert not cfg.actions_for(alert(alert_group="Scan"))
    assert not cfg.actions_for(alert(title="Something made up"))  # -> NA


def test_all_conditions_must_hold() -> None:
    cfg = one_rule('severity = "Major"\nprotocols = ["S7"]\nengines = ["Policy Violation"]')
    assert cfg.actions_for(alert())
    assert not cfg.actions_for(alert(severity="Minor"))
    assert not cfg.actions_for(alert(protocol="Modbus"))
    assert not cfg.actions_for(alert(type="Anomaly"))


def test_every_action_of_every_matching_rule_in_file_order() -> None:
    cfg = config(
        """
[[rules]]
name = "all"
  [[rules.actions]]
  url = "udp://a:1"
  [[rules.actions]]
  url = "tcp://b:2"
  format = "leef"
[[rules]]
name = "critical"
severity = "Critical"
  [[rules.actions]]
  url = "tls://c:3"
  format = "text"
[[rules]]
name = "major"
severity = "Major"
  [[rules.actions]]
  url = "udp://a:1"
  format = "object"
"""
    )
    assert [(a.url, a.format) for a in cfg.actions_for(alert(severity="Critical"))] == [
        ("udp://a:1", "cef"),
        ("tcp://b:2", "leef"),
        ("tls://c:3", "text"),
        ("udp://a:1", "object"),
    ]
    assert [r.name for r in cfg.matching_rules(alert(severity="Major"))] == ["all", "major"]
    assert [a.url for a in cfg.actions_for(alert(severity="Warning"))] == ["udp://a:1", "tcp://b:2"]


EXCLUDING = (
    """
[[exclusions]]
name = "noisy"
titles = ["unauthorized   PLC program  UPLOAD"]
sensors = ["plant a sensor"]
[[exclusions]]
name = "engineering station"
devices = ["00-1A-2B-3C-4D-99", "10.1.2.0077"]
[[rules]]
name = "all"
"""
    + ACTION
)


def test_exclusions_win_over_every_rule() -> None:
    with pytest.raises(ConfigError, match=r"10\.1\.2\.0077"):
        config(EXCLUDING)
    cfg = config(EXCLUDING.replace("10.1.2.0077", "10.1.2.77"))
    assert cfg.excluded(alert()) is not None and cfg.excluded(alert()).name == "noisy"  # type: ignore[union-attr]
    assert cfg.actions_for(alert()) == []
    # both criteria of "noisy" must hold: another sensor is not excluded
    assert cfg.excluded(alert(sensor_name="Plant B Sensor")) is None
    assert cfg.actions_for(alert(sensor_name="Plant B Sensor"))
    # device addresses: source or destination, IP or MAC, any spelling
    moved = alert(title="Other", destination={"ip": "10.1.2.77"})
    assert cfg.excluded(moved) is not None
    by_mac = alert(title="Other", source={"mac": "00:1a:2b:3c:4d:99"})
    assert cfg.excluded(by_mac) is not None
    assert cfg.excluded(alert(title="Other")) is None


def test_action_options_map_to_transport_options() -> None:
    cfg = config(
        """
[[rules]]
name = "tls"
  [[rules.actions]]
  url = "tls://siem.example:6514"
  format = "leef"
  header = "rfc5424"
  tz = "Europe/Berlin"
  hostname = "sensor-1"
  framing = "octet-counting"
  ca_file = "ca.pem"
  cert_file = "client.pem"
  key_file = "client.key"
  verify = false
  [[rules.actions]]
  url = "udp://{host}:{port}"
""",
        host="10.0.0.1",
        port="5514",
    )
    tls, udp = cfg.actions
    assert tls.transport_options() == {
        "framing": "octet-counting",
        "ca_file": "ca.pem",
        "cert_file": "client.pem",
        "key_file": "client.key",
        "verify": False,
    }
    assert tls.format_options() == {
        "header": "rfc5424",
        "tz": "Europe/Berlin",
        "hostname": "sensor-1",
        "profile": "defender",
        "dialect": "current",
        "cef_header_space": False,
        "pad_day": None,
        "leef_version": "1.0",
        "leef_delimiter": None,
        "leef_delimiter_hex": False,
        "time_format": "default",
        "infer_group": True,
        "enterprise_number": 32473,
    }
    assert udp.url == "udp://10.0.0.1:5514" and udp.transport_options() == {} and udp.format == "cef"
    assert udp.header is None and udp.format_options()["header"] is None  # the profile's header


def test_profile_dialect_and_switches_map_to_format_options(clock: Clock) -> None:
    cfg = config(
        """
[[rules]]
name = "siems"
  [[rules.actions]]
  url = "udp://arcsight:514"
  profile = "arcsight"
  cef_header_space = true
  [[rules.actions]]
  url = "tcp://qradar:514"
  profile = "qradar"
  leef_delimiter = "|"
  leef_delimiter_hex = true
  [[rules.actions]]
  url = "udp://syslog:514"
  profile = "rfc5424-sd"
  enterprise_number = 99999
  [[rules.actions]]
  url = "udp://old:514"
  dialect = "cyberx-qradar"
  [[rules.actions]]
  url = "udp://azure:514"
  format = "leef"
  dialect = "azure-2021"
  leef_version = 2.0
  leef_delimiter = "^"
  time_format = "epoch-ms"
  infer_group = false
  pad_day = false
"""
    )
    arcsight, qradar, sd, cyberx, azure = cfg.actions
    # an omitted format is the profile's (and cyberx-qradar's) only one
    assert [a.format for a in cfg.actions] == ["cef", "leef", "sd", "leef", "leef"]
    assert [a.describe() for a in cfg.actions] == [
        "arcsight cef",
        "qradar leef",
        "rfc5424-sd sd",
        "leef cyberx-qradar",
        "leef azure-2021",
    ]
    ref = alert()
    assert arcsight.formatter(clock)(ref) == format_alert(ref, profile="arcsight", cef_header_space=True, clock=clock)
    assert "|8| rt=" in arcsight.formatter(clock)(ref)
    line = qradar.formatter(clock)(ref)
    assert line.startswith("<9>1 2026-03-10T08:15:31.000Z ") and "|x7C|devTime=" in line  # header: rfc5424
    assert parse(line).get("sev") == "8"
    assert "[alert@99999 " in sd.formatter(clock)(ref)
    assert cyberx.formatter(clock)(ref).startswith("<9>Mar 10 08:15:31 Plant_A_Sensor LEEF:1.0|CyberX|")
    assert azure.leef_version == "2.0" and azure.pad_day is False and azure.infer_group is False
    assert azure.formatter(clock)(ref) == format_alert(ref, "leef", clock=clock, **azure.format_options())
    assert Action("udp://h:1", profile="qradar").resolved_format == "leef"  # built in code: format None
    assert Action("udp://h:1").resolved_format == "cef"


RULE = '[[rules]]\nname = "plc"\n'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            RULE + ACTION + '  [[rules.actions]]\n  url = "udp://h:1"\n  format = "xml"\n',
            "rules.toml: rule \"plc\" action 2: format: 'xml' must be one of text, object, cef, leef",
        ),
        (RULE + 'severity = "High"\n' + ACTION, "rules.toml: rule \"plc\": severity: 'High' is not a severity"),
        (RULE + 'engines = ["Intrusion"]\n' + ACTION, 'rules.toml: rule "plc": engines: '),
        (RULE + 'protocols = "S7"\n' + ACTION, 'rules.toml: rule "plc": protocols: \'S7\' must be "any" or a'),
        (RULE + 'colour = "red"\n' + ACTION, 'rules.toml: rule "plc": colour: unknown key'),
        (RULE, 'rules.toml: rule "plc": actions: at least one'),
        ("", "rules.toml: rules: at least one [[rules]] table is required"),
        ("[[rules]]\n" + ACTION, "rules.toml: rule 1: name: None must be a non-empty string"),
        (RULE + ACTION + RULE + ACTION, 'rules.toml: rule "plc": name: is used by more than one rule'),
        (RULE + '[[rules.actions]]\nurl = "http://h:1"\n', "rule \"plc\" action 1: url: 'http://h:1' must start"),
        (RULE + '[[rules.actions]]\nformat = "cef"\n', 'rule "plc" action 1: url: is required'),
        (RULE + '[[rules.actions]]\nurl = "udp://h:{port}"\n', "url: 'udp://h:{port}': no value for placeholder"),
        (RULE + '[[rules.actions]]\nurl = "udp://h:99999"\n', 'rule "plc" action 1: url: '),
        (RULE + '[[rules.actions]]\nurl = "udp://h:1"\nframing = "lf"\n', "framing: applies to tcp:// and tls://"),
        (RULE + '[[rules.actions]]\nurl = "tcp://h:1"\nframing = "cr"\n', "framing: 'cr' must be one of lf"),
        (
            RULE + '[[rules.actions]]\nurl = "tcp://h:1"\nca_file = "x"\n',
            "ca_file: applies to tls:// and relp+tls:// only",
        ),
        (RULE + '[[rules.actions]]\nurl = "tls://h:1"\nverify = "no"\n', "verify: 'no' must be true or false"),
        (RULE + '[[rules.actions]]\nurl = "udp://h:1"\ntz = "Mars/Base"\n', "tz: 'Mars/Base' is not a known"),
        (RULE + '[[rules.actions]]\nurl = "udp://h:1"\nheader = "5424"\n', "header: '5424' must be one of"),
        ('[[exclusions]]\nname = "x"\n' + RULE + ACTION, 'exclusion "x": give at least one of titles'),
        ('[[exclusions]]\ndevices = ["plc-1"]\n' + RULE + ACTION, "exclusion \"1\": devices: 'plc-1' is not an IP"),
        ("rules = 3", "rules.toml: rules: at least one"),
        (
            RULE + '[[rules.actions]]\nurl = "udp://h:1"\nprofile = "splunk"\n',
            "rules.toml: rule \"plc\" action 1: profile: 'splunk' must be one of defender, arcsight, qradar,",
        ),
        (
            RULE + '[[rules.actions]]\nurl = "udp://h:1"\nprofile = "arcsight"\nformat = "leef"\n',
            "rules.toml: rule \"plc\" action 1: format: 'leef' must be one of cef for profile 'arcsight'",
        ),
        (
            RULE + ACTION + '[[rules.actions]]\nurl = "udp://h:1"\nprofile = "rfc5424-sd"\nheader = "rfc3164"\n',
            "rules.toml: rule \"plc\" action 2: header: 'rfc3164' must be one of rfc5424 for profile 'rfc5424-sd'",
        ),
        (
            RULE + '[[rules.actions]]\nurl = "udp://h:1"\nprofile = "qradar"\ndialect = "azure-2021"\n',
            "rules.toml: rule \"plc\" action 1: dialect: 'azure-2021' applies to the defender profile only",
        ),
        (
            RULE + '[[rules.actions]]\nurl = "udp://h:1"\ndialect = "cyberx-qradar"\nformat = "cef"\n',
            "rules.toml: rule \"plc\" action 1: format: dialect 'cyberx-qradar' is the QRadar action's LEEF",
        ),
        (RULE + '[[rules.actions]]\nurl = "udp://h:1"\ndialect = "2019"\n', "dialect: '2019' must be one of"),
        (
            RULE + '[[rules.actions]]\nurl = "udp://h:1"\nformat = "leef"\nleef_delimiter = "|"\n',
            'rule "plc" action 1: leef_delimiter: LEEF 1.0 always separates attributes with TAB',
        ),
        (
            RULE + '[[rules.actions]]\nurl = "udp://h:1"\nleef_version = "2.0"\nleef_delimiter = "ab"\n',
            "rule \"plc\" action 1: leef_delimiter: 'ab' must be one character",
        ),
        (RULE + '[[rules.actions]]\nurl = "udp://h:1"\nleef_version = 3\n', "leef_version: 3 must be one of 1.0"),
        (RULE + '[[rules.actions]]\nurl = "udp://h:1"\npad_day = "no"\n', "pad_day: 'no' must be true or false"),
        (RULE + '[[rules.actions]]\nurl = "udp://h:1"\ninfer_group = 0\n', "infer_group: 0 must be true or"),
        (RULE + '[[rules.actions]]\nurl = "udp://h:1"\ncef_header_space = 1\n', "cef_header_space: 1 must be"),
        (RULE + '[[rules.actions]]\nurl = "udp://h:1"\ntime_format = "unix"\n', "time_format: 'unix' must be"),
        (
            RULE + '[[rules.actions]]\nurl = "udp://h:1"\nprofile = "rfc5424-sd"\nenterprise_number = 0\n',
            'rule "plc" action 1: enterprise_number: 0 must be a positive integer',
        ),
        (RULE + '[[rules.actions]]\nurl = "udp://h:1"\nenterprise_number = "1"\n', "enterprise_number: '1' must"),
        (RULE + '[[rules.actions]]\nurl = "udp://h:1"\nhostname = "a b"\n', "action 1: hostname: 'a b' must be"),
        ("[rules\n", "rules.toml: not valid TOML"),
    ],
)
def test_validation_errors_name_file_rule_and_key(body: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config(body)
    assert str(info.value).startswith(message) or message in str(info.value), str(info.value)


def test_load_config_from_file_uses_its_name(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(RULE + ACTION.replace("udp://", "tcp://"), encoding="utf-8")
    cfg = load_config(path)
    assert cfg.source == "site.toml" and cfg.actions[0].url == "tcp://127.0.0.1:5514"
    path.write_text(RULE + '[[rules.actions]]\nurl = "udp://h:1"\nformat = 7\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r'^site\.toml: rule "plc" action 1: format: 7 must be one of'):
        load_config(path)


def test_bundled_demo_rules_are_valid_and_cover_every_format_on_both_transports() -> None:
    text = resources.files("siemfmt").joinpath("data/rules.toml").read_text(encoding="utf-8")
    cfg = loads_config(text, "rules.toml", {"udp_port": "1", "tcp_port": "2"})
    assert {(a.scheme, a.format) for a in cfg.actions} == {
        (s, f) for s in ("udp", "tcp") for f in ("text", "object", "cef", "leef")
    }
    with pytest.raises(ConfigError, match="no value for placeholder"):
        loads_config(text, "rules.toml")


def test_the_documented_example_is_valid() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "forwarding.md").read_text(encoding="utf-8")
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    cfg = loads_config(example, "rules.toml")
    assert [r.name for r in cfg.rules] == ["soc", "plc"] and len(cfg.actions) == 4
    scan = alert(title="Address Scan Detected", source={"ip": "10.1.9.20"}, severity="Critical")
    assert cfg.excluded(scan) is not None and cfg.actions_for(scan) == []
    assert [a.describe() for a in cfg.actions_for(alert())] == ["cef", "qradar leef", "arcsight cef", "text"]


def test_a_malformed_ipv6_url_names_the_rule_and_key() -> None:
    with pytest.raises(ConfigError, match=r"url: 'udp://\[::1:5514': Invalid IPv6 URL"):
        loads_config('[[rules]]\nname = "v6"\n  [[rules.actions]]\n  url = "udp://[::1:5514"\n', "rules.toml")
