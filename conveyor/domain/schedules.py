"""When a schedule fires (pure: no I/O). ADR-0022.

Cron expressions are evaluated by cronsim (pinned; golden tests in
tests/unit/test_schedule_timing.py), which follows Debian cron across DST changes: a time the
spring change skips fires right after the gap, a time the autumn change repeats fires once.
Five fields, or six with the seconds FIRST (`*/10 * * * * *`, as Quartz, Spring and cronsim
write it). cronsim's own six-field mode bypasses its DST handling, so the seconds are expanded
here within each minute that the five-field part selects, evaluated with the DST rules.

Intervals (`every_seconds`) are counted in UTC from the schedule's anchor: fire times are
anchor + k x every, whatever the wall clock does.

Every time here is an aware datetime; the caller passes the database's `now()`.
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from cronsim import CronSim, CronSimError

from conveyor.domain.errors import FieldError, InvalidInput

#: Shortest interval: one fire per second is the finest a schedule fires.
MIN_EVERY_SECONDS = 1.0
MAX_EVERY_SECONDS = 366 * 86400.0
MAX_JITTER_SECONDS = 86400.0
MAX_CATCHUP = 10_000
MAX_GRACE_SECONDS = 7 * 86400.0
#: Fire times walked at most when catching up after a long downtime (then the walk restarts
#: an hour before now: older missed fires of a very frequent schedule are counted as skipped).
_WALK_LIMIT = 100_000
#: A cron that finds no fire time within this many years never fires (e.g. `0 0 30 2 *`).
_NEVER_YEARS = 8


class Misfire(enum.StrEnum):
    """What a schedule does with fire times missed by more than its grace period (no
    scheduler ran then). A paused schedule makes nothing for the time it was paused."""

    SKIP = "SKIP"  #: drop them
    RUN_ONCE = "RUN_ONCE"  #: one job, for the latest missed fire time
    RUN_ALL = "RUN_ALL"  #: one job per missed fire time, the latest `max_catchup` of them


@dataclass(frozen=True)
class Timing:
    """How a schedule fires: exactly one of `cron` / `every_seconds`."""

    cron: str | None
    every_seconds: float | None
    timezone: str = "UTC"
    #: Intervals count from here.
    anchor: datetime = datetime(2000, 1, 1, tzinfo=UTC)

    def __post_init__(self) -> None:
        errors = validate_timing(self.cron, self.every_seconds, self.timezone)
        if errors:
            raise InvalidInput("the schedule is invalid", errors)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after `after` (UTC), or None if it never fires."""
        if self.every_seconds is not None:
            return _next_interval(self.anchor, self.every_seconds, after)
        assert self.cron is not None
        return _next_cron(self.cron, self.zone, after)

    def upcoming(self, after: datetime, count: int) -> list[datetime]:
        """The next `count` fire times after `after`."""
        out: list[datetime] = []
        t: datetime | None = after
        while len(out) < count and t is not None:
            t = self.next_after(t)
            if t is not None:
                out.append(t)
        return out


def validate_timing(
    cron: str | None, every_seconds: float | None, timezone: str
) -> list[FieldError]:
    """Every problem with a timing, each naming its field (the API's camelCase names)."""
    errors: list[FieldError] = []
    if (cron is None) == (every_seconds is None):
        errors.append(FieldError(("cron",), "give exactly one of cron and everySeconds"))
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
        errors.append(
            FieldError(("timezone",), f"unknown time zone {timezone[:100]!r} (IANA name)")
        )
        zone = ZoneInfo("UTC")
    if every_seconds is not None and not (
        math.isfinite(every_seconds) and MIN_EVERY_SECONDS <= every_seconds <= MAX_EVERY_SECONDS
    ):
        errors.append(
            FieldError(
                ("everySeconds",),
                f"must be between {MIN_EVERY_SECONDS:g} and {MAX_EVERY_SECONDS:g} seconds",
            )
        )
    if cron is not None:
        problem = _cron_problem(cron, zone)
        if problem:
            errors.append(FieldError(("cron",), problem))
    return errors


def _split(cron: str) -> tuple[str | None, str]:
    """(seconds field or None, the five-field rest). Six fields: seconds first."""
    parts = cron.split()
    if len(parts) == 6:
        return parts[0], " ".join(parts[1:])
    return None, " ".join(parts)


_SECONDS_CACHE: dict[str, tuple[int, ...]] = {}


