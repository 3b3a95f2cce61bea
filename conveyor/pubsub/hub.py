"""Live job changes over Redis pub/sub: publish after commit, fan out in-process.

Each process holds ONE pub/sub connection (the `Hub`, named `conveyor-hub:<host>-<pid>` in
`CLIENT LIST`). It carries the channel of every job change and a few always-on channels (key
revocations), each read by one in-process reader. Subscribers to job changes register
in-process and get a bounded buffer. Redis pub/sub is lossy (reconnects, slow readers), so
every message carries the job's `seq`: subscribers detect gaps, and on any loss the hub tells
them to `resync` from PostgreSQL, which holds every event. An always-on channel's reader gets
the same RESYNC after a reconnect, and re-checks PostgreSQL.

The hub subscribes to the change channel only while someone subscribes: an API process nobody
watches does not read and decode every change of every job (at a batch submit, that was a
third of its CPU). A new subscriber waits (`listening`) until Redis confirmed the channel
before reading PostgreSQL, so nothing falls between its snapshot and the first live message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from asyncio import FIRST_COMPLETED
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from conveyor import tasks
from conveyor.domain.errors import TooManySubscriptions
from conveyor.domain.models import JobChange
from conveyor.pubsub.bells import RunBells
from conveyor.pubsub.buffers import RESYNC, Inbox, Subscription
from conveyor.pubsub.wire import channel, decode, runs_channel

log = logging.getLogger(__name__)

#: The hub yields to the event loop after this many consecutive messages.
YIELD_EVERY = 64
#: The hub unsubscribes from the change channel after this long without subscribers.
IDLE_UNSUBSCRIBE_SECONDS = 5.0
#: How long a new subscriber waits for the hub to be listening before going on without it
#: (Redis down or slow: it is sent RESYNC once the hub listens).
LISTEN_WAIT_SECONDS = 2.0


def client_name() -> str:
    """The hub's connection in `CLIENT LIST`: `conveyor-hub:<host>-<pid>`, one per process."""
    name = f"conveyor-hub:{socket.gethostname()}-{os.getpid()}"
    return "".join(c if "!" <= c <= "~" else "_" for c in name)  # what CLIENT SETNAME takes


