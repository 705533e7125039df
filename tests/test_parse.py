"""siemfmt.parse: header and body detection, Message helpers, and errors that say what and where."""

from __future__ import annotations

import pytest

import siemfmt
from siemfmt.formats import object as object_fmt
from siemfmt.formats import text as text_fmt
from tests.conftest import fixed_clock
from tests.test_contract import EXPECTED, REFERENCE


@pytest.mark.parametrize("fmt", ["text", "object", "cef", "leef"])
def test_reference_lines_parse_with_their_alert_group(fmt: str) -> None:
    m = siemfmt.parse(EXPECTED[fmt])
    assert m.format == fmt
    assert m.alert_group == "Programming"
    assert (m.syslog.kind, m.syslog.pri, m.syslog.timestamp, m.syslog.hostname) == (
        "rfc3164",
        9,
        "Mar 10 08:15:31",
        "Plant_A_Sensor",
    )


def test_trailing_line_terminator_is_ignored() -> None:
    assert siemfmt.parse(EXPECTED["cef"] + "\r\n").fields == siemfmt.parse(EXPECTED["cef"]).fields


def test_text_fields_keep_order_and_repeated_labels() -> None:
    line = siemfmt.format_alert(
        {**REFERENCE, "source": {"protocol": "S7", "address": "DB1"}, "destination": {"protocol": "Modbus"}},
        "text",
        clock=fixed_clock(),
    )
    m = siemfmt.parse(line)
    assert m.getall("Protocol") == ["S7", "Modbus"]
    assert m.getall("Address") == ["DB1"]
    assert m.get("Source") == "N/A"
    assert m.as_dict()["Protocol"] == "S7"


def test_a_value_that_looks_like_another_format_does_not_fool_detection() -> None:
    line = siemfmt.format_alert({**REFERENCE, "message": "see CEF:0|a|b|c|d|e|1|x=y"}, "text", clock=fixed_clock())
    m = siemfmt.parse(line)
    assert m.format == "text"
    assert m.get("Message") == "see CEF:0|a|b|c|d|e|1|x=y"


def test_forced_format() -> None:
    m = siemfmt.parse('a=1 b="two words"', fmt="object")
    assert m.fields == (("a", "1"), ("b", "two words"))


def test_unknown_body_is_raw() -> None:
    m = siemfmt.parse("<13>Oct 11 22:14:15 host just some words")
    assert (m.format, m.fields, m.body, m.alert_group) == ("raw", (), "just some words", None)
    assert siemfmt.parse("a=1 then words").format == "raw"


def test_text_unescapes_every_escape() -> None:
    body = text_fmt.parse("A: x\\;y\\\\z\\n\\r\\t\\x00\\x1b; B: ").fields
    assert body == (("A", "x;y\\z\n\r\t\x00\x1b"), ("B", ""))


def test_object_unescapes_every_escape() -> None:
    fields = object_fmt.parse('a="q\\"b\\\\s\\n\\r\\t\\x7f" b=N/A c=""').fields
    assert fields == (("a", 'q"b\\s\n\r\t\x7f'), ("b", "N/A"), ("c", ""))


@pytest.mark.parametrize(
    ("line", "fmt", "reason", "position"),
    [
        ('a="unterminated', "object", "expected key=value", 0),
        ("a=1 =2", "object", "expected key=value", 4),
        ("no label here", "text", "has no ': '", 0),
        ("LEEF:1.0|V|P|1|E|a=1\tjunk", "leef", "'junk' is not key=value", 21),
        ("CEF:0|V|P|1|E|N|5|junk key=1", "cef", "does not start with key=value", 18),
        ("CEF:x|V", "cef", "expected 'CEF:<version>|'", 0),
    ],
)
def test_malformed_bodies_say_what_and_where(line: str, fmt: siemfmt.FormatName, reason: str, position: int) -> None:
    with pytest.raises(siemfmt.ParseError, match=reason) as err:
        siemfmt.parse(line, fmt=fmt)
    assert err.value.position == position