def _seconds(field_: str) -> tuple[int, ...]:
    """The seconds a seconds field selects, parsed by cronsim (a six-field expression whose
    other fields are `*`), walked over one minute."""
    found = _SECONDS_CACHE.get(field_)
    if found is None:
        base = datetime(2000, 1, 1, tzinfo=UTC)
        it = CronSim(f"{field_} * * * * *", base - timedelta(microseconds=1))
        values: list[int] = []
        for t in it:
            if t >= base + timedelta(minutes=1):
                break
            values.append(t.second)
        found = tuple(values)
        if len(_SECONDS_CACHE) < 1000:
            _SECONDS_CACHE[field_] = found
    return found


def _cron_problem(cron: str, zone: ZoneInfo) -> str | None:
    if len(cron) > 200:
        return "at most 200 characters"
    parts = cron.split()
    if len(parts) not in (1, 5, 6) or (len(parts) == 1 and not cron.startswith("@")):
        return "5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first"
    seconds, rest = _split(cron)
    try:
        if seconds is not None and not _seconds(seconds):
            return "the seconds field selects no second"
        CronSim(rest, datetime(2000, 1, 1, tzinfo=zone))
    except (CronSimError, ValueError, IndexError, KeyError) as exc:
        return f"not a valid cron expression: {exc}"
    probe = datetime(2026, 1, 1, tzinfo=UTC)
    if _next_cron(cron, zone, probe) is None:
        return f"never fires (no fire time within {_NEVER_YEARS} years)"
    return None


def _next_cron(cron: str, zone: ZoneInfo, after: datetime) -> datetime | None:
    seconds_field, rest = _split(cron)
    seconds = _seconds(seconds_field) if seconds_field is not None else (0,)
    after = after.astimezone(UTC)
    minute_start = after.replace(second=0, microsecond=0)
    # cronsim yields times strictly after its base: start just before the minute of `after`,
    # as an instant (never a wall-clock time inside a DST gap).
    base = (minute_start - timedelta(microseconds=1)).astimezone(zone)
    limit = after + timedelta(days=366 * _NEVER_YEARS)
    try:
        for local in CronSim(rest, base):
            minute = local.astimezone(UTC)
            if minute > limit:
                return None
            for s in seconds:
                t = minute + timedelta(seconds=s)
                if t > after:
                    return t
    except (StopIteration, CronSimError):
        return None
    return None


def _micros(d: timedelta) -> int:
    return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds


def _next_interval(anchor: datetime, every: float, after: datetime) -> datetime:
    step = max(1, round(every * 1_000_000))
    elapsed = _micros(after - anchor)
    k = 0 if elapsed < 0 else elapsed // step + 1
    return anchor + timedelta(microseconds=k * step)


@dataclass(frozen=True)
class Plan:
    """What one scheduler pass does for one due schedule."""

    #: Fire times to make a job for, oldest first.
    fires: list[datetime]
    #: The schedule's next fire time after this pass.
    next_fire_at: datetime | None
    #: Missed fire times dropped by the misfire policy.
    skipped: int


def plan(
    timing: Timing,
    next_fire_at: datetime,
    now: datetime,
    *,
    misfire: Misfire,
    grace_seconds: float,
    max_catchup: int,
    max_fires: int = 1000,
) -> Plan:
    """The fire times due at `now` (from `next_fire_at` on), after the misfire policy.

    A fire time no older than `grace_seconds` always runs, whatever the policy: a scheduler
    that takes over a few seconds late (a holder died) loses nothing. Older ones are missed:
    SKIP drops them, RUN_ONCE runs the latest, RUN_ALL the latest `max_catchup`. At most
    `max_fires` are made in one pass; the rest wait for the next (`next_fire_at` stops there).
    """
    cutoff = now - timedelta(seconds=grace_seconds)
    missed: deque[datetime] = deque(maxlen=max(1, max_catchup))
    missed_count = 0
    recent: list[datetime] = []
    t: datetime | None = next_fire_at
    walked = 0
    while t is not None and t <= now:
        if t < cutoff:
            missed.append(t)
            missed_count += 1
        else:
            recent.append(t)
            if len(recent) >= max_fires:
                break
        walked += 1
        if walked >= _WALK_LIMIT and t < cutoff - timedelta(hours=1):
            # A very frequent schedule down for long: jump to the last hour of the gap.
            jump = timing.next_after(cutoff - timedelta(hours=1))
            missed_count += 1  # at least; the exact count is not worth the walk
            t = jump
            walked = 0
            continue
        t = timing.next_after(t)
    if len(recent) >= max_fires:
        t = timing.next_after(recent[-1])
    kept, skipped = _after_misfire(missed, missed_count, misfire)
    return Plan(kept + recent, t, skipped)