class Hub:
    """The process's single pub/sub connection: the change channel for in-process subscribers,
    subscribed while they exist, and always-on channels (`always_on`) for the process's life.

    Two tasks share the connection: a reader that only reads (messages and subscription
    confirmations), and a manager that sends SUBSCRIBE/UNSUBSCRIBE as subscribers come and go,
    so a new subscriber never waits for a read to time out. Redis connections carry commands
    and replies in order, and redis-py writes without reading unless health checks are on
    (`health_check_interval`, off by default: leave it off for this client)."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        buffer: int = 1000,
        max_subscribers: int = 20_000,
        idle_unsubscribe: float = IDLE_UNSUBSCRIBE_SECONDS,
        name: str | None = None,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._events = channel(prefix).encode()
        self._name = name or client_name()
        self._buffer = buffer
        self._max_subscribers = max_subscribers
        self._idle_unsubscribe = idle_unsubscribe
        self._reserved = 0
        self._internal = 0
        self._by_job: dict[uuid.UUID, set[Subscription]] = {}
        self._firehose: set[Subscription] = set()
        self._inboxes: dict[bytes, Inbox] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        #: Set while the change channel is subscribed (Redis confirmed it).
        self._connected = asyncio.Event()
        #: Something new to subscribe: wakes the manager.
        self._wake = asyncio.Event()
        #: A subscriber went on without waiting for the channel: resync everyone once it is up.
        self._late = False
        # The current connection's state, reset by `_begin`.
        self._events_on = False  # SUBSCRIBE to the change channel sent, no UNSUBSCRIBE since
        self._pending = 0  # SUBSCRIBEs to the change channel not yet confirmed
        self._lost = False  # the previous connection failed: messages may have been lost
        #: Workflow runs' doorbells, on this connection (`bells`).
        self.runs = RunBells(lambda: self.always_on(runs_channel(prefix)))
        self._unconfirmed: set[bytes] = set()  # always-on channels owed a RESYNC once confirmed
        self._inboxes_up: set[bytes] = set()  # always-on channels confirmed on this connection
        self._up = False  # Redis confirmed a subscription on this connection

    @property
    def subscriber_count(self) -> int:
        """Client subscriptions: the hub's own, less internal ones, plus those reserved."""
        total = sum(len(s) for s in self._by_job.values()) + len(self._firehose)
        return total - self._internal + self._reserved

    def reserve(self, n: int) -> None:
        """Count `n` subscribers served elsewhere (shared feeds) against the process cap."""
        if n > 0 and self.subscriber_count + n > self._max_subscribers:
            raise TooManySubscriptions(
                f"this server holds its maximum of {self._max_subscribers} subscriptions; "
                "try again later or another replica"
            )
        self._reserved += n

    def always_on(self, name: str, *, buffer: int = 1000) -> Inbox:
        """Subscribe `name` for the life of the process, on the hub's connection, and return
        its one reader's inbox. Messages published while the connection is down are lost: the
        inbox then gets RESYNC once the channel is subscribed again."""
        key = name.encode()
        if key == self._events or key in self._inboxes:
            raise ValueError(f"{name} has a reader already")
        inbox = Inbox(name, buffer)
        self._inboxes[key] = inbox
        self._wake.set()
        return inbox

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="events-hub")

    @property
    def is_listening(self) -> bool:
        return self._connected.is_set()

    async def listening(self, timeout: float = LISTEN_WAIT_SECONDS) -> None:
        """Wait until changes published from now on reach this process's subscribers. Call it
        after `subscribe` and before reading the state the live changes continue. On timeout
        (Redis unavailable) the caller goes on, and every subscriber is sent RESYNC once the
        hub listens."""
        if self._connected.is_set():
            return
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            self._late = True

    async def stop(self) -> None:
        # The flag too: on Python 3.11, `asyncio.wait_for` (redis-py's writes) can swallow a
        # cancel that lands as the write completes; the loops then end at their next turn.
        self._stopping = True
        await self.runs.stop()
        if self._task:
            await tasks.finish(self._task)

    def subscribe(
        self,
        job_id: uuid.UUID | None = None,
        on_overflow: Callable[[], None] | None = None,
        *,
        internal: bool = False,
    ) -> Subscription:
        """Changes of one job, or of every job when `job_id` is None. An `internal` one (a
        shared feed's source) does not count against the per-process cap."""
        if not internal and self.subscriber_count >= self._max_subscribers:
            raise TooManySubscriptions(
                f"this server holds its maximum of {self._max_subscribers} subscriptions; "
                "try again later or another replica"
            )
        sub = Subscription(job_id, self._buffer, on_overflow, self._remove)
        sub.internal = internal
        self._internal += internal
        if job_id is None:
            self._firehose.add(sub)
        else:
            self._by_job.setdefault(job_id, set()).add(sub)
        if not self._events_on:
            self._wake.set()
        return sub

    def _needed(self) -> bool:
        return bool(self._by_job or self._firehose)

    def _remove(self, sub: Subscription) -> None:
        if sub.closed:
            return
        sub.closed = True
        self._internal -= sub.internal
        if sub.job_id is None:
            self._firehose.discard(sub)
            return
        subs = self._by_job.get(sub.job_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_job[sub.job_id]

    def _dispatch(self, change: JobChange) -> None:
        for sub in self._by_job.get(change.job_id, ()):
            sub.push(change)
        for sub in self._firehose:
            sub.push(change)

    def _resync_all(self) -> None:
        for subs in self._by_job.values():
            for sub in subs:
                sub.push(RESYNC)
        for sub in self._firehose:
            sub.push(RESYNC)

    async def _run(self) -> None:
        """Hold the connection while anything needs it; reconnect with backoff when it fails."""
        backoff = 0.1
        lost = False
        while not self._stopping:
            if not self._inboxes and not self._needed():
                self._wake.clear()
                await self._wake.wait()
                continue
            pubsub = self._redis.pubsub()
            reader: asyncio.Task[None] | None = None
            unname: Callable[[], None] | None = None
            self._begin(lost)
            retry_in: float | None = None
            try:
                unname = await self._open(pubsub)
                reader = asyncio.create_task(self._read(pubsub), name="events-hub-reader")
                await self._manage(pubsub, reader)
                lost = False  # closed for idleness, with nothing on it
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                lost = True
                if self._up:
                    backoff = 0.1  # it was working: retry promptly
                retry_in = backoff
                backoff = min(backoff * 2, 5.0)
                log.warning(
                    "event stream lost; reconnecting",
                    extra={"error": repr(exc), "retry_in": retry_in},
                )
            finally:
                self._connected.clear()
                self._events_on = False
                try:
                    if reader is not None:
                        await tasks.finish(reader)  # before closing: it reads the connection
                finally:
                    if unname is not None:
                        unname()
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]
            if retry_in is not None:
                await asyncio.sleep(retry_in)

    def _begin(self, lost: bool) -> None:
        self._events_on = False
        self._pending = 0
        self._lost = lost
        self._unconfirmed = set(self._inboxes) if lost else set()
        self._inboxes_up = set()
        self._up = False

    async def _open(self, pubsub: PubSub) -> Callable[[], None]:
        """Connect and name the connection (before any SUBSCRIBE: a subscribed connection
        takes no other command); what gives the pool's connection its own name back."""
        await pubsub.connect()  # type: ignore[no-untyped-call]
        conn = pubsub.connection
        if conn is None:
            raise ConnectionError("no pub/sub connection")
        previous = conn.client_name
        conn.client_name = self._name  # also when redis-py reconnects it by itself

        def unname() -> None:
            conn.client_name = previous

        try:
            await conn.send_command("CLIENT", "SETNAME", self._name)
            await conn.read_response()
        except BaseException:
            unname()
            raise
        return unname

    async def _manage(self, pubsub: PubSub, reader: asyncio.Task[None]) -> None:
        """Send what the subscribers need; return once nothing needs the connection, raise
        when it fails."""
        loop = asyncio.get_running_loop()
        requested: set[bytes] = set()
        idle_since: float | None = None
        while not self._stopping:
            self._wake.clear()  # before the checks: a wake-up during an await below holds
            fresh = [key for key in self._inboxes if key not in requested]
            if fresh:
                requested.update(fresh)
                await pubsub.subscribe(*fresh)
            # While the change channel is on, look every second whether its subscribers left.
            timeout: float | None = 1.0 if self._events_on or self._needed() else None
            if self._needed():
                idle_since = None
                if not self._events_on:
                    self._events_on = True
                    self._pending += 1
                    await pubsub.subscribe(self._events)
            elif self._events_on:
                idle_since = idle_since or loop.time()
                left = idle_since + self._idle_unsubscribe - loop.time()
                if left <= 0:
                    # No await between this check and clearing the flags: a new subscriber
                    # either saw the hub listening or wakes this loop to subscribe again.
                    self._connected.clear()
                    self._events_on = False
                    idle_since = None
                    if not requested:
                        return  # nothing else on the connection: close it
                    await pubsub.unsubscribe(self._events)
                else:
                    timeout = min(1.0, left)
            elif not requested:
                return
            if self._stopping:
                return  # a cancel swallowed above (see `stop`)
            woken = asyncio.create_task(self._wake.wait())
            try:
                await asyncio.wait({reader, woken}, timeout=timeout, return_when=FIRST_COMPLETED)
            finally:
                woken.cancel()
            if reader.done():
                reader.result()  # raises what broke the connection
                raise ConnectionError("the pub/sub reader stopped")

    async def _read(self, pubsub: PubSub) -> None:
        burst = 0
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            kind = message["type"]
            name = _as_bytes(message["channel"])
            if kind == "subscribe":
                self._confirmed(name)
                continue
            if kind != "message":
                continue
            if name != self._events:
                inbox = self._inboxes.get(name)
                if inbox is not None:
                    inbox.push(_as_bytes(message["data"]))
                continue
            if not self._needed():
                continue  # nobody to deliver to: do not decode
            burst += 1
            if burst % YIELD_EVERY == 0:
                # A burst (a batch submit) may arrive already buffered: let the subscribers
                # drain before pushing more, so buffers measure slowness.
                await asyncio.sleep(0)
            try:
                change = decode(message["data"])
            except (ValueError, KeyError) as exc:
                log.warning("undecodable event", extra={"error": repr(exc)})
                continue
            self._dispatch(change)

    def _confirmed(self, name: bytes) -> None:
        """Redis confirmed a SUBSCRIBE: messages published from now on arrive. One nobody
        sent means redis-py reconnected by itself (a client with retries): a loss as well."""
        self._up = True
        if name == self._events:
            if self._pending > 0:
                self._pending -= 1
            else:
                self._lost = True
            if self._pending == 0 and self._events_on:
                if self._lost or self._late:
                    # Anything published while we were away is lost to pub/sub.
                    self._resync_all()
                self._lost = self._late = False
                self._connected.set()
            return
        inbox = self._inboxes.get(name)
        if inbox is None:
            return
        if name in self._unconfirmed or name in self._inboxes_up:
            inbox.push(RESYNC)
        self._unconfirmed.discard(name)
        self._inboxes_up.add(name)


def _as_bytes(value: bytes | str | None) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()
