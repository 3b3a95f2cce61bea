"""A schema-aware fuzzer for a running Conveyor API (hypothesis-graphql driven by hypothesis).

Operations come from the live schema (introspection), so every query, mutation and
subscription is covered without a list: a field added to the API is fuzzed from its first
commit. On top of what hypothesis-graphql generates, each example may

- replace strings with values the server knows (job kinds, queues, job ids, cursors, key ids,
  taken from the running stack), as they are or spoiled with NUL or a lone surrogate, so that
  arguments get past "no such job" into the code that reads PostgreSQL;
- move the root fields' arguments into variables (the coercion path), which is also the only
  way to send what GraphQL literals cannot spell: NaN, Infinity, lone surrogates, JSON keys
  that are not GraphQL names;
- travel over HTTP or over a WebSocket (graphql-transport-ws); subscriptions always do.

`Target.check` is the oracle: an answer is wrong when it is a 5xx, carries an
INTERNAL_SERVER_ERROR, or shows a traceback. Typed errors (FORBIDDEN, INVALID_INPUT,
GRAPHQL_VALIDATION_FAILED, QUERY_TOO_COMPLEX, NOT_FOUND...) are the server doing its job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import graphql
import httpx
from hypothesis import strategies as st
from hypothesis_graphql import from_schema
from hypothesis_graphql import nodes as gql_nodes
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
_SPECIAL_FLOATS = {"NaN", "Infinity", "-Infinity"}
#: How long a subscription is given to answer before it is completed by the client.
SUBSCRIPTION_WAIT = 0.3


def introspect(http: httpx.Client) -> graphql.GraphQLSchema:
    """The schema the server runs, as any client would learn it."""
    response = http.post("/graphql", json={"query": graphql.get_introspection_query()})
    response.raise_for_status()
    return graphql.build_client_schema(response.json()["data"])


def subscription_view(schema: graphql.GraphQLSchema) -> graphql.GraphQLSchema | None:
    """The Subscription root as a query root: hypothesis-graphql generates queries and
    mutations only; its documents are turned into subscriptions after generation."""
    if schema.subscription_type is None:
        return None
    return graphql.GraphQLSchema(query=schema.subscription_type)


# Values


def _json_values(keys: list[str], strings: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats()  # NaN and the infinities included
        | strings
    )
    key = st.sampled_from(keys) | st.text(max_size=8) if keys else st.text(max_size=8)
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(key, inner, max_size=4),
        max_leaves=12,
    )


def _node(value: Any) -> graphql.ValueNode:
    """A JSON value as a GraphQL literal. NaN, Infinity and keys that are not names make
    nodes that only variables can carry (`hoist` moves them there)."""
    if value is None:
        return graphql.NullValueNode()
    if isinstance(value, bool):
        return gql_nodes.Boolean(value)
    if isinstance(value, int):
        return gql_nodes.Int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return graphql.FloatValueNode(value="NaN")
        if math.isinf(value):
            return graphql.FloatValueNode(value="Infinity" if value > 0 else "-Infinity")
        return gql_nodes.Float(value)
    if isinstance(value, str):
        return graphql.StringValueNode(value=value)
    if isinstance(value, list):
        return gql_nodes.List([_node(v) for v in value])
    return gql_nodes.Object(
        [
            graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=_node(v))
            for k, v in value.items()
        ]
    )


def _datetimes() -> st.SearchStrategy[str]:
    offsets = st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
    ).map(lambda d: timezone(timedelta(minutes=d // timedelta(minutes=1))))
    aware = st.builds(
        lambda naive, tz: naive.replace(tzinfo=tz).isoformat(),
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),  # noqa: DTZ001
        offsets,
    )
    naive = st.datetimes().map(datetime.isoformat)
    return aware | naive | st.text(max_size=30)


def custom_scalars(
    keys: list[str], strings: st.SearchStrategy[str]
) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    return {
        "JSON": _json_values(keys, strings).map(_node),
        "DateTime": _datetimes().map(gql_nodes.String),
    }


def spoiled(pool: list[str]) -> st.SearchStrategy[str]:
    """Known values, as they are or with what PostgreSQL cannot store added."""
    known = st.sampled_from(pool)
    return (
        known
        | known.map(lambda s: s + "\x00")
        | known.map(lambda s: "\x00" + s)
        | known.map(lambda s: s + "\ud800")
        | st.just("")
    )


# Documents


def _children(node: graphql.Node) -> list[graphql.Node]:
    found: list[graphql.Node] = []
    for key in node.keys:
        value = getattr(node, key, None)
        if isinstance(value, graphql.Node):
            found.append(value)
        elif isinstance(value, tuple | list):
            found.extend(v for v in value if isinstance(v, graphql.Node))
    return found


def _walk(node: graphql.Node) -> list[graphql.Node]:
    out, stack = [], [node]
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(_children(current))
    return out


def needs_variables(document: graphql.DocumentNode) -> bool:
    """Whether the document holds values a GraphQL literal cannot spell."""
    for node in _walk(document):
        if isinstance(node, graphql.FloatValueNode) and node.value in _SPECIAL_FLOATS:
            return True
        if isinstance(node, graphql.ObjectFieldNode) and not _NAME.match(node.name.value):
            return True
        if isinstance(node, graphql.StringValueNode) and re.search("[\ud800-\udfff]", node.value):
            return True
    return False


def replace_strings(
    document: graphql.DocumentNode, replace: Callable[[str], str]
) -> graphql.DocumentNode:
    """The document with every string literal passed through `replace` (AST nodes are frozen:
    a visitor returns new ones)."""

    class Strings(graphql.Visitor):
        def enter_string_value(self, node: graphql.StringValueNode, *_: Any) -> Any:
            return dataclasses.replace(node, value=replace(node.value))

    return graphql.visit(document, Strings())  # type: ignore[no-any-return]


def _value(node: graphql.ValueNode) -> Any:
    if isinstance(node, graphql.FloatValueNode) and node.value in _SPECIAL_FLOATS:
        return float(node.value)
    if isinstance(node, graphql.ListValueNode):
        return [_value(v) for v in node.values]
    if isinstance(node, graphql.ObjectValueNode):
        return {f.name.value: _value(f.value) for f in node.fields}
    return graphql.value_from_ast_untyped(node)


def hoist(
    document: graphql.DocumentNode, schema: graphql.GraphQLSchema
) -> tuple[graphql.DocumentNode, dict[str, Any]]:
    """Move every argument of the operation's root fields into a variable of the argument's
    type: the same request, through variable coercion instead of literals."""
    [operation] = document.definitions
    assert isinstance(operation, graphql.OperationDefinitionNode)
    root = schema.get_root_type(operation.operation)
    assert root is not None
    definitions: list[graphql.VariableDefinitionNode] = []
    variables: dict[str, Any] = {}
    selections: list[graphql.SelectionNode] = []
    for selection in operation.selection_set.selections:
        if not isinstance(selection, graphql.FieldNode) or selection.name.value not in root.fields:
            selections.append(selection)
            continue
        args = root.fields[selection.name.value].args
        new_args = []
        for argument in selection.arguments or ():
            name = f"v{len(definitions)}"
            variable = graphql.VariableNode(name=graphql.NameNode(value=name))
            type_node = graphql.parse_type(str(args[argument.name.value].type))
            definitions.append(graphql.VariableDefinitionNode(variable=variable, type=type_node))
            variables[name] = _value(argument.value)
            new_args.append(graphql.ArgumentNode(name=argument.name, value=variable))
        selections.append(dataclasses.replace(selection, arguments=tuple(new_args)))
    operation = dataclasses.replace(
        operation,
        variable_definitions=tuple(definitions),
        selection_set=dataclasses.replace(operation.selection_set, selections=tuple(selections)),
    )
    return graphql.DocumentNode(definitions=(operation,)), variables


def operations(
    schema: graphql.GraphQLSchema, scalars: dict[str, st.SearchStrategy[graphql.ValueNode]]
) -> st.SearchStrategy[graphql.DocumentNode]:
    """Queries and mutations over every root field (a fresh document each draw)."""
    return from_schema(schema, custom_scalars=scalars, print_ast=lambda d: d)


def subscriptions(
    schema: graphql.GraphQLSchema, scalars: dict[str, st.SearchStrategy[graphql.ValueNode]]
) -> st.SearchStrategy[graphql.DocumentNode] | None:
    """One subscription field per document (the spec allows no more), any of them."""
    view = subscription_view(schema)
    if view is None:
        return None

    def as_subscription(document: graphql.DocumentNode) -> graphql.DocumentNode:
        [operation] = document.definitions
        assert isinstance(operation, graphql.OperationDefinitionNode)
        subscription = graphql.OperationType.SUBSCRIPTION
        return graphql.DocumentNode(
            definitions=(dataclasses.replace(operation, operation=subscription),)
        )

    per_field = [
        from_schema(view, fields=[name], custom_scalars=scalars, print_ast=lambda d: d)
        for name in view.query_type.fields  # type: ignore[union-attr]
    ]
    return st.one_of(per_field).map(as_subscription)


# Sending, and judging the answers


@dataclass
class Finding:
    transport: str
    query: str
    variables: dict[str, Any]
    problem: str

    def __str__(self) -> str:
        return (
            f"{self.problem} over {self.transport}\nquery: {self.query}\n"
            f"variables: {json.dumps(self.variables)[:2000]}"
        )


def _internal(errors: Any) -> str | None:
    for error in errors if isinstance(errors, list) else []:
        code = ((error or {}).get("extensions") or {}).get("code")
        if code == "INTERNAL_SERVER_ERROR":
            return f"internal error: {error}"
    return None


@dataclass
class Target:
    """One principal of the running API, over HTTP and one WebSocket (reopened as needed)."""

    base: str
    key: str
    outcomes: Counter[str] = field(default_factory=Counter)
    _http: httpx.Client | None = None
    _ws: ClientConnection | None = None
    _sockets: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _ids: int = 0

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                base_url=self.base, headers={"Authorization": f"Bearer {self.key}"}, timeout=30
            )
        return self._http

    def _socket(self) -> ClientConnection:
        if self._ws is None:
            url = self.base.replace("http://", "ws://") + "/graphql"
            ws = self._sockets.enter_context(
                connect(
                    url,
                    subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                    # Keepalive pings come from a thread calling `random`: hypothesis would
                    # see the global random state move under its strategies.
                    ping_interval=None,
                )
            )
            ws.send(
                json.dumps(
                    {"type": "connection_init", "payload": {"authorization": f"Bearer {self.key}"}}
                )
            )
            ack = json.loads(ws.recv(timeout=10))
            assert ack["type"] == "connection_ack", ack
            self._ws = ws
        return self._ws

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        self._sockets.close()

    def http_request(self, query: str, variables: dict[str, Any]) -> str | None:
        body = json.dumps({"query": query, "variables": variables})  # NaN stays NaN
        response = self.http.post(
            "/graphql", content=body, headers={"content-type": "application/json"}
        )
        text = response.text
        if response.status_code >= 500:
            return f"HTTP {response.status_code}: {text[:2000]}"
        if "Traceback" in text:
            return f"a traceback in the answer: {text[:2000]}"
        try:
            answer = response.json()
        except ValueError:
            return f"not JSON (HTTP {response.status_code}): {text[:500]}"
        errors = answer.get("errors") if isinstance(answer, dict) else None
        self._count(errors, response.status_code)
        return _internal(errors)

    def ws_request(
        self, query: str, variables: dict[str, Any], *, subscription: bool
    ) -> str | None:
        """Send one operation; read its answers until it ends (a subscription: until its first
        answer or `SUBSCRIPTION_WAIT`, then complete it)."""
        try:
            return self._ws_request(query, variables, subscription)
        except ConnectionClosed as closed:
            self._ws = None
            code = closed.rcvd.code if closed.rcvd else None
            if code in (1011, 1006, None):
                return f"WebSocket closed by the server: {code} {closed}"
            self._count(None, code)
            return None

    def _ws_request(self, query: str, variables: dict[str, Any], subscription: bool) -> str | None:
        ws = self._socket()
        self._ids += 1
        op_id = str(self._ids)
        payload = {"query": query, "variables": variables}
        ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
        deadline = time.monotonic() + (SUBSCRIPTION_WAIT if subscription else 30)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if not subscription:
                    return "no answer over the WebSocket within 30 s"
                ws.send(json.dumps({"id": op_id, "type": "complete"}))
                self._count(None, "open")
                return None
            try:
                raw = ws.recv(timeout=remaining)
            except TimeoutError:
                continue
            if "Traceback" in str(raw):
                return f"a traceback in the answer: {str(raw)[:2000]}"
            message = json.loads(raw)
            if message.get("type") == "ping":
                ws.send(json.dumps({"type": "pong"}))
                continue
            if message.get("id") != op_id:
                continue  # a late message of an operation completed before
            if message["type"] == "error":
                self._count(message["payload"], "ws")
                return _internal(message["payload"])
            if message["type"] == "next":
                errors = message["payload"].get("errors")
                self._count(errors, "ws")
                problem = _internal(errors)
                if problem or not subscription:
                    return problem
                ws.send(json.dumps({"id": op_id, "type": "complete"}))
                return None
            if message["type"] == "complete":
                return None

    def _count(self, errors: Any, status: object) -> None:
        codes = {
            str(((e or {}).get("extensions") or {}).get("code"))
            for e in (errors if isinstance(errors, list) else [])
        }
        self.outcomes[",".join(sorted(codes)) or f"ok ({status})"] += 1
