"""A typed async client for services that do not share Conveyor's database: GraphQL over HTTP
(httpx) and the `graphql-transport-ws` WebSocket protocol (websockets).

    async with Client("https://jobs.example.com", key=os.environ["CONVEYOR_KEY"]) as conveyor:
        job = await conveyor.submit("reports.generate", {"accountId": 7}, idempotency_key="r-7")
        async for event in conveyor.follow(job.id):
            print(event.seq, event.type, event.progress)
        done = await conveyor.get(job.id)

`follow` (and `follow_run`, a workflow run's events) survives dropped connections without
missing or repeating an event: it tracks the last `seq` it yielded and resubscribes with
`after: <seq>` (the server replays what is stored past it, then goes live), which the stock
graphql-ws clients do not do (they resubscribe with the original variables and get a fresh
SNAPSHOT, skipping what happened in between). It stops on authentication failures (close 4403)
instead of retrying them.

Errors are Conveyor's own (`conveyor.InvalidInput`, `UnknownJobKind`, `Conflict`,
`PolicyDenied`, `NotFound`, `InvalidState`, `Unauthenticated`, `Forbidden`,
`ServiceUnavailable`), as the Python producer raises them; anything else is `ClientError`.

Size (~460 lines): one public class and the values it returns; a user imports one module.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from conveyor.domain.errors import (
    Conflict,
    ConveyorError,
    FieldError,
    Forbidden,
    InvalidInput,
    InvalidState,
    NotFound,
    PolicyDenied,
    ServiceUnavailable,
    Unauthenticated,
    UnknownJobKind,
    UserError,
)
from conveyor.domain.runs import RUN_TERMINAL_EVENTS, RunEventType, RunStatus, StepStatus
from conveyor.domain.states import EventType, JobStatus, Priority

__all__ = ["Client", "ClientError", "Job", "JobError", "JobEvent", "RunEvent"]

_Event = TypeVar("_Event", "JobEvent", "RunEvent")

#: Close codes after which reconnecting cannot help (graphql-transport-ws and Conveyor's).
_FATAL_CLOSE = {4400: "bad request", 4401: "unauthorized", 4406: "subprotocol not acceptable"}
_AUTH_CLOSE = 4403


class ClientError(ConveyorError):
    """An error Conveyor answered that has no type of its own here (its `code` says which)."""

    def __init__(self, message: str, code: str = "CLIENT_ERROR") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class JobError:
    type: str
    message: str


@dataclass(frozen=True, slots=True)
class Job:
    """A job as the API shows it."""

    id: uuid.UUID
    kind: str
    queue: str
    status: JobStatus
    priority: Priority
    payload: dict[str, Any]
    result: Any
    error: JobError | None
    progress: float
    progress_message: str | None
    attempt: int
    max_attempts: int
    created_at: datetime
    run_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    parent_id: uuid.UUID | None
    #: True when `submit` found an earlier job under the same idempotency key.
    deduplicated: bool


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One event of a job, in `seq` order. The first one `follow` yields without `after` is a
    SNAPSHOT of the job as it is (its `seq`: the latest stored event's)."""

    seq: int
    type: EventType
    status: JobStatus
    progress: float | None
    message: str | None
    data: Any
    at: datetime

    @property
    def is_terminal(self) -> bool:
        return self.type in (EventType.SUCCEEDED, EventType.FAILED, EventType.CANCELLED)


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One event of a workflow run, in `seq` order (1, 2, 3...). The first one `follow_run`
    yields without `after` is a SNAPSHOT of the run as it is (its `seq`: the latest stored)."""

    seq: int
    type: RunEventType
    status: RunStatus
    #: The step it is about, if any, and that step's status after the event.
    step: str | None
    step_status: StepStatus | None
    data: Any
    at: datetime

    @property
    def is_terminal(self) -> bool:
        return self.type in RUN_TERMINAL_EVENTS


_JOB = """
fragment ClientJob on Job {
  id kind queue status priority payload result error { type message } progress
  progressMessage attempt maxAttempts createdAt runAt startedAt finishedAt parentId deduplicated
}
"""
_SUBMIT_ERRORS = """
  ... on UserError { __typename code message }
  ... on InvalidInput { fieldErrors { path message } }
  ... on UnknownJobKind { kind }
  ... on Conflict { existingJobId }
  ... on PolicyDenied { rule retryAfterSeconds }
