"""Alert groups: the 22 default groups, their variant spellings, the alert catalog, and the
resolution rule of contract section 2 (the value of ``cat`` / ``Alert Group`` / ``alert_group``).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

__all__ = [
    "DEFAULT_GROUPS",
    "NO_GROUP",
    "CatalogEntry",
    "canonical_group",
    "catalog",
    "catalog_entry",
    "resolve_group",
]

NO_GROUP = "NA"  # contract §2.3; the docs' "display NA" (defender-formats.md §1)

# defender-formats.md §8: the 22 default groups, newest-doc spelling, list order.
DEFAULT_GROUPS: tuple[str, ...] = (
    "Abnormal communication behavior",
    "Custom alerts",
    "Remote access",
    "Abnormal HTTP communication behavior",
    "Discovery",
    "Restart and stop commands",
    "Authentication",
    "Firmware change",
    "Scan",
    "Unauthorized communication behavior",
    "Illegal commands",
    "Sensor traffic",
    "Bandwidth anomalies",
    "Internet access",
    "Suspicion of malware",
    "Buffer overflow",
    "Operation failures",
    "Suspicion of malicious activity",
    "Command failures",
    "Operational issues",
    "Configuration changes",
    "Programming",
)

# Spellings that differ from the 22-group list by more than letter case (defender-formats.md §8:
# CyberX F0 table and catalog cells). Case differences are handled by the case-insensitive match.
_VARIANTS = {
    "Restart/ Stop Commands": "Restart and stop commands",
    "Restart/Stop Commands": "Restart and stop commands",
}

_WS = re.compile(r"\s+")


def _key(text: str) -> str:
    """Case-insensitive, runs of white space folded (contract §2)."""
    return _WS.sub(" ", text).strip().casefold()


_CANONICAL = {_key(g): g for g in DEFAULT_GROUPS} | {_key(k): v for k, v in _VARIANTS.items()}


def canonical_group(name: str) -> str | None:
    """The 22-group spelling of ``name`` if it is a default group or a known variant, else None."""
    return _CANONICAL.get(_key(name))


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One row of the alert catalog (defender-formats.md §10)."""

    title: str
    engine: str
    severity: str
    category: str  # as printed in the docs
    group: str | None  # 22-group spelling; Backup/Unresponsive as printed; None when uncategorised


@cache
def catalog() -> dict[str, CatalogEntry]:
    """The shipped catalog keyed by folded title; loaded once, on first use."""
    text = resources.files("siemfmt").joinpath("data/alert-catalog.csv").read_text(encoding="utf-8")
    entries: dict[str, CatalogEntry] = {}
    for row in csv.DictReader(io.StringIO(text)):
        printed = row["category_as_printed"].strip()
        group = canonical_group(printed) if printed else None
        if printed and group is None:
            group = printed  # Backup, Unresponsive: not among the 22, written as printed (contract §2.2)
        entry = CatalogEntry(
            title=row["title"],
            engine=row["engine_type"],
            severity=row["sensor_severity_2022-11-01"],
            category=printed,
            group=group,
        )
        key = _key(entry.title)
        # A title listed twice (one row uncategorised) keeps the row that names a group.
        if key not in entries or (entries[key].group is None and group is not None):
            entries[key] = entry
    return entries


def catalog_entry(title: str) -> CatalogEntry | None:
    """The catalog row for an alert title (case-insensitive, white space folded), if any."""
    return catalog().get(_key(title))


@lru_cache(maxsize=4096)  # a pure function of a few hundred titles and groups in practice
def resolve_group(alert_group: str | None, title: str, *, use_catalog: bool = True) -> str:
    """Contract §2: explicit group (canonicalised) > catalog group by title > ``NA``."""
    if alert_group is not None and alert_group.strip():
        return canonical_group(alert_group) or alert_group
    if use_catalog:
        entry = catalog_entry(title)
        if entry is not None and entry.group is not None:
            return entry.group
    return NO_GROUP
