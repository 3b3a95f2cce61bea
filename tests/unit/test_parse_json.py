"""`graphql_http.parse_json` reads every body as the stdlib does, orjson or not."""

from __future__ import annotations

import json
import math

import pytest

from conveyor.api.graphql_http import parse_json

SAME = [
    '{"query": "{ __typename }", "variables": {"a": [1, 2.5, -0, 1e-7, true, null]}}',
    '{"k": 9223372036854775807, "big": 123456789012345678901234567890}',  # beyond 64 bits
    '{"s": "\\ud800 lone surrogate", "t": "caf\\u00e9 \\ud83d\\ude00"}',
    '{"dup": 1, "dup": 2}',
    '{"deep": ' + "[" * 200 + "]" * 200 + "}",
    '{"x": 1e400}',
    "[]",
]


@pytest.mark.parametrize("text", SAME)
def test_as_the_stdlib_reads_it(text: str) -> None:
    assert parse_json(text) == json.loads(text)
    assert parse_json(text.encode()) == json.loads(text.encode())


def test_what_only_the_stdlib_accepts_is_still_accepted() -> None:
    assert math.isnan(parse_json('{"v": NaN}')["v"])
    assert parse_json('{"v": Infinity}')["v"] == math.inf
    assert parse_json('{"v": 1' + "0" * 30 + "}")["v"] == 10**30
    assert parse_json("{}".encode("utf-16")) == {}


@pytest.mark.parametrize("text", ["", "{", '{"a": }', "nul", '{"a": 1} x'])
def test_what_neither_accepts_is_refused(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        parse_json(text)
