"""Retry backoff: exponential with full jitter (see ADR-0013)."""

from __future__ import annotations

import random

#: Jitter draws from a generator of Conveyor's own: the process-wide `random` state belongs to
#: the application Conveyor runs in (a service embedding a worker, a test's property-based
#: fuzzer), whose sequences must not move because a job was retried.
_JITTER = random.Random()


def backoff_seconds(
    attempt: int, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Delay before the attempt after `attempt` (1-based): uniform in [0, min(cap, base*2^(n-1))].

    Full jitter spreads retries of jobs that failed together (a dependency outage) instead of
    sending them back in synchronized waves.
    """
    ceiling = min(cap, base * (2 ** max(attempt - 1, 0)))
    return (rng or _JITTER).uniform(0.0, ceiling)
