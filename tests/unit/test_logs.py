"""Job context on log lines: every record logged while an attempt runs names the job."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections.abc import Iterator

import pytest

from conveyor import logs


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON lines through the same handler set-up as `logs.configure`."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.JobContextFilter())
    parent = logging.getLogger("test_logs")
    parent.addHandler(handler)
    parent.setLevel(logging.INFO)
    parent.propagate = False
    try:
        # A child logger, as a handler module's `logging.getLogger(__name__)` would be: its
        # records reach the handler by propagation.
        yield logging.getLogger("test_logs.handler_module"), out
    finally:
        parent.removeHandler(handler)


def _lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_lines_logged_during_an_attempt_carry_its_job_id_attempt_and_kind(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    log, out = captured
    job_id = uuid.uuid4()

    async def handler() -> None:
        log.info("inside the handler")

    log.info("before")
    with logs.job_context(job_id, 2, "demo.sleep"):
        # The worker starts the handler as a task inside the context: it inherits it.
        await asyncio.create_task(handler())
        log.info("explicit", extra={"attempt": 99})
    log.info("after")

    before, inside, explicit, after = _lines(out)
    assert "job_id" not in before
    assert "job_id" not in after
    assert inside["message"] == "inside the handler"
    assert (inside["job_id"], inside["attempt"], inside["kind"]) == (str(job_id), 2, "demo.sleep")
    assert explicit["attempt"] == 99  # what the caller passed wins
    assert explicit["job_id"] == str(job_id)


async def test_concurrent_attempts_each_log_their_own_job(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    log, out = captured
    ids = [uuid.uuid4() for _ in range(3)]

    async def attempt(job_id: uuid.UUID) -> None:
        with logs.job_context(job_id, 1, "demo.noop"):
            await asyncio.sleep(0)
            log.info("step", extra={"expect": str(job_id)})
            await asyncio.sleep(0)
            log.info("step", extra={"expect": str(job_id)})

    await asyncio.gather(*(attempt(i) for i in ids))
    lines = _lines(out)
    assert len(lines) == 6
    assert all(line["job_id"] == line["expect"] for line in lines)


def test_configure_installs_the_filter_on_the_handler() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("INFO", "json")
        assert any(isinstance(f, logs.JobContextFilter) for f in root.handlers[0].filters)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_a_line_carrying_a_lone_surrogate_is_still_written(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    # A client's input can put one in a message or a field; the line must not be lost.
    logger, out = captured
    logger.info("refused %s", "a\ud800b", extra={"path": ["k\ud800"]})
    [line] = _lines(out)
    assert line["message"] == "refused a\ud800b"
    assert line["path"] == ["k\ud800"]
