"""The library's error types.

A bad alert record raises :class:`AlertValidationError` and a line that cannot be parsed raises
:class:`ParseError`; both derive from :class:`SiemfmtError` and from ``ValueError``. A bad option
(an unknown format, time zone or header, say) raises a plain ``ValueError`` naming the option, the value
and the rule; transport errors derive from ``siemfmt.transport.TransportError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["MISSING", "AlertValidationError", "FieldError", "ParseError", "SiemfmtError"]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()  # FieldError.value of a field that was not given at all


class SiemfmtError(Exception):
    """Base class of every error siemfmt raises on purpose."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One broken rule: which field, what value, which rule."""

    field: str
    value: Any
    rule: str

    def __str__(self) -> str:
        if self.value is MISSING:
            return f"{self.field}: {self.rule}"
        shown = repr(self.value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return f"{self.field}: {shown} {self.rule}"


class AlertValidationError(SiemfmtError, ValueError):
    """An alert record broke one or more rules of the input contract (contract section 1)."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        if len(errors) == 1:
            text = f"invalid alert: {errors[0]}"
        else:
            text = f"invalid alert ({len(errors)} problems): " + "; ".join(str(e) for e in errors)
        super().__init__(text)


class ParseError(SiemfmtError, ValueError):
    """A line could not be parsed; ``position`` is the 0-based character offset in the input line."""

    def __init__(self, reason: str, position: int, text: str = "") -> None:
        self.reason = reason
        self.position = position
        self.text = text
        near = text[position : position + 20] if text else ""
        where = f" at position {position}" + (f" (near {near!r})" if near else "")
        super().__init__(reason + where)
