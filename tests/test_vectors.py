"""Decoding test vectors collected from other projects' suites (wire-specs.md "Test vectors")."""

from __future__ import annotations

import pytest

import siemfmt
from siemfmt.formats import cef, leef
from siemfmt.syslog import OctetCountingDecoder

H = "CEF:0|security|threatmanager|1.0|100|trojan successfully stopped|10|"


# --- CEF ------------------------------------------------------------------------------------------


def test_v14_basic() -> None:
    b = cef.parse(H + "src=10.0.0.192 dst=12.121.122.82 spt=1232")
    assert b.header == ("0", "security", "threatmanager", "1.0", "100", "trojan successfully stopped", "10")
    assert b.fields == (("src", "10.0.0.192"), ("dst", "12.121.122.82"), ("spt", "1232"))


def test_v15_escaped_backslashes_in_header() -> None:
    b = cef.parse("CEF:0|secu\\\\rity|threat\\\\manager|1.\\\\0|10\\\\0|tro\\\\jan successfully stopped|\\\\10|")
    assert b.header[1:] == ("secu\\rity", "threat\\manager", "1.\\0", "10\\0", "tro\\jan successfully stopped", "\\10")
    assert b.fields == ()


def test_v16_escaped_backslash_then_pipe() -> None:
    b = cef.parse("CEF:0|security\\\\\\||threatmanager\\\\|1.0|100|trojan successfully stopped|10|")
    assert b.header[1:3] == ("security\\|", "threatmanager\\")


def test_v17_escaped_pipes_in_header() -> None:
    b = cef.parse("CEF:0|secu\\|rity|threatmanager\\||1.\\|0|10\\|0|tro\\|jan successfully stopped|\\|10|")
    assert b.header[1:] == ("secu|rity", "threatmanager|", "1.|0", "10|0", "tro|jan successfully stopped", "|10")


def test_v18_double_backslash_in_name() -> None:
    b = cef.parse("CEF:0|security|threatmanager|1.0|100|double backslash\\\\\\\\|10|src=10.0.0.192")
    assert b.header[5:] == ("double backslash\\\\", "10")


def test_v19_empty_vendor_and_product() -> None:
    b = cef.parse("CEF:0|||1.0|100|trojan successfully stopped|10|src=10.0.0.192")
    assert b.header[1:3] == ("", "")


def test_v20_pipe_in_extension() -> None:
    assert cef.parse(H + "moo=this|has an pipe").fields == (("moo", "this|has an pipe"),)


def test_v21_escaped_pipe_in_extension_is_kept_literally() -> None:
    assert cef.parse(H + "moo=this\\|has an escaped pipe").fields == (("moo", "this\\|has an escaped pipe"),)


def test_v22_unescaped_equals_not_after_a_key() -> None:
    assert cef.parse(H + "moo=this =has = equals\\=").fields == (("moo", "this =has = equals="),)


def test_v23_escapes_in_extension() -> None:
    b = cef.parse(
        H + "foo=bar msg=this message has escaped equals \\= and escaped newlines \\n escaped carriage returns"
        " \\r and escaped backslashes \\\\ in it bar=baz"
    )
    assert b.fields == (
        ("foo", "bar"),
        (
            "msg",
            "this message has escaped equals = and escaped newlines \n escaped carriage returns \r and escaped"
            " backslashes \\ in it",
        ),
        ("bar", "baz"),
    )


def test_v24_query_string() -> None:
    b = cef.parse(H + "go=start now query_string=key1\\=value1&key2\\=value3 aa.bc&key3\\=value4 final=done")
    assert b.fields == (
        ("go", "start now"),
        ("query_string", "key1=value1&key2=value3 aa.bc&key3=value4"),
        ("final", "done"),
    )


def test_v25_leading_and_double_spaces() -> None:
    b = cef.parse(H + " src=10.0.0.192  dst=12.121.122.82  spt=1232")
    assert [(k, v.strip()) for k, v in b.fields] == [("src", "10.0.0.192"), ("dst", "12.121.122.82"), ("spt", "1232")]


