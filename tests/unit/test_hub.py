"""The in-process fan-out: bounded buffers, overflow signalling, caps (no I/O)."""

import uuid
from datetime import UTC, datetime

import pytest

from conveyor import pubsub
from conveyor.domain.errors import TooManySubscriptions
from conveyor.domain.models import Event, JobChange
from conveyor.domain.states import EventType, JobStatus


def _change(job_id: uuid.UUID, seq: int) -> JobChange:
    event = Event(
        job_id, seq, EventType.PROGRESS, JobStatus.RUNNING, 0.5, None, None, datetime.now(UTC)
    )
    return JobChange(event, "demo.sleep", "default", uuid.uuid4(), 1, 0.5, None)


def test_a_full_buffer_is_replaced_by_a_resync_marker_and_reports_overflow_once() -> None:
    hub = pubsub.Hub(redis=None, prefix="t", buffer=3)  # type: ignore[arg-type]
    overflows: list[int] = []
    job = uuid.uuid4()
    sub = hub.subscribe(job, on_overflow=lambda: overflows.append(1))
    for seq in range(1, 11):
        hub._dispatch(_change(job, seq))
    assert overflows == [1]
    assert sub.overflowed >= 1
    assert len(sub._buffer) <= 3
    assert pubsub.RESYNC in sub._buffer


def test_encode_decode_round_trip() -> None:
    change = _change(uuid.uuid4(), 7)
    assert pubsub.decode(pubsub.encode(change)) == change


def test_subscriptions_are_capped_per_process() -> None:
    hub = pubsub.Hub(redis=None, prefix="t", max_subscribers=2)  # type: ignore[arg-type]
    a = hub.subscribe(None)
    hub.subscribe(uuid.uuid4())
    with pytest.raises(TooManySubscriptions):
        hub.subscribe(None)
    a.close()
    hub.subscribe(None)
    assert hub.subscriber_count == 2


def test_an_always_on_channel_has_one_reader() -> None:
    hub = pubsub.Hub(redis=None, prefix="t")  # type: ignore[arg-type]
    inbox = hub.always_on("t:revocations", buffer=2)
    with pytest.raises(ValueError, match="has a reader"):
        hub.always_on("t:revocations")
    with pytest.raises(ValueError, match="has a reader"):
        hub.always_on(pubsub.channel("t"))  # the change channel is the subscribers'
    for raw in (b"a", b"b", b"c"):
        inbox.push(raw)
    assert list(inbox._buffer) == [pubsub.RESYNC]  # fell behind: re-check everything
