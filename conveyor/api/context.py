"""Per-request (or per-WebSocket-connection) GraphQL context."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from strawberry.dataloader import DataLoader

from conveyor.domain.errors import Unauthenticated
from conveyor.domain.models import Attempt, Job, Principal
from conveyor.pubsub import Hub
from conveyor.services import jobs as jobs_service
from conveyor.services.auth import Authenticator
from conveyor.services.deps import Deps


@dataclass
class Context:
    deps: Deps
    hub: Hub
    authenticator: Authenticator
    request: Any = None
    response: Any = None
    #: The WebSocket `connection_init` payload (strawberry sets it).
    connection_params: Any = None
    #: The process's shared subscription feeds (WebSocket contexts only).
    feeds: Any = None
    #: True for a shared feed's own context: its subscription serves others, uncounted.
    internal: bool = False
    #: Set by the HTTP auth check, or by `connection_init` on a WebSocket.
    _principal: Principal | None = None
    #: DataLoaders batch within one tick but never cache: a WebSocket context lives for the
    #: whole connection, and a cached job would go stale.
    jobs: DataLoader[uuid.UUID, Job | None] = field(init=False)
    attempts: DataLoader[uuid.UUID, list[Attempt]] = field(init=False)

    def __post_init__(self) -> None:
        self.jobs = DataLoader(load_fn=self._load_jobs, cache=False)
        self.attempts = DataLoader(load_fn=self._load_attempts, cache=False)

    @property
    def principal(self) -> Principal:
        if self._principal is None:
            raise Unauthenticated("not authenticated")
        return self._principal

    async def _load_jobs(self, ids: list[uuid.UUID]) -> list[Job | None]:
        found = await jobs_service.get_many(self.deps, self.principal, ids)
        return [found.get(i) for i in ids]

    async def _load_attempts(self, ids: list[uuid.UUID]) -> list[list[Attempt]]:
        by_job: dict[uuid.UUID, list[Attempt]] = defaultdict(list)
        for a in await jobs_service.attempts(self.deps, ids):
            by_job[a.job_id].append(a)
        return [by_job[i] for i in ids]