def _after_misfire(
    missed: deque[datetime], count: int, misfire: Misfire
) -> tuple[list[datetime], int]:
    if not count:
        return [], 0
    if misfire is Misfire.SKIP:
        return [], count
    if misfire is Misfire.RUN_ONCE:
        return [missed[-1]], count - 1
    return list(missed), count - len(missed)


@dataclass(frozen=True)
class Options:
    """Submit options of the jobs a schedule makes (None: the kind's)."""

    priority: int | None = None
    max_attempts: int | None = None
    timeout_seconds: float | None = None
    backoff_base_seconds: float | None = None
    backoff_cap_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "priority": self.priority,
            "maxAttempts": self.max_attempts,
            "timeoutSeconds": self.timeout_seconds,
            "backoffBaseSeconds": self.backoff_base_seconds,
            "backoffCapSeconds": self.backoff_cap_seconds,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Options:
        return cls(
            priority=doc.get("priority"),
            max_attempts=doc.get("maxAttempts"),
            timeout_seconds=doc.get("timeoutSeconds"),
            backoff_base_seconds=doc.get("backoffBaseSeconds"),
            backoff_cap_seconds=doc.get("backoffCapSeconds"),
        )


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule as code declares it next to its kind (`schedule(...)`), or as the API
    creates it: what is the same for both."""

    name: str
    cron: str | None = None
    every_seconds: float | None = None
    timezone: str = "UTC"
    input: dict[str, Any] = field(default_factory=dict)
    jitter_seconds: float = 0.0
    misfire: Misfire = Misfire.RUN_ONCE
    misfire_grace_seconds: float = 60.0
    max_catchup: int = 100
    options: Options = field(default_factory=Options)

    def definition_hash(self, kind: str) -> str:
        """Changes when anything the code says about the schedule changes."""
        doc = {
            "kind": kind,
            "cron": self.cron,
            "every": self.every_seconds,
            "tz": self.timezone,
            "input": self.input,
            "jitter": self.jitter_seconds,
            "misfire": self.misfire.value,
            "grace": self.misfire_grace_seconds,
            "catchup": self.max_catchup,
            "options": self.options.to_json(),
        }
        return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def validate_spec(spec: ScheduleSpec) -> list[FieldError]:
    errors = validate_timing(spec.cron, spec.every_seconds, spec.timezone)
    if not 1 <= len(spec.name) <= 200 or spec.name.strip() != spec.name:
        errors.append(FieldError(("name",), "1 to 200 characters, no surrounding spaces"))
    if not (math.isfinite(spec.jitter_seconds) and 0 <= spec.jitter_seconds <= MAX_JITTER_SECONDS):
        errors.append(
            FieldError(("jitterSeconds",), f"must be between 0 and {MAX_JITTER_SECONDS:g}")
        )
    if not (
        math.isfinite(spec.misfire_grace_seconds)
        and 0 <= spec.misfire_grace_seconds <= MAX_GRACE_SECONDS
    ):
        errors.append(
            FieldError(("misfireGraceSeconds",), f"must be between 0 and {MAX_GRACE_SECONDS:g}")
        )
    if not 1 <= spec.max_catchup <= MAX_CATCHUP:
        errors.append(FieldError(("maxCatchup",), f"must be between 1 and {MAX_CATCHUP}"))
    if not isinstance(spec.input, dict):
        errors.append(FieldError(("input",), "must be a JSON object"))
    return errors


def fires(timing: Timing, after: datetime, until: datetime) -> Iterator[datetime]:
    """Fire times in (after, until]."""
    t = timing.next_after(after)
    while t is not None and t <= until:
        yield t
        t = timing.next_after(t)


class Source(enum.StrEnum):
    API = "API"  #: created over GraphQL: the API owns it
    CODE = "CODE"  #: declared next to its kind: code owns its definition (ADR-0022)


@dataclass(frozen=True)
class Schedule:
    id: Any  # uuid.UUID (kept loose: this module imports no storage types)
    tenant_id: Any
    kind: str
    spec: ScheduleSpec
    source: Source
    anchor_at: datetime
    owner_id: Any
    created_by: str | None
    paused_at: datetime | None
    paused_by: str | None
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    skipped_fires: int
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def timing(self) -> Timing:
        return Timing(self.spec.cron, self.spec.every_seconds, self.spec.timezone, self.anchor_at)


@dataclass(frozen=True)
class Fire:
    """One fire time of a schedule and what came of it."""

    schedule_id: Any
    fire_at: datetime
    job_id: Any
    manual: bool
    error: str | None
    #: When the job was made (lag = created_at - fire_at).
    created_at: datetime
    #: The job's status now (None: no job, or pruned).
    job_status: str | None
