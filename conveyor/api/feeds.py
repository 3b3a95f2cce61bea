"""Shared live feeds: each distinct `jobUpdates` subscription runs once per process.

Dashboards open the same few subscriptions. Run naively, every subscriber has its own hub
subscription, filter, coalescing window and GraphQL execution per event, so a change seen by
N dashboards costs N executions. Here subscribers of the same (document, operation, variables,
visibility scope) share one *group*: one source stream (the ordinary `jobUpdates` resolver),
one execution of the selection set per event, and one result object that every member's
socket sends (its JSON is encoded once too, see `ConveyorGraphQL.encode_json`).

Each member keeps a bounded buffer; a member that cannot drain it is closed with 4429 without
slowing the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import AsyncGenerator, Awaitable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, cast

import orjson
from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    parse,
    specified_rules,
    subscribe,
    validate,
)
from graphql import (
    ExecutionResult as CoreResult,
)
from strawberry.types.execution import ExecutionResult

from conveyor import metrics
from conveyor.api import direct, sockets
from conveyor.api.context import Context
from conveyor.api.errors import public
from conveyor.domain import policy
from conveyor.domain.errors import TooManySubscriptions
from conveyor.pubsub import Hub

log = logging.getLogger(__name__)

#: Root fields whose subscriptions are shared.
SHARED_FIELDS = frozenset({"jobUpdates"})
_END = object()


class Delivery(Enum):
    DIRECT = "written to the socket"
    QUEUED = "queued for the member's task"
    OVERFLOWED = "overflowed: the member is too slow"


@dataclass(eq=False, slots=True)
class Member:
    """One subscriber of a group. Held per subscriber, so kept small: the queue exists only
    while results wait in it (most go straight to the socket), and a future only while the
    member's task waits (an `asyncio.Event` and an empty deque cost 1.3 KB together)."""

    buffer: int
    websocket: Any
    #: Where results may be written directly (`conveyor.api.direct`); None: always queued.
    target: direct.Target | None = None
    overflowed: bool = False
    _queue: deque[ExecutionResult | object] | None = None
    _waiter: asyncio.Future[None] | None = None

    def push(self, item: ExecutionResult | object) -> bool:
        """Queue a result; False when the member just overflowed."""
        if self.overflowed:
            return True
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        if len(queue) >= self.buffer and item is not _END:
            self.overflow()
            return False
        queue.append(item)
        self._wake()
        return True

    def overflow(self) -> None:
        """Drop what is queued and end the member's stream."""
        self.overflowed = True
        self._queue = deque((_END,))
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def send(self, result: ExecutionResult, data_json: bytes | None) -> Delivery:
        """Deliver a result: written straight to the socket when it can be (`data_json`, the
        result's data encoded once for the group), else queued for the member's task, behind
        anything already queued."""
        if self.overflowed:
            return Delivery.QUEUED  # its stream is ending
        if data_json is not None and self.target is not None and not self._queue:
            written = direct.write(self.target, data_json, self.buffer)
            if written is direct.Written.SENT:
                return Delivery.DIRECT
            if written is direct.Written.TOO_SLOW:
                self.overflow()
                return Delivery.OVERFLOWED
        return Delivery.QUEUED if self.push(result) else Delivery.OVERFLOWED

    async def get(self) -> ExecutionResult | object:
        while not self._queue:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._queue.popleft()
        if not self._queue:
            self._queue = None
        return item