"""
_CANCEL_ERRORS = """
  ... on UserError { __typename code message }
  ... on NotFound { id }
  ... on InvalidState { status }
"""
SUBMIT = f"""mutation ClientSubmit($input: SubmitJobInput!) {{
  submitJob(input: $input) {{ __typename ...ClientJob {_SUBMIT_ERRORS} }} }} {_JOB}"""
GET = f"""query ClientGet($id: ID!) {{ job(id: $id) {{ ...ClientJob }} }} {_JOB}"""
CANCEL = f"""mutation ClientCancel($id: ID!) {{
  cancelJob(id: $id) {{ __typename ...ClientJob {_CANCEL_ERRORS} }} }} {_JOB}"""
FOLLOW = """subscription ClientFollow($id: ID!, $after: Int) {
  jobEvents(jobId: $id, after: $after) { seq type status progress message data at } }"""
FOLLOW_RUN = """subscription ClientFollowRun($id: ID!, $after: Int) {
  workflowEvents(runId: $id, after: $after) { seq type status step stepStatus data at } }"""


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _job(d: Mapping[str, Any]) -> Job:
    error = d.get("error")
    return Job(
        id=uuid.UUID(d["id"]),
        kind=d["kind"],
        queue=d["queue"],
        status=JobStatus(d["status"]),
        priority=Priority[d["priority"]],
        payload=d["payload"],
        result=d["result"],
        error=JobError(error["type"], error["message"]) if error else None,
        progress=d["progress"],
        progress_message=d["progressMessage"],
        attempt=d["attempt"],
        max_attempts=d["maxAttempts"],
        created_at=datetime.fromisoformat(d["createdAt"]),
        run_at=_time(d["runAt"]),
        started_at=_time(d["startedAt"]),
        finished_at=_time(d["finishedAt"]),
        parent_id=uuid.UUID(d["parentId"]) if d.get("parentId") else None,
        deduplicated=d["deduplicated"],
    )


def _event(d: Mapping[str, Any]) -> JobEvent:
    return JobEvent(
        seq=d["seq"],
        type=EventType(d["type"]),
        status=JobStatus(d["status"]),
        progress=d["progress"],
        message=d["message"],
        data=d["data"],
        at=datetime.fromisoformat(d["at"]),
    )


def _run_event(d: Mapping[str, Any]) -> RunEvent:
    return RunEvent(
        seq=d["seq"],
        type=RunEventType(d["type"]),
        status=RunStatus(d["status"]),
        step=d["step"],
        step_status=StepStatus(d["stepStatus"]) if d["stepStatus"] else None,
        data=d["data"],
        at=datetime.fromisoformat(d["at"]),
    )


def _user_error(d: Mapping[str, Any]) -> UserError:
    """A result union's error member as the domain error it stands for."""
    kind, message = d["__typename"], d["message"]
    if kind == "InvalidInput":
        fields = [FieldError(tuple(f["path"]), f["message"]) for f in d["fieldErrors"]]
        return InvalidInput(message, fields)
    if kind == "UnknownJobKind":
        return UnknownJobKind(d["kind"])
    if kind == "Conflict":
        return Conflict(message, d["existingJobId"])
    if kind == "PolicyDenied":
        return PolicyDenied(message, rule=d["rule"], retry_after_seconds=d["retryAfterSeconds"])
    if kind == "NotFound":
        return NotFound(d["id"])
    if kind == "InvalidState":
        return InvalidState(message, d["status"])
    error = UserError(message)
    error.code = d.get("code", error.code)
    return error