def test_error_position_counts_from_the_start_of_the_line() -> None:
    line = "<9>Mar 10 08:15:31 host CEF:0|V|P|1"
    with pytest.raises(siemfmt.ParseError) as err:
        siemfmt.parse(line)
    assert err.value.position == len("<9>Mar 10 08:15:31 host CEF:0|V|P|")
    assert "signature_id is missing" in str(err.value)
    assert "at position 34" in str(err.value)


def test_bad_forced_format() -> None:
    with pytest.raises(ValueError, match="fmt"):
        siemfmt.parse("x", fmt="xml")  # type: ignore[arg-type]


def test_object_value_holding_cef_text_stays_object() -> None:
    line = siemfmt.format_alert({**REFERENCE, "message": "relay saw CEF:0|x|y"}, "object", clock=fixed_clock())
    m = siemfmt.parse(line)
    assert (m.format, m.get("Alert_message")) == ("object", "relay saw CEF:0|x|y")


def test_text_mentioning_cef_is_raw_not_an_error() -> None:
    m = siemfmt.parse("<13>Oct 11 22:14:15 host relay saw CEF:0|x")
    assert (m.format, m.body) == ("raw", "relay saw CEF:0|x")


def test_cef_after_a_tag_still_parses_and_a_bad_one_at_the_start_still_fails() -> None:
    m = siemfmt.parse("<13>Oct 11 22:14:15 host app: CEF:0|V|P|1|E|N|5|a=b")
    assert (m.format, m.prefix, m.get("a")) == ("cef", "app: ", "b")
    with pytest.raises(siemfmt.ParseError):
        siemfmt.parse("<13>Oct 11 22:14:15 host CEF:0|V|P|1")


def test_sd_message_whose_msg_looks_like_key_value_stays_sd() -> None:
    line = siemfmt.format_alert({**REFERENCE, "message": "A="}, profile="rfc5424-sd", clock=fixed_clock())
    m = siemfmt.parse(line)
    assert (m.format, m.body, m.get("title")) == ("sd", "A=", REFERENCE["title"])


@pytest.mark.parametrize("message", ["CEF:", "CEF:0|not a whole header", "LEEF:", "LEEF:2.0|V|P"])
def test_sd_message_that_starts_like_cef_or_leef_stays_sd(message: str) -> None:
    """Found by hypothesis: an rfc5424-sd alert whose message starts with ``CEF:`` made ``parse`` raise."""
    line = siemfmt.format_alert({**REFERENCE, "message": message}, profile="rfc5424-sd", clock=fixed_clock())
    m = siemfmt.parse(line)
    assert (m.format, m.body, m.get("title")) == ("sd", message, REFERENCE["title"])
    with pytest.raises(siemfmt.ParseError):  # without structured data it claims to be CEF/LEEF: an error
        siemfmt.parse(f"<13>1 2026-03-10T08:15:31Z host app - - - {message}")


@pytest.mark.parametrize("message", ["Sensor: ", "CyberX platform name: x; Alert Group: NA"])
def test_sd_message_that_starts_with_a_text_label_stays_sd(message: str) -> None:
    """Found by hypothesis: an rfc5424-sd alert whose message is ``Sensor: `` was read as a text line."""
    line = siemfmt.format_alert({**REFERENCE, "message": message}, profile="rfc5424-sd", clock=fixed_clock())
    m = siemfmt.parse(line)
    assert (m.format, m.body, m.get("title")) == ("sd", message, REFERENCE["title"])
    assert siemfmt.parse(f"<13>1 2026-03-10T08:15:31Z host app - - - {message}").format == "text"  # no SD


def test_sd_line_whose_msg_is_a_whole_cef_event_is_cef() -> None:
    m = siemfmt.parse('<13>1 2026-03-10T08:15:31Z host app - - [meta x="1"] CEF:0|V|P|1|E|N|5|a=b')
    assert (m.format, m.get("a")) == ("cef", "b")
