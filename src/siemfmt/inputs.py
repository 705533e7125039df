"""Streaming readers of alert records: JSON Lines, a JSON array, or a Defender API alert list.

:func:`read_records` decides by the first non-blank line of a stream:

* a line starting with ``[``: a JSON array (or a bare list of API records). The document is loaded
  whole (arrays are not streamed); each item keeps the line it starts on.
* a line that is just ``{``: one pretty-printed JSON object, loaded whole: an alert, or an API alert
  list (an object with the records in a list under a known key, ``{"alerts": [...]}`` or
  ``{"value": [...]}``: see ``WRAPPER_KEYS``).
* anything else: JSON Lines, read one line at a time, so memory stays flat for input of any size.
  A line holding an API alert list object yields each of its records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

__all__ = ["WRAPPER_KEYS", "Record", "read_records", "unwrap", "utf8_error"]

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


@dataclass(frozen=True, slots=True)
class Record:
    """One input record: where it came from, its verbatim text, and its decoded value or the error."""

    where: str  # "12" (line), "12 item 3" (a record inside an API list on line 12)
    text: str  # the verbatim line (without line end) or the item's JSON text
    value: Any = None
    error: str | None = None  # why the text is not JSON


# Keys under which Defender APIs and their exports put an alert list (``{"alerts": [...]}``, OData's
# ``{"value": [...]}``). Only a wrapper object keyed so is unwrapped: any other object is one record, so a
# record that merely holds a list (``"remediationSteps": [...]``) is validated, never taken apart.
WRAPPER_KEYS = ("alerts", "value", "items", "records", "data")


def unwrap(value: Any) -> list[Any] | None:
    """The records of a Defender API alert list: a list, or an object whose alert list is under one of
    ``WRAPPER_KEYS`` (other keys, such as paging links, are ignored); else None."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and "title" not in value:
        lists: list[list[Any]] = [value[k] for k in WRAPPER_KEYS if isinstance(value.get(k), list)]
        if len(lists) == 1 and all(isinstance(i, dict) for i in lists[0]):
            return lists[0]
    return None


_SURROGATE = re.compile("[\udc80-\udcff]")


def utf8_error(text: str) -> tuple[str, int] | None:
    """For text read with ``errors="surrogateescape"``: why it is not UTF-8 and at which column, or None."""
    bad = _SURROGATE.search(text)
    if bad is None:
        return None
    return f"not UTF-8 (byte 0x{ord(bad.group()) - 0xDC00:02x})", bad.start()


def _empty(where: str, text: str) -> Record:
    return Record(where, text, error="an empty alert list: no records")


def _expand(where: str, text: str, value: Any) -> Iterator[Record]:
    items = unwrap(value)
    if items is None:
        yield Record(where, text, value)
        return
    if not items:
        yield _empty(where, text)
    for index, item in enumerate(items, 1):
        yield Record(f"{where} item {index}", json.dumps(item, ensure_ascii=False), item)


def _array(text: str, first_line: int) -> Iterator[Record]:
    """Each item of a JSON array document, with the line it starts on and its verbatim text."""
    pos = text.index("[") + 1
    line = first_line
    counted = 0

    def line_at(offset: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, offset)
        counted = offset
        return line

    while True:
        while pos < len(text) and text[pos] in _WHITESPACE:
            pos += 1
        if pos < len(text) and text[pos] == "]":
            pos += 1
            break
        try:
            value, end = _DECODER.raw_decode(text, pos)
        except ValueError as exc:  # JSONDecodeError, or a number over int's digit limit
            if not isinstance(exc, json.JSONDecodeError):
                yield Record(str(line_at(pos)), text[pos:].strip(), error=f"not JSON: {exc}")
                return
            yield Record(str(line_at(min(exc.pos, len(text)))), text[pos:].strip(), error=f"not JSON: {exc.msg}")
            return
        yield from _expand(str(line_at(pos)), text[pos:end], value)
        pos = end
        while pos < len(text) and text[pos] in _WHITESPACE:
            pos += 1
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] == "]":
            pos += 1
            break
        else:
            yield Record(str(line_at(pos)), text[pos:].strip(), error="not JSON: expected ',' or ']' in the array")
            return
    rest = text[pos:].strip()
    if rest:  # nothing may follow the array: say so rather than ignore it
        yield Record(str(line_at(text.index(rest[0], pos))), rest, error="not JSON: extra data after the array")


def read_records(stream: IO[str]) -> Iterator[Record]:
    """The records of one input stream (see the module docstring for the accepted shapes)."""
    number = 0
    for raw in stream:
        number += 1
        line = raw.rstrip("\r\n")
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("[") or stripped == "{":
            yield from _document(line + "\n" + stream.read(), number)
            return
        yield from _line(str(number), line)
        break
    for raw in stream:
        number += 1
        line = raw.rstrip("\r\n")
        if line.strip():
            yield from _line(str(number), line)


def _line(where: str, line: str) -> Iterator[Record]:
    bad = utf8_error(line)
    if bad is not None:
        yield Record(where, line, error=f"{bad[0]} at column {bad[1] + 1}")
        return
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        yield Record(where, line, error=f"not JSON: {exc.msg} (column {exc.colno})")
        return
    except ValueError as exc:  # e.g. an integer over Python's digit limit
        yield Record(where, line, error=f"not JSON: {exc}")
        return
    yield from _expand(where, line, value)


def _document(text: str, first_line: int) -> Iterator[Record]:
    bad = utf8_error(text)
    if bad is not None:
        yield Record(str(first_line + text.count("\n", 0, bad[1])), text.strip(), error=f"{bad[0]}")
        return
    if text.lstrip().startswith("["):
        yield from _array(text, first_line)
        return
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        yield Record(str(first_line + exc.lineno - 1), text.strip(), error=f"not JSON: {exc.msg}")
        return
    except ValueError as exc:
        yield Record(str(first_line), text.strip(), error=f"not JSON: {exc}")
        return
    items = unwrap(value)
    if items is None:
        yield Record(str(first_line), text.strip(), value)
        return
    if not items:
        yield _empty(str(first_line), text.strip())
    for index, item in enumerate(items, 1):
        yield Record(f"item {index}", json.dumps(item, ensure_ascii=False), item)
