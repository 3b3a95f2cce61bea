"""The micro-batcher groups concurrent calls and keeps results and errors per caller."""

import asyncio

import pytest

from conveyor.services.batching import Batcher


async def test_calls_in_the_same_moment_share_one_flush() -> None:
    seen: list[list[int]] = []

    async def double(items: list[int]) -> list[int]:
        seen.append(items)
        await asyncio.sleep(0.01)
        return [i * 2 for i in items]

    batcher: Batcher[int, int] = Batcher(double)
    assert await asyncio.gather(*(batcher.submit(i) for i in range(10))) == [
        i * 2 for i in range(10)
    ]
    assert seen == [list(range(10))]
    assert await batcher.submit(7) == 14  # idle again: flushes alone
    assert seen[-1] == [7]


async def test_calls_during_a_flush_form_the_next_batch_and_size_is_capped() -> None:
    seen: list[list[int]] = []

    async def echo(items: list[int]) -> list[int]:
        seen.append(items)
        await asyncio.sleep(0.01)
        return items

    batcher: Batcher[int, int] = Batcher(echo, max_size=3)
    first = asyncio.gather(*(batcher.submit(i) for i in range(5)))
    await asyncio.sleep(0.005)
    second = asyncio.gather(*(batcher.submit(i) for i in range(5, 7)))
    assert await first == [0, 1, 2, 3, 4]
    assert await second == [5, 6]
    assert seen == [[0, 1, 2], [3, 4, 5], [6]]


async def test_a_failed_flush_fails_its_callers_only() -> None:
    async def flaky(items: list[int]) -> list[int]:
        if 0 in items:
            raise RuntimeError("boom")
        return items

    batcher: Batcher[int, int] = Batcher(flaky)
    with pytest.raises(RuntimeError):
        await batcher.submit(0)
    assert await batcher.submit(1) == 1
