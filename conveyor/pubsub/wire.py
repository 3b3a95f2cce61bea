"""What travels over Redis pub/sub: the channels, the wire form of a change (derived from the
value types), and best-effort publishing after commit."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence

import orjson
from pydantic import TypeAdapter
from redis.asyncio import Redis

from conveyor.domain.models import JobChange

log = logging.getLogger(__name__)


def channel(prefix: str) -> str:
    return f"{prefix}:events"


def runs_channel(prefix: str) -> str:
    """Workflow runs that changed: a doorbell carrying only the run's id (its events are read
    from PostgreSQL by `seq`)."""
    return f"{prefix}:runs"


async def ring(redis: Redis, prefix: str, run_ids: Sequence[uuid.UUID]) -> None:
    """Best effort: a `workflowEvents` follower also re-reads PostgreSQL when idle."""
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for run_id in run_ids:
                pipe.publish(runs_channel(prefix), str(run_id))
            await pipe.execute()
    except Exception as exc:
        log.warning("could not ring runs' followers", extra={"error": repr(exc)})


def control_channel(prefix: str) -> str:
    """Commands to workers (cancel a running job)."""
    return f"{prefix}:control"


async def send_commands(redis: Redis, prefix: str, commands: Sequence[str]) -> None:
    """Best effort, like `publish`: workers also learn of a cancel from their next heartbeat."""
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.publish(control_channel(prefix), command)
            await pipe.execute()
    except Exception as exc:
        log.warning("could not signal workers; heartbeats will", extra={"error": repr(exc)})


#: The wire form of a change is derived from the value types: orjson writes the dataclasses
#: (UUIDs, datetimes and enums as JSON strings and numbers), pydantic reads them back, checked.
_CHANGE = TypeAdapter(JobChange)


def _default(value: object) -> object:
    # orjson writes `uuid.UUID` itself, but not asyncpg's subclass, which rows carry.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def encode(change: JobChange) -> bytes:
    return orjson.dumps(change, default=_default)


def decode(raw: bytes | str) -> JobChange:
    """Raises ValueError (pydantic's ValidationError) on a message that is not a change."""
    return _CHANGE.validate_json(raw)


async def publish(redis: Redis, prefix: str, changes: Iterable[JobChange]) -> None:
    """Broadcast committed changes. Best effort: subscribers recover losses from PostgreSQL."""
    batch = list(changes)
    if not batch:
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for change in batch:
                pipe.publish(channel(prefix), encode(change))
            await pipe.execute()
    except Exception as exc:
        log.warning("publish failed; subscribers will resync", extra={"error": repr(exc)})
