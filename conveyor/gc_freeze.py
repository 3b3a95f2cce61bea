"""Garbage-collector settings for long-running processes (API and worker).

CPython's cyclic collector periodically walks every tracked object of the oldest generation.
After start-up that is mostly the process's own furniture (the GraphQL schema, SQLAlchemy and
taskiq internals, imported modules): walking it on a request's path is a pause of tens of
milliseconds that shows up as tail latency. `settle` moves everything alive once start-up is
done into the permanent generation (`gc.freeze`), which collections skip.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Call once start-up is complete: collect, then freeze what survived."""
    gc.collect()
    gc.freeze()