def _raised(error: Mapping[str, Any]) -> ConveyorError:
    """A top-level GraphQL error as the domain error its code names."""
    extensions = error.get("extensions") or {}
    code, message = str(extensions.get("code", "")), str(error.get("message", ""))
    if code == "INVALID_INPUT":
        fields = [
            FieldError(tuple(f["path"]), f["message"]) for f in extensions.get("fieldErrors", [])
        ]
        return InvalidInput(message, fields)
    if code == "NOT_FOUND":
        return NotFound(message)
    known: dict[str, type[ConveyorError]] = {
        "UNAUTHENTICATED": Unauthenticated,
        "FORBIDDEN": Forbidden,
        "SERVICE_UNAVAILABLE": ServiceUnavailable,
    }
    return known[code](message) if code in known else ClientError(message, code or "UNKNOWN")


def _payload(input: Mapping[str, Any] | BaseModel | None) -> Any:
    if input is None:
        return {}
    if isinstance(input, BaseModel):
        return input.model_dump(mode="json", by_alias=True)
    return dict(input) if isinstance(input, Mapping) else input


class Client:
    """One Conveyor API (`url`, e.g. `http://127.0.0.1:8000`), as the API key (or read-only
    token) `key`. Use as `async with`, or call `aclose()`."""

    def __init__(
        self,
        url: str,
        *,
        key: str,
        timeout: float = 30.0,
        reconnect_max_seconds: float = 5.0,
        give_up_after_seconds: float | None = 300.0,
    ) -> None:
        base = url.rstrip("/")
        self._ws_url = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        self._ws_url += "/graphql"
        self._key = key
        self._http = httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=timeout
        )
        self._timeout = timeout
        self._reconnect_max = reconnect_max_seconds
        #: `follow` gives up after failing to (re)connect for this long (None: never).
        self._give_up_after = give_up_after_seconds
        #: How many times `follow` reconnected (in this client's life).
        self.reconnects = 0

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def execute(self, query: str, variables: Mapping[str, Any] | None = None) -> Any:
        """Run any GraphQL document; its `data`, or the first error raised as a domain error."""
        try:
            response = await self._http.post(
                "/graphql", json={"query": query, "variables": dict(variables or {})}
            )
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"Conveyor is not reachable: {exc!r}") from exc
        try:
            body = response.json()
        except ValueError:
            raise ClientError(f"HTTP {response.status_code}: {response.text[:200]}") from None
        if body.get("errors"):
            raise _raised(body["errors"][0])
        if response.status_code != 200:
            raise ClientError(f"HTTP {response.status_code}", f"HTTP_{response.status_code}")
        return body["data"]

    async def submit(
        self,
        kind: str,
        input: Mapping[str, Any] | BaseModel | None = None,
        *,
        idempotency_key: str | None = None,
        run_at: datetime | None = None,
        priority: Priority | None = None,
        max_attempts: int | None = None,
        timeout_seconds: float | None = None,
        backoff_base_seconds: float | None = None,
        backoff_cap_seconds: float | None = None,
    ) -> Job:
        """Submit a job (`submitJob`). Raises InvalidInput (`field_errors`), UnknownJobKind,
        Conflict, PolicyDenied."""
        options = {
            "idempotencyKey": idempotency_key,
            "runAt": run_at.isoformat() if run_at else None,
            "priority": Priority(priority).name if priority is not None else None,
            "maxAttempts": max_attempts,
            "timeoutSeconds": timeout_seconds,
            "backoffBaseSeconds": backoff_base_seconds,
            "backoffCapSeconds": backoff_cap_seconds,
        }
        given = {k: v for k, v in options.items() if v is not None}
        data = await self.execute(
            SUBMIT, {"input": {"kind": kind, "payload": _payload(input), **given}}
        )
        return self._job_or_raise(data["submitJob"])

    async def get(self, job_id: uuid.UUID | str) -> Job | None:
        """The job, or None when it does not exist or is not visible to this key."""
        found = (await self.execute(GET, {"id": str(job_id)}))["job"]
        return _job(found) if found else None

    async def cancel(self, job_id: uuid.UUID | str) -> Job:
        """Cancel a waiting job, or ask a running one to stop. Raises NotFound, InvalidState."""
        return self._job_or_raise((await self.execute(CANCEL, {"id": str(job_id)}))["cancelJob"])

    @staticmethod
    def _job_or_raise(result: Mapping[str, Any]) -> Job:
        if result["__typename"] != "Job":
            raise _user_error(result)
        return _job(result)

    def follow(
        self, job_id: uuid.UUID | str, *, after: int | None = None
    ) -> AsyncIterator[JobEvent]:
        """The job's events in `seq` order until its terminal event, across reconnects,
        never one missed or repeated. Without `after`, a SNAPSHOT first. Raises
        Unauthenticated (close 4403: not retried), NotFound, and ServiceUnavailable once
        reconnecting failed for `give_up_after_seconds`."""
        return self._follow(FOLLOW, "jobEvents", _event, f"job {job_id}", str(job_id), after)

    def follow_run(
        self, run_id: uuid.UUID | str, *, after: int | None = None
    ) -> AsyncIterator[RunEvent]:
        """A workflow run's events (`workflowEvents`) as `follow` gives a job's: in `seq`
        order until the run's terminal event, across reconnects, none missed or repeated."""
        return self._follow(
            FOLLOW_RUN, "workflowEvents", _run_event, f"run {run_id}", str(run_id), after
        )

    async def _follow(
        self,
        query: str,
        field: str,
        parse: Callable[[Mapping[str, Any]], _Event],
        what: str,
        id_: str,
        after: int | None,
    ) -> AsyncIterator[_Event]:
        last = after
        delay = 0.1
        failing_since: float | None = None
        while True:
            try:
                async with connect(
                    self._ws_url,
                    subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                    open_timeout=self._timeout,
                ) as ws:
                    await self._open(ws)
                    await ws.send(
                        json.dumps(
                            {
                                "id": "1",
                                "type": "subscribe",
                                "payload": {
                                    "query": query,
                                    "variables": {"id": id_, "after": last},
                                },
                            }
                        )
                    )
                    async for raw in ws:
                        msg = json.loads(raw)
                        kind = msg.get("type")
                        if kind == "ping":
                            await ws.send(json.dumps({"type": "pong"}))
                        elif kind == "next":
                            payload = msg["payload"]
                            if payload.get("errors"):
                                raise _raised(payload["errors"][0])
                            event = parse(payload["data"][field])
                            failing_since, delay = None, 0.1
                            if last is not None and event.seq <= last:
                                continue  # the server never repeats; this makes sure
                            last = event.seq
                            yield event
                        elif kind == "error":
                            raise _raised(msg["payload"][0])
                        elif kind == "complete":
                            return
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                if code == _AUTH_CLOSE:
                    reason = exc.rcvd.reason if exc.rcvd is not None else ""
                    raise Unauthenticated(f"connection closed (4403) {reason}") from exc
                if code in _FATAL_CLOSE:
                    raise ClientError(f"closed {code}: {_FATAL_CLOSE[code]}", f"WS_{code}") from exc
            except (OSError, TimeoutError, InvalidHandshake):
                pass  # not reachable now: try again
            # The connection ended before the job's last event: resume after `last`.
            now = time.monotonic()
            failing_since = failing_since or now
            if self._give_up_after is not None and now - failing_since > self._give_up_after:
                raise ServiceUnavailable(
                    f"could not follow {what}: no connection for {self._give_up_after:g} s"
                )
            self.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._reconnect_max)

    async def _open(self, ws: ClientConnection) -> None:
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {self._key}"}}
        await ws.send(json.dumps(init))
        ack = json.loads(await asyncio.wait_for(ws.recv(), self._timeout))
        if ack.get("type") != "connection_ack":
            raise ClientError(f"unexpected answer to connection_init: {ack.get('type')!r}")
