"""gql 4, the Python GraphQL client, against a real API and worker (ADR-0024): submit, follow
over the legacy `graphql-ws` protocol (its default first choice) with a forced reconnect, a
persisted query, a batch, a bad key. The snippets in README's "Clients" section are these."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport
from graphql import parse, print_ast

from tests import support

SUBMIT = """mutation Submit($input: SubmitJobInput!) {
  submitJob(input: $input) { __typename ... on Job { id status } }
}"""
FOLLOW = """subscription Follow($id: ID!, $after: Int) {
  jobEvents(jobId: $id, after: $after) { seq type status }
}"""
EVENTS = "query Events($id: ID!) { job(id: $id) { events(first: 1000) { seq } } }"


def _http(base: str, key: str) -> HTTPXAsyncTransport:
    return HTTPXAsyncTransport(url=f"{base}/graphql", headers={"Authorization": f"Bearer {key}"})


def _ws(base: str, key: str, protocol: str) -> WebsocketsTransport:
    return WebsocketsTransport(
        url=base.replace("http", "ws") + "/graphql",
        init_payload={"authorization": f"Bearer {key}"},
        subprotocols=[protocol],  # type: ignore[list-item]
    )


async def _submit(base: str, key: str) -> str:
    async with Client(transport=_http(base, key)) as session:
        job = await session.execute(
            GraphQLRequest(
                SUBMIT,
                variable_values={
                    "input": {"kind": "demo.sleep", "payload": {"steps": 8, "stepSeconds": 0.15}}
                },
            )
        )
    assert job["submitJob"]["__typename"] == "Job"
    return str(job["submitJob"]["id"])


@pytest.mark.parametrize(
    "protocol", [WebsocketsTransport.APOLLO_SUBPROTOCOL, WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL]
)
async def test_gql_submits_and_follows_across_a_dropped_connection(
    stack: support.Stack, env: support.Env, protocol: str
) -> None:
    _, base = stack.serve()
    stack.worker()
    key = env.create_key("python")
    job_id = await _submit(base, key)
    seen: list[dict[str, Any]] = []
    after: int | None = None
    connections = 0
    # Follow, resuming from the last seq after each drop (what conveyor.client's follow does).
    while not seen or seen[-1]["type"] not in ("SUCCEEDED", "FAILED", "CANCELLED"):
        transport = _ws(base, key, protocol)
        connections += 1
        async with Client(transport=transport) as session:
            request = GraphQLRequest(FOLLOW, variable_values={"id": job_id, "after": after})
            async for result in session.subscribe(request):
                event = result["jobEvents"]
                seen.append(event)
                after = event["seq"]
                if len(seen) == 2:
                    break  # the connection drops (closed under the subscription)
    async with Client(transport=_http(base, key)) as session:
        stored = [
            e["seq"]
            for e in (
                await session.execute(GraphQLRequest(EVENTS, variable_values={"id": job_id}))
            )["job"]["events"]
        ]
    assert seen[0]["type"] == "SNAPSHOT"
    assert [e["seq"] for e in seen[1:]] == [s for s in stored if s > seen[0]["seq"]]
    assert connections >= 2


async def test_gql_persisted_query_batch_and_bad_key(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    key = env.create_key("python")
    # gql sends the document as graphql-core prints it: hash that text.
    document = print_ast(parse("query Kinds { jobKinds { name } }"))
    digest = hashlib.sha256(document.encode()).hexdigest()
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    request = GraphQLRequest(document, extensions=extensions)
    hash_only = {"json": {"extensions": extensions}}
    async with Client(transport=_http(base, key)) as session:
        # APQ, two steps: the hash alone; when unknown, the document with its hash.
        with pytest.raises(TransportQueryError) as unknown:
            await session.execute(request, extra_args=hash_only)
        assert unknown.value.errors is not None
        assert unknown.value.errors[0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        assert (await session.execute(request))["jobKinds"]
        assert (await session.execute(request, extra_args=hash_only))["jobKinds"]
        # A batch: one HTTP request, an answer per operation, in order.
        me, kinds = await session.execute_batch(
            [GraphQLRequest("{ me { name } }"), GraphQLRequest(document)]
        )
        assert me["me"]["name"] == "python"
        assert kinds["jobKinds"]
    # A wrong key: 401 over HTTP; refused at connection_init over either protocol.
    with pytest.raises(TransportQueryError) as refused:
        async with Client(transport=_http(base, "cvk_wrong")) as session:
            await session.execute(GraphQLRequest("{ me { name } }"))
    assert refused.value.errors is not None
    assert refused.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
    # Over the legacy protocol gql raises the server's connection_error; over
    # graphql-transport-ws the close (4403) says why.
    for protocol in (
        WebsocketsTransport.APOLLO_SUBPROTOCOL,
        WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL,
    ):
        with pytest.raises(Exception) as closed:  # noqa: PT011 - gql raises per protocol
            async with Client(transport=_ws(base, "cvk_wrong", protocol)) as session:
                await session.execute(GraphQLRequest("{ me { name } }"))
        said = f"{closed.value!r} {closed.value.__cause__!r}"
        assert "invalid API key" in said, said