def test_v26_syslog_prefix_before_cef() -> None:
    m = siemfmt.parse("Syslogdate Sysloghost CEF:0|security|threatmanager|1.0|100|trojan successfully stopped|10|a=b")
    assert m.format == "cef"
    assert m.prefix == "Syslogdate Sysloghost "
    assert m.get("a") == "b"


def test_v27_beats_escapes() -> None:
    assert cef.parse(H + "msg=a+b\\=c x=c\\\\d\\=z").fields == (("msg", "a+b=c"), ("x", "c\\d=z"))


def test_v28_escaped_message() -> None:
    b = cef.parse(
        "CEF:0|security\\\\compliance|threat\\|->manager|1.0|100|message contains escapes|10|spt=1232 "
        "msg=Newlines in messages\\nare allowed.\\r\\nAnd so are carriage feeds\\\\newlines\\\\\\=."
    )
    assert b.header[1:3] == ("security\\compliance", "threat|->manager")
    assert dict(b.fields)["msg"] == "Newlines in messages\nare allowed.\r\nAnd so are carriage feeds\\newlines\\=."


def test_v29_trailing_spaces_of_non_final_value_are_kept() -> None:
    b = cef.parse(H + "spt=1232 msg=Trailing space in non-final extensions is  preserved    src=10.0.0.192 ")
    assert dict(b.fields)["msg"] == "Trailing space in non-final extensions is  preserved   "
    assert dict(b.fields)["src"] == "10.0.0.192"


def test_v30_trailing_white_space_of_final_value_is_dropped() -> None:
    b = cef.parse(H + "spt=1232 msg=Trailing space in final extensions is not preserved\t \r\n")
    assert dict(b.fields)["msg"] == "Trailing space in final extensions is not preserved"


def test_v31_tab_is_not_a_separator() -> None:
    b = cef.parse(H + "spt=1232 msg=Tab is not a separator\tsrc=127.0.0.1")
    assert b.fields == (("spt", "1232"), ("msg", "Tab is not a separator\tsrc=127.0.0.1"))


def test_v32_empty_value() -> None:
    b = cef.parse("CEF:26|security|threatmanager|1.0|100|trojan successfully stopped|10|src=10.0.0.192 dst= spt=1232")
    assert b.header[0] == "26"
    assert b.fields == (("src", "10.0.0.192"), ("dst", ""), ("spt", "1232"))


def test_v33_malformed_equals_recovers_at_next_key() -> None:
    b = cef.parse(
        "CEF:0|vendor|product|version|event_id|name|Very-High| msg=Hello World error=Failed because id==old_id "
        "user=root angle=106.7<=180"
    )
    d = dict(b.fields)
    assert (d["msg"], d["error"], d["user"]) == ("Hello World", "Failed because", "root")
    assert b.header[6] == "Very-High"


def test_v34_truncated_header_is_an_error_that_says_where() -> None:
    with pytest.raises(siemfmt.ParseError, match="4 of 7 fields: signature_id is missing") as err:
        cef.parse("CEF:0|SentinelOne|Mgmt|activityID=1111111111111111111 activityType=3505")
    assert err.value.position == 23


def test_v35_axosyslog_vectors() -> None:
    b = cef.parse(
        "CEF:0|Kaspers\\|kyLab|SecurityCenter|13.2.0.1511|KLPRCI_TaskState|Completed successfully|1|rt=1647626887000"
    )
    assert b.header[1] == "Kaspers|kyLab"
    assert b.fields == (("rt", "1647626887000"),)
    assert cef.parse(H + "escaped=foo\\=bar\\=baz").fields == (("escaped", "foo=bar=baz"),)


# --- LEEF -----------------------------------------------------------------------------------------

LH = "LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|"


def test_v36_leef1() -> None:
    b = leef.parse(
        LH + "src=192.0.2.0\tdst=172.50.123.1\tsev=5\tcat=anomaly\tsrcPort=81\tdstPort=21\tusrName=joe.black"
    )
    assert b.header == ("1.0", "Microsoft", "MSExchange", "4.0 SP1", "15345")
    assert len(b.fields) == 7
    assert dict(b.fields)["usrName"] == "joe.black"


