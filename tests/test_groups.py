"""Alert-group resolution (contract §2), the 22 groups, variants and the catalog."""

from __future__ import annotations

import csv

import pytest

from siemfmt import DEFAULT_GROUPS, NO_GROUP, resolve_group
from siemfmt.groups import canonical_group, catalog, catalog_entry
from tests.conftest import ROOT


def test_twenty_two_default_groups() -> None:
    assert len(DEFAULT_GROUPS) == 22
    assert len(set(DEFAULT_GROUPS)) == 22
    assert DEFAULT_GROUPS[5] == "Restart and stop commands"


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("Programming", "Programming"),
        ("programming", "Programming"),
        ("Abnormal Communication Behavior", "Abnormal communication behavior"),
        ("SUSPICION OF MALWARE", "Suspicion of malware"),
        ("Restart/ Stop Commands", "Restart and stop commands"),
        ("Restart/Stop Commands", "Restart and stop commands"),
        ("restart/stop commands", "Restart and stop commands"),
        ("Internet  Access", "Internet access"),
    ],
)
def test_explicit_groups_are_written_in_canonical_spelling(given: str, canonical: str) -> None:
    assert resolve_group(given, "any title") == canonical


def test_explicit_group_wins_over_the_catalog() -> None:
    assert resolve_group("Scan", "Unauthorized PLC Program Upload") == "Scan"


def test_custom_group_is_written_as_given() -> None:
    assert resolve_group("Plant Floor Escalation", "x") == "Plant Floor Escalation"
    assert canonical_group("Plant Floor Escalation") is None


def test_blank_group_falls_back_to_catalog_then_na() -> None:
    assert resolve_group("   ", "Unauthorized PLC Program Upload") == "Programming"
    assert resolve_group(None, "No Such Alert Title") == NO_GROUP == "NA"


def test_catalog_match_folds_case_and_white_space() -> None:
    assert resolve_group(None, "  unauthorized   PLC program\tupload ") == "Programming"


def test_catalog_can_be_switched_off() -> None:
    assert resolve_group(None, "Unauthorized PLC Program Upload", use_catalog=False) == "NA"


def test_backup_and_unresponsive_are_written_as_printed() -> None:
    groups = {e.group for e in catalog().values()}
    assert {"Backup", "Unresponsive"} <= groups
    assert groups - {"Backup", "Unresponsive", None} <= set(DEFAULT_GROUPS)


def test_every_catalog_row_resolves_as_the_csv_says() -> None:
    with (ROOT / "src/siemfmt/data/alert-catalog.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 203
    for row in rows:
        entry = catalog_entry(row["title"])
        assert entry is not None
        expected = row["alert_group_22_normalised_INFERRED"] or row["category_as_printed"] or None
        if expected is None:  # the duplicate, uncategorised row: its twin's group is used
            assert entry.group is not None
            continue
        assert resolve_group(None, row["title"]) == expected


def test_catalog_entry_carries_engine_and_severity() -> None:
    entry = catalog_entry("Unauthorized PLC Program Upload")
    assert entry is not None
    assert (entry.engine, entry.group) == ("Policy Violation", "Programming")
    assert entry.severity in {"Warning", "Minor", "Major", "Critical"}