@dataclass(eq=False)
class Group:
    key: tuple[Any, ...]
    members: set[Member] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class Feeds:
    """The process's shared subscription groups."""

    def __init__(
        self,
        schema: GraphQLSchema,
        hub: Hub,
        *,
        buffer: int,
        rules: Sequence[type[ASTValidationRule]] = (),
        max_tokens: int | None = None,
    ) -> None:
        self._schema = schema
        self._hub = hub
        self._buffer = buffer
        # The same limits as every other operation (depth, aliases, tokens, introspection).
        self._rules = [*specified_rules, *rules]
        self._max_tokens = max_tokens
        self._groups: dict[tuple[Any, ...], Group] = {}
        self._documents: OrderedDict[str, DocumentNode | None] = OrderedDict()

    @property
    def member_count(self) -> int:
        return sum(len(g.members) for g in self._groups.values())

    @property
    def group_count(self) -> int:
        return len(self._groups)

    def shareable(self, query: str, operation_name: str | None) -> DocumentNode | None:
        """The parsed document when it is a valid subscription to shared fields only."""
        if query in self._documents:
            self._documents.move_to_end(query)
            return self._documents[query]
        document: DocumentNode | None
        try:
            document = parse(query, max_tokens=self._max_tokens)
        except GraphQLError:
            document = None  # strawberry's path reports it
        if document is not None and (
            validate(self._schema, document, self._rules)
            or not _only_shared(document, operation_name)
        ):
            document = None
        self._documents[query] = document
        if len(self._documents) > 256:
            self._documents.popitem(last=False)
        return document

    async def join(
        self,
        document: DocumentNode,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Context,
    ) -> AsyncGenerator[ExecutionResult, None]:
        principal = context.principal
        scope = policy.read_scope(principal)  # who may see what: part of the group's identity
        key = (
            query,
            operation_name,
            # As text: orjson's bytes keep its 4 KB buffer, and every member holds the key.
            orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS).decode(),
            scope,
        )
        try:
            self._hub.reserve(1)
        except TooManySubscriptions as exc:
            yield ExecutionResult(
                data=None, errors=[public(GraphQLError(str(exc), original_error=exc))]
            )
            return
        member = Member(self._buffer, context.request, direct.current())
        group = self._groups.get(key)
        if group is None:
            group = Group(key)
            self._groups[key] = group
            group_context = Context(
                deps=context.deps,
                hub=context.hub,
                authenticator=context.authenticator,
                _principal=principal,
                internal=True,
            )
            group.task = asyncio.create_task(
                self._run(group, document, variables, operation_name, group_context),
                name="shared-feed",
            )
        group.members.add(member)
        try:
            while True:
                item = await member.get()
                if item is _END:
                    return
                yield cast(ExecutionResult, item)
        finally:
            self._hub.reserve(-1)
            group.members.discard(member)
            if not group.members:
                self._groups.pop(key, None)
                if group.task is not None:
                    group.task.cancel()

    async def _run(
        self,
        group: Group,
        document: DocumentNode,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Context,
    ) -> None:
        try:
            source = subscribe(
                self._schema,
                document,
                context_value=context,
                variable_values=variables,
                operation_name=operation_name,
            )
            if isinstance(source, Awaitable):
                source = await source
            if isinstance(source, CoreResult):
                self._broadcast(group, _strawberry(source))
                return
            async for result in source:
                self._broadcast(group, _strawberry(result))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("shared feed failed", extra={"error": repr(exc)})
            error = public(GraphQLError("feed failed", original_error=exc))
            self._broadcast(group, ExecutionResult(data=None, errors=[error]))
        finally:
            for member in list(group.members):
                member.push(_END)

    def _broadcast(self, group: Group, result: ExecutionResult) -> None:
        members = list(group.members)
        data_json = None
        if (
            result.data is not None
            and not result.errors
            and not result.extensions
            and any(m.target is not None for m in members)
        ):
            data_json = orjson.dumps(result.data)  # once for every member written directly
        written = 0
        for member in members:
            delivery = member.send(result, data_json)
            if delivery is Delivery.DIRECT:
                written += 1
            elif delivery is Delivery.OVERFLOWED:
                sockets.close_too_slow(member.websocket)
        if written:
            metrics.DIRECT_FRAMES.inc(written)


def _strawberry(result: CoreResult) -> ExecutionResult:
    errors = [public(e) for e in result.errors] if result.errors else None
    return ExecutionResult(data=result.data, errors=errors)


def _only_shared(document: DocumentNode, operation_name: str | None) -> bool:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return False
    op = operations[0]
    if op.operation is not OperationType.SUBSCRIPTION:
        return False
    selections = op.selection_set.selections
    return (
        len(selections) == 1
        and isinstance(selections[0], FieldNode)
        and selections[0].name.value in SHARED_FIELDS
        and not selections[0].directives
    )
