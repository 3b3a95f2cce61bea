"""What PostgreSQL cannot store, or would store as something else: the one rule (ADR-0017).

A value that reaches PostgreSQL as `text`, `varchar` or inside `jsonb` may not hold

- NUL (U+0000): `text` refuses the byte, `jsonb` the `\\u0000` escape;
- a lone surrogate (U+D800 to U+DFFF): not UTF-8, the driver cannot encode it;
- NaN or Infinity: `jsonb` has neither (the JSON encoder would silently write `null`);
- an integer outside int8: the widest integer column, and all the JSON encoder writes;
- a datetime without an offset (`timestamptz` would read it in the server's zone), or one
  whose UTC instant is outside years 1 to 9999 (the driver converts to UTC and overflows);
- nesting deeper than `MAX_DEPTH` (the JSON encoder stops at 255 levels; nobody needs 100).

Dictionary keys are checked like strings. Everything else (bool, None, UUID, enums...) passes.
The API refuses such values as `InvalidInput` naming the path, before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from math import isfinite

MAX_DEPTH = 100
INT8_MIN = -(2**63)
INT8_MAX = 2**63 - 1

_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")
_NUL = "contains a NUL character (\\u0000), which cannot be stored"
_SURROGATE = "contains a lone surrogate (U+D800 to U+DFFF), which is not valid Unicode text"


@dataclass(frozen=True, slots=True)
class Unstorable:
    """Where the first unstorable value is (argument names, keys, list indexes) and why."""

    path: tuple[str, ...]
    reason: str


def shown(text: str) -> str:
    """`text` with NUL and lone surrogates spelled as `\\uXXXX`, so that a path or message
    naming the bad value can itself be encoded, logged and sent."""
    if text.isascii() and "\x00" not in text:
        return text
    return _BAD_CHAR.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _text(value: str) -> str | None:
    if value.isascii():  # the common case: one C-speed scan, no regex
        return _NUL if "\x00" in value else None
    found = _BAD_CHAR.search(value)
    if found is None:
        return None
    return _NUL if found.group() == "\x00" else _SURROGATE


def find_unstorable(value: object, path: tuple[str, ...] = ()) -> Unstorable | None:
    """The first value under `value` (at any depth) that PostgreSQL cannot store, or None."""
    return _find(value, path, 0)


def _find(value: object, path: tuple[str, ...], depth: int) -> Unstorable | None:
    if isinstance(value, str):
        reason = _text(value)
        return Unstorable(path, reason) if reason else None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        if INT8_MIN <= value <= INT8_MAX:
            return None
        return Unstorable(path, "is outside the 64-bit integer range (-2^63 to 2^63-1)")
    if isinstance(value, float):
        return None if isfinite(value) else Unstorable(path, "must be a finite number")
    if isinstance(value, dict | list | tuple):
        if depth >= MAX_DEPTH:
            return Unstorable(path, f"is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and (reason := _text(key)) is not None:
                    return Unstorable((*path, shown(key)), f"key {reason}")
                found = _find(item, (*path, str(key)), depth + 1)
                if found is not None:
                    return found
        else:
            for i, item in enumerate(value):
                found = _find(item, (*path, str(i)), depth + 1)
                if found is not None:
                    return found
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return Unstorable(path, "must include a timezone offset")
        try:
            value.astimezone(UTC)
        except OverflowError:
            return Unstorable(path, "is outside the supported range (years 1 to 9999 in UTC)")
    return None
