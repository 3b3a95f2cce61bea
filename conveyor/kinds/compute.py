"""CPU-bound kinds: the work runs in the worker's process pool, off the event loop."""

from __future__ import annotations

import math

from pydantic import BaseModel, Field

from conveyor.kinds.context import JobContext
from conveyor.kinds.registry import job_kind

#: Numbers sieved per process-pool call: small enough for frequent progress and cancellation.
SEGMENT = 2_000_000


class PrimesInput(BaseModel):
    limit: int = Field(ge=0, le=50_000_000, description="Count primes below this number")


def _base_primes(limit: int) -> list[int]:
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\x00\x00"[: min(2, limit + 1)]
    for p in range(2, math.isqrt(limit) + 1):
        if sieve[p]:
            sieve[p * p :: p] = bytes(len(range(p * p, limit + 1, p)))
    return [i for i, flag in enumerate(sieve) if flag]


def count_primes_in(lo: int, hi: int) -> int:
    """Primes p with lo <= p < hi (segmented sieve of Eratosthenes)."""
    if hi <= 2 or hi <= lo:
        return 0
    lo = max(lo, 2)
    segment = bytearray([1]) * (hi - lo)
    for p in _base_primes(math.isqrt(hi - 1)):
        start = max(p * p, ((lo + p - 1) // p) * p)
        if start < hi:
            segment[start - lo :: p] = bytes(len(range(start, hi, p)))
    return segment.count(1)


class PrimesResult(BaseModel):
    limit: int = Field(description="The number counted below")
    primes: int = Field(description="Primes below `limit`")


@job_kind("compute.primes", input=PrimesInput, queue="cpu", timeout=600)
async def primes(ctx: JobContext, input: PrimesInput) -> PrimesResult:
    """Count the primes below `limit`, in segments run in a process pool."""
    total = 0
    segments = range(0, input.limit, SEGMENT)
    for i, lo in enumerate(segments, start=1):
        total += await ctx.run_in_process(count_primes_in, lo, min(lo + SEGMENT, input.limit))
        await ctx.progress(i / len(segments), f"{min(lo + SEGMENT, input.limit):,} checked")
    return PrimesResult(limit=input.limit, primes=total)
