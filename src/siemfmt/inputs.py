"""Streaming readers of alert records: JSON Lines, a JSON array, or a Defender API alert list.

:func:`read_records` decides by the first non-blank line of a stream:

* a line starting with ``[``: a JSON array (or a bare list of API records). The document is loaded
  whole (arrays are not streamed); each item keeps the line it starts on.
* a line that is just ``{``: one pretty-printed JSON object, loaded whole: an alert, or an API alert
  list (an object with the records in a list under one key, such as ``{"alerts": [...]}``).
* anything else: JSON Lines, read one line at a time, so memory stays flat for input of any size.
  A line holding an API alert list object yields each of its records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

__all__ = ["Record", "read_records", "unwrap"]

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


@dataclass(frozen=True, slots=True)
class Record:
    """One input record: where it came from, its verbatim text, and its decoded value or the error."""

    where: str  # "12" (line), "12 item 3" (a record inside an API list on line 12)
    text: str  # the verbatim line (without line end) or the item's JSON text
    value: Any = None
    error: str | None = None  # why the text is not JSON


def unwrap(value: Any) -> list[Any] | None:
    """The records of a Defender API alert list: a list, or an object with one list of objects; else None."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and "title" not in value:
        lists = [v for v in value.values() if isinstance(v, list) and all(isinstance(i, dict) for i in v)]
        if len(lists) == 1:
            return lists[0]
    return None


def _expand(where: str, text: str, value: Any) -> Iterator[Record]:
    items = unwrap(value)
    if items is None:
        yield Record(where, text, value)
        return
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
            break
        try:
            value, end = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield Record(str(line_at(min(exc.pos, len(text)))), text[pos:].strip(), error=f"not JSON: {exc.msg}")
            return
        yield from _expand(str(line_at(pos)), text[pos:end], value)
        pos = end
        while pos < len(text) and text[pos] in _WHITESPACE:
            pos += 1
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] == "]":
            break
        else:
            yield Record(str(line_at(pos)), text[pos:].strip(), error="not JSON: expected ',' or ']' in the array")
            return


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
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        yield Record(where, line, error=f"not JSON: {exc.msg} (column {exc.colno})")
        return
    yield from _expand(where, line, value)


def _document(text: str, first_line: int) -> Iterator[Record]:
    if text.lstrip().startswith("["):
        yield from _array(text, first_line)
        return
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        yield Record(str(first_line + exc.lineno - 1), text.strip(), error=f"not JSON: {exc.msg}")
        return
    items = unwrap(value)
    if items is None:
        yield Record(str(first_line), text.strip(), value)
        return
    for index, item in enumerate(items, 1):
        yield Record(f"item {index}", json.dumps(item, ensure_ascii=False), item)
