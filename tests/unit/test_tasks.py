"""`conveyor.tasks.finish`: a loop that swallowed a cancel (Python 3.11's `wait_for` does,
cpython#86296) still ends, and stopping never hangs on it."""

from __future__ import annotations

import asyncio

from conveyor import tasks


async def test_a_loop_that_swallows_a_cancel_still_ends() -> None:
    turns = 0

    async def stubborn() -> None:
        nonlocal turns
        while True:
            turns += 1
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if turns == 1:
                    continue  # swallowed once, as wait_for may
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await tasks.finish(task)
    assert task.cancelled()
    assert turns == 2


async def test_an_ended_task_s_exception_is_retrieved_not_raised() -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    await tasks.finish_all([task])
    assert isinstance(task.exception(), RuntimeError)