def test_v37_equals_in_values() -> None:
    assert leef.parse(LH + "foo=foo=bar=baz\ttik=tik=tak=toe").fields == (
        ("foo", "foo=bar=baz"),
        ("tik", "tik=tak=toe"),
    )


def test_v38_escaped_pipe_in_header() -> None:
    assert leef.parse("LEEF:1.0|Micro\\|soft|MSExchange|4.0 SP1|15345|a=b").header[1] == "Micro|soft"


def test_v39_spaces_inside_values() -> None:
    assert leef.parse(LH + "foo=bar baz\ttik=tak toe").fields == (("foo", "bar baz"), ("tik", "tak toe"))


def test_v40_header_white_space_is_kept() -> None:
    assert leef.parse("LEEF:1.0| Microsoft |  MSExchange  |4.0 SP1|15345|a=b").header[1:3] == (
        " Microsoft ",
        "  MSExchange  ",
    )


def test_v41_leef2_caret() -> None:
    b = leef.parse("LEEF:2.0|Microsoft|MSExchange|4.0 SP1|15345|^|foo=bar^bar=baz^baz=tik=tak")
    assert b.header[5] == "^"
    assert b.fields == (("foo", "bar"), ("bar", "baz"), ("baz", "tik=tak"))


@pytest.mark.parametrize("field", ["0x40", "x40", "X40", "0X40"])
def test_v42_leef2_hex_delimiter(field: str) -> None:
    b = leef.parse(f"LEEF:2.0|Microsoft|MSExchange|4.0 SP1|15345|{field}|foo=bar@bar=baz@baz=tik=tak")
    assert b.header[5] == "@"
    assert b.fields == (("foo", "bar"), ("bar", "baz"), ("baz", "tik=tak"))


def test_v43_leef2_empty_delimiter_means_tab() -> None:
    b = leef.parse("LEEF:2.0|Microsoft|MSExchange|4.0 SP1|15345||foo=bar\tbar=baz\tbaz=tik=tak")
    assert b.header[5] == "\t"
    assert b.fields == (("foo", "bar"), ("bar", "baz"), ("baz", "tik=tak"))


def test_v44_leef2_without_delimiter_field() -> None:
    b = leef.parse("LEEF:2.0|Microsoft|MSExchange|4.0 SP1|15345|foo=bar\tbar=baz|\tbaz=tik=tak")
    assert dict(b.fields) == {"foo": "bar", "bar": "baz|", "baz": "tik=tak"}
    b = leef.parse("LEEF:2.0|Microsoft|MSExchange|4.0 SP1|15345|INVALID|foo=bar\tbar=baz|\tbaz=tik=tak")
    assert dict(b.fields)["bar"] == "baz|"


def test_v45_missing_header_field() -> None:
    with pytest.raises(siemfmt.ParseError, match="product_version"):
        leef.parse("LEEF:1.0|Microsoft|MSExchange")


def test_v46_guide_examples() -> None:
    b = leef.parse("LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^sev=5^srcPort=81^dstPort=21")
    assert dict(b.fields) == {"src": "10.0.1.8", "dst": "10.0.0.5", "sev": "5", "srcPort": "81", "dstPort": "21"}
    m = siemfmt.parse(
        "<13>Dec 23 11:52:05 fidelis.xps.test LEEF:1.0|Fidelis Cybersecurity|direct2500|8.1.3|Packet has excess data|"
        "act=alert\tdevTime=1450889524000"
    )
    assert (m.syslog.pri, m.syslog.hostname, m.format) == (13, "fidelis.xps.test", "leef")
    assert m.get("devTime") == "1450889524000"


def test_the_only_real_sensor_sample() -> None:
    """defender-formats.md §6: the QRadar action's line, as rendered (spaces between attributes)."""
    line = (
        "<9>May 5 12:29:23 sensor_Agent LEEF:1.0|CyberX|CyberX platform|2.5.0|CyberX platform Alert|"
        "devTime=May 05 2019 15:28:54 devTimeFormat=MMM dd yyyy HH:mm:ss sev=2 cat=XSense Alerts"
    )
    m = siemfmt.parse(line)
    assert (m.syslog.kind, m.syslog.timestamp, m.syslog.hostname) == ("rfc3164", "May 5 12:29:23", "sensor_Agent")
    assert m.header == ("1.0", "CyberX", "CyberX platform", "2.5.0", "CyberX platform Alert")
    assert m.get("devTime") == "May 05 2019 15:28:54 devTimeFormat=MMM dd yyyy HH:mm:ss sev=2 cat=XSense Alerts"


