"""Golden tests of schedule timing (ADR-0022): cronsim 2.8 (pinned) across DST changes in
Europe/Berlin and a 30-minute zone (Australia/Lord_Howe), the seconds field, intervals in UTC,
and the misfire policies. A cronsim upgrade that changes any of these fails here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor.domain.errors import InvalidInput
from conveyor.domain.schedules import Misfire, Timing, plan


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_berlin_spring_forward_runs_a_skipped_time_right_after_the_gap() -> None:
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
    t = Timing("30 2 * * *", None, "Europe/Berlin")
    assert t.upcoming(_utc(2026, 3, 28), 3) == [
        _utc(2026, 3, 28, 1, 30),  # 02:30 CET
        _utc(2026, 3, 29, 1, 0),  # 03:00 CEST, right after the gap
        _utc(2026, 3, 30, 0, 30),  # 02:30 CEST
    ]


def test_berlin_fall_back_runs_a_repeated_time_once() -> None:
    # 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice, fires once.
    t = Timing("30 2 * * *", None, "Europe/Berlin")
    assert t.upcoming(_utc(2026, 10, 24), 3) == [
        _utc(2026, 10, 24, 0, 30),
        _utc(2026, 10, 25, 0, 30),  # the first 02:30 (CEST) only
        _utc(2026, 10, 26, 1, 30),
    ]


def test_lord_howe_half_hour_dst_changes() -> None:
    # Lord Howe shifts by 30 minutes: 02:00 -> 02:30 on 2026-10-04, 02:00 -> 01:30 on
    # 2026-04-05.
    t = Timing("30 2 * * *", None, "Australia/Lord_Howe")
    assert t.upcoming(_utc(2026, 10, 2), 3) == [
        _utc(2026, 10, 2, 16, 0),  # 02:30 +10:30
        _utc(2026, 10, 3, 15, 30),  # 02:30 +11 (the first instant after the gap)
        _utc(2026, 10, 4, 15, 30),
    ]
    t = Timing("45 1 * * *", None, "Australia/Lord_Howe")
    assert t.upcoming(_utc(2026, 4, 3), 3) == [
        _utc(2026, 4, 3, 14, 45),  # 01:45 +11
        _utc(2026, 4, 4, 14, 45),  # the first 01:45 of the repeated half hour, once
        _utc(2026, 4, 5, 15, 15),  # 01:45 +10:30
    ]


def test_the_seconds_field_comes_first_and_keeps_the_dst_rules() -> None:
    t = Timing("*/20 30 2 * * *", None, "Europe/Berlin")
    assert t.upcoming(_utc(2026, 3, 28), 6) == [
        _utc(2026, 3, 28, 1, 30, 0),
        _utc(2026, 3, 28, 1, 30, 20),
        _utc(2026, 3, 28, 1, 30, 40),
        _utc(2026, 3, 29, 1, 0, 0),  # after the gap, its seconds too
        _utc(2026, 3, 29, 1, 0, 20),
        _utc(2026, 3, 29, 1, 0, 40),
    ]
    every_second = Timing("* * * * * *", None, "UTC")
    just_after = _utc(2026, 1, 1) + timedelta(microseconds=1)
    assert every_second.next_after(just_after) == _utc(2026, 1, 1, 0, 0, 1)
    assert Timing("0 0 * * *", None).next_after(_utc(2026, 1, 1)) == _utc(2026, 1, 2)


def test_intervals_count_in_utc_from_the_anchor_whatever_the_zone() -> None:
    anchor = _utc(2026, 3, 29, 0, 30)  # spans Berlin's spring change
    t = Timing(None, 3600.0, "Europe/Berlin", anchor)
    assert t.upcoming(anchor, 3) == [
        _utc(2026, 3, 29, 1, 30),
        _utc(2026, 3, 29, 2, 30),
        _utc(2026, 3, 29, 3, 30),
    ]
    assert Timing(None, 1.5, "UTC", anchor).next_after(anchor - timedelta(days=1)) == anchor


@pytest.mark.parametrize(
    ("cron", "every", "tz"),
    [
        ("61 * * * *", None, "UTC"),
        ("* * *", None, "UTC"),
        ("0 0 30 2 *", None, "UTC"),
        ("* * * * *", 5.0, "UTC"),
        (None, None, "UTC"),
        (None, 0.5, "UTC"),
        ("* * * * *", None, "Mars/Olympus"),
    ],
)
def test_bad_timings_are_refused(cron: str | None, every: float | None, tz: str) -> None:
    with pytest.raises(InvalidInput):
        Timing(cron, every, tz)


def test_misfire_policies_after_downtime() -> None:
    t = Timing("* * * * *", None)
    now = _utc(2026, 1, 1, 0, 10)
    since = now - timedelta(minutes=5)  # fires at :05 .. :10 due; grace two minutes

    def run(misfire: Misfire, catchup: int = 100) -> list[int]:
        p = plan(t, since, now, misfire=misfire, grace_seconds=120, max_catchup=catchup)
        assert p.next_fire_at == _utc(2026, 1, 1, 0, 11)
        return [f.minute for f in p.fires]

    assert run(Misfire.SKIP) == [8, 9, 10]  # within the grace: always run
    assert run(Misfire.RUN_ONCE) == [7, 8, 9, 10]  # the latest missed one
    assert run(Misfire.RUN_ALL) == [5, 6, 7, 8, 9, 10]
    assert run(Misfire.RUN_ALL, catchup=2) == [6, 7, 8, 9, 10]
    skipped = plan(t, since, now, misfire=Misfire.SKIP, grace_seconds=120, max_catchup=1)
    assert skipped.skipped == 3


def test_a_long_downtime_of_a_frequent_schedule_is_walked_in_bounded_time() -> None:
    t = Timing(None, 1.0, "UTC", _utc(2026, 1, 1))
    now = _utc(2026, 3, 1)  # two months of one-second fire times missed
    p = plan(t, _utc(2026, 1, 1), now, misfire=Misfire.RUN_ONCE, grace_seconds=2, max_catchup=1)
    assert p.fires[-1] == now
    assert p.skipped > 0
    assert p.next_fire_at == now + timedelta(seconds=1)
