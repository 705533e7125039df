"""Hypothesis strategies: arbitrary alerts with arbitrary Unicode in every text field."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from hypothesis import strategies as st

from siemfmt import DEFAULT_GROUPS, AlertType, Severity

# Every code point but surrogates, with the hostile ASCII ones made frequent.
HOSTILE = '|\\=;"]\r\n\t\x00\x1b\x7f ^:'
text = st.text(alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from(HOSTILE)), max_size=40)
non_empty_text = text.filter(lambda s: s.strip() != "")
# Messages that start like another format's body, so that format detection meets them often (two
# parse bugs hid behind messages such as "CEF:" and "Sensor: " that random text seldom produces).
LOOKALIKES = ("CEF:", "CEF:0|", "LEEF:", "LEEF:2.0|", "Sensor: ", "CyberX platform name: ", "A=", "a=b c=d", "<13>")
message_text = text | st.tuples(st.sampled_from(LOOKALIKES), text).map("".join)
maybe_text = st.none() | text

ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(lambda a: a.exploded.upper())  # non-canonical on purpose
mac = st.binary(min_size=6, max_size=6).flatmap(
    lambda b: st.sampled_from([":", "-"]).map(lambda sep: sep.join(f"{x:02X}" for x in b))
)

device = st.fixed_dictionaries(
    {},
    optional={
        "name": maybe_text,
        "ip": st.none() | ipv4 | ipv6,
        "mac": st.none() | mac,
        "vendor": maybe_text,
        "os": maybe_text,
        "protocol": maybe_text,
        "address": maybe_text,
    },
)

times = st.one_of(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.timezones()),
    st.integers(min_value=10**11, max_value=4102444800000),  # epoch ms
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.replace(tzinfo=timezone.utc).isoformat()
    ),
)

groups = st.one_of(
    st.none(),
    text,
    st.sampled_from(DEFAULT_GROUPS),
    st.sampled_from(["Restart/ Stop Commands", "Restart/Stop Commands", "SUSPICION OF MALWARE", "  "]),
)

titles = st.one_of(
    non_empty_text,
    st.sampled_from(
        [
            "Unauthorized PLC Program Upload",
            "suspicion of  malicious activity",
            "Backup Activity with Antivirus Signatures",
        ]
    ),
)


def alert_records() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "sensor_name": non_empty_text,
            "time": times,
            "title": titles,
            "message": message_text,
            "severity": st.sampled_from([s.value for s in Severity] + ["major", "CRITICAL"]),
            "type": st.sampled_from([t.value for t in AlertType] + ["POLICY_VIOLATION", "malware"]),
        },
        optional={
            "sensor_version": text,
            "protocol": maybe_text,
            "source": st.none() | device,
            "destination": st.none() | device,
            "uuid": maybe_text,
            "alert_group": groups,
        },
    )