# --- syslog ---------------------------------------------------------------------------------------


def test_v47_rfc5424_example_1_with_bom() -> None:
    m = siemfmt.parse(
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \ufeff'su root' failed for lonvick on /dev/pts/8"
    )
    h = m.syslog
    assert (h.kind, h.pri, h.facility, h.severity, h.version) == ("rfc5424", 34, 4, 2, 1)
    assert (h.timestamp, h.hostname, h.app_name, h.procid, h.msgid, h.structured_data) == (
        "2003-10-11T22:14:15.003Z",
        "mymachine.example.com",
        "su",
        "-",
        "ID47",
        "-",
    )
    assert m.format == "raw"
    assert m.body == "'su root' failed for lonvick on /dev/pts/8"


def test_v48_rfc5424_example_2() -> None:
    m = siemfmt.parse(
        "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts."
    )
    assert (m.syslog.pri, m.syslog.hostname, m.syslog.procid) == (165, "192.0.2.1", "8710")
    assert m.body == "%% It's time to make the do-nuts."


def test_v49_rfc5424_structured_data() -> None:
    sd = '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]'
    m = siemfmt.parse(f"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 {sd}")
    assert m.syslog.structured_data == sd
    assert m.body == ""


def test_v50_sd_escapes_do_not_end_the_element() -> None:
    m = siemfmt.parse('<132>1 2006-10-29T01:59:59.156+01:00 mymachine evntslog - - [a i="\\]\\"\\\\"] An application')
    assert m.syslog.structured_data == '[a i="\\]\\"\\\\"]'
    assert m.body == "An application"


def test_v51_rfc3164_example() -> None:
    m = siemfmt.parse("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8")
    assert (m.syslog.kind, m.syslog.hostname, m.syslog.timestamp) == ("rfc3164", "mymachine", "Oct 11 22:14:15")
    assert m.body == "su: 'su root' failed for lonvick on /dev/pts/8"


def test_v53_octet_counting_counts_octets() -> None:
    kosme = "\u03ba\u1f79\u03c3\u03bc\u03b5"  # κόσμε with U+1F79: 11 octets, 5 characters
    stream = (
        f"48 <1>1 2003-10-11T22:14:15.003Z host.local - - - -25 <3>1 - host.local - - - -38 <2>1 - host.local su - - - {kosme}"
    ).encode()
    frames = OctetCountingDecoder().feed(stream)
    assert [len(f) for f in frames] == [48, 25, 38]
    assert frames[2].decode().endswith(kosme)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("<192>Oct 11 22:14:15 host x", "PRI 192"),
        ("<9>1 2003-10-11 host app - - - x", "TIMESTAMP"),
        ("<9>1 2003-10-11T22:14:15Z host app - - [unterminated", "unterminated"),
        ("<9>1 2003-10-11T22:14:15Z host app - - x", "structured data"),
    ],
)
def test_bad_syslog_headers(line: str, reason: str) -> None:
    with pytest.raises(siemfmt.ParseError, match=reason):
        siemfmt.parse(line)


def test_octet_counting_returns_good_frames_before_a_bad_header() -> None:
    decoder = OctetCountingDecoder()
    assert decoder.feed(b"3 abc2 dexx junk") == [b"abc", b"de"]
    with pytest.raises(ValueError, match=r"frame header|MSG-LEN"):
        decoder.feed(b"")


def test_octet_counting_limits_and_partial_frames() -> None:
    decoder = OctetCountingDecoder(max_size=4)
    assert decoder.feed(b"4 ab") == []
    assert decoder.feed(b"cd") == [b"abcd"]
    with pytest.raises(ValueError, match="exceeds max_size"):
        decoder.feed(b"5 abcde")
    with pytest.raises(ValueError, match="MSG-LEN"):
        OctetCountingDecoder().feed(b"05 abcde")
