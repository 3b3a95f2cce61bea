"""The one rule of what PostgreSQL cannot store (`domain.storable`, ADR-0017)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from conveyor.domain.storable import INT8_MAX, INT8_MIN, MAX_DEPTH, find_unstorable, shown

PLUS_ONE = timezone(timedelta(hours=1))
MINUS_ONE = timezone(timedelta(hours=-1))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        "",
        "plain ascii",
        "héllo ✓ \U0001f600 \u200b\t\n\x7f\x01",  # unusual but valid text
        INT8_MIN,
        INT8_MAX,
        1e308,
        -0.0,
        datetime(1, 1, 1, 1, tzinfo=PLUS_ONE),  # 0001-01-01T00:00Z: the first instant
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        {"k": [1, 2.5, {"ü": None}]},
        ("tuple", "items"),
    ],
)
def test_storable_values_pass(value: Any) -> None:
    assert find_unstorable(value, ("x",)) is None


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("value", "path", "reason"),
    [
        ("a\x00b", ("x",), "NUL"),
        ("é\x00", ("x",), "NUL"),
        ("a\ud800", ("x",), "surrogate"),
        ("\udfff", ("x",), "surrogate"),
        (INT8_MAX + 1, ("x",), "64-bit"),
        (INT8_MIN - 1, ("x",), "64-bit"),
        (float("nan"), ("x",), "finite"),
        (float("-inf"), ("x",), "finite"),
        (datetime(2030, 1, 1), ("x",), "timezone offset"),  # noqa: DTZ001 - the point
        (datetime(1, 1, 1, tzinfo=PLUS_ONE), ("x",), "range"),
        (datetime(9999, 12, 31, 23, 30, tzinfo=MINUS_ONE), ("x",), "range"),
        ({"ok": 1, "bad\x00": 1}, ("x", "bad\\u0000"), "key contains a NUL"),
        ({"\ud83d": 1}, ("x", "\\ud83d"), "key contains a lone surrogate"),
        ({"a": [0, {"b": "\x00"}]}, ("x", "a", "1", "b"), "NUL"),
        ([1, [2, [float("inf")]]], ("x", "1", "1", "0"), "finite"),
        (_deep(MAX_DEPTH + 5), ("x", *["a"] * MAX_DEPTH), "nested deeper"),
    ],
)
def test_unstorable_values_are_named_by_path(
    value: Any, path: tuple[str, ...], reason: str
) -> None:
    found = find_unstorable(value, ("x",))
    assert found is not None
    assert found.path == path
    assert reason in found.reason


def test_the_first_offender_is_reported_and_nesting_at_the_limit_passes() -> None:
    found = find_unstorable({"a": "\x00", "b": float("nan")})
    assert found is not None
    assert found.path == ("a",)
    assert find_unstorable(_deep(MAX_DEPTH)) is None


def test_shown_spells_out_what_cannot_be_sent() -> None:
    assert shown("plain") == "plain"
    assert shown("a\x00b\ud800ü") == "a\\u0000b\\ud800ü"
