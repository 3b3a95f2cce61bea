"""Persisted operations: automatic persisted queries (APQ) and trusted documents (ADR-0024).

APQ is Apollo's protocol, which Apollo Client's `PersistedQueryLink` and urql's persisted
exchange speak: a request names its document by `extensions.persistedQuery.sha256Hash` and
leaves `query` out; a hash the server does not know is answered `PERSISTED_QUERY_NOT_FOUND`,
and the client sends the document once with its hash to register it. The hash is checked
(sha256 of the document as sent). Documents live in Redis, shared by every API process, in a
bounded LRU (`GRAPHQL_APQ_CACHE_SIZE`), behind a small in-process LRU. It is a cache and
nothing more: losing it costs one re-registration per document.

Trusted documents (`GRAPHQL_TRUSTED_DOCUMENTS=true`): only the operations of manifests
generated at build time run, the dashboard's own (`dashboard-documents.json`, written by the
frontend's codegen) and the deployment's (`GRAPHQL_TRUSTED_MANIFESTS`). A client sends a
manifest id (`extensions.persistedQuery.sha256Hash` or `documentId`), or the document itself,
which is accepted when it is one of the manifest's up to formatting and the order of fields,
arguments and definitions (GraphQL Code Generator sorts what it writes into the manifest).
Nothing registers in this mode.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import (
    ArgumentNode,
    DefinitionNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    ObjectFieldNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    SelectionSetNode,
    ValueNode,
    parse,
    print_ast,
)
from redis.asyncio import Redis

log = logging.getLogger(__name__)

#: The dashboard's operations, generated from frontend/src by GraphQL Code Generator
#: (`npm run codegen`), shipped inside the package.
DASHBOARD_MANIFEST = Path(__file__).with_name("dashboard-documents.json")
#: A document longer than this runs but is not kept in the APQ cache (keeps the cache bounded
#: in bytes: size x this).
MAX_CACHED_DOCUMENT_BYTES = 16_384
_HASH = re.compile(r"^[0-9a-f]{64}$")

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
NOT_TRUSTED = "OPERATION_NOT_TRUSTED"


class PersistedQueryError(Exception):
    """The request's persisted-query part cannot be served; `status` is the HTTP status when
    the answer is not a GraphQL request error (those follow the media type's convention)."""

    def __init__(self, message: str, code: str, *, request_error: bool = True) -> None:
        super().__init__(message)
        self.code = code
        #: True: answered like a document that fails validation (400 under
        #: graphql-response+json, 200 under application/json, which is what Apollo Client and
        #: urql read a NOT_FOUND from); False: 400 whatever the media type.
        self.request_error = request_error


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


@dataclass(frozen=True)
class Resolved:
    """The document a request runs, and whether to register it once it validates."""

    query: str
    register: str | None = None  # the hash to store it under


def _requested_hash(params: Mapping[str, Any]) -> str | None:
    """The hash or id a request names its document by (None: it names none)."""
    extensions = params.get("extensions") or {}
    persisted = extensions.get("persistedQuery")
    document_id = params.get("documentId")
    if persisted is None and document_id is None:
        return None
    if document_id is not None:
        if not isinstance(document_id, str) or not document_id:
            raise PersistedQueryError(
                "`documentId` must be a non-empty string", "BAD_REQUEST", request_error=False
            )
        return document_id.removeprefix("sha256:")
    if not isinstance(persisted, dict):
        raise PersistedQueryError(
            "`extensions.persistedQuery` must be an object", "BAD_REQUEST", request_error=False
        )
    if persisted.get("version", 1) != 1:
        raise PersistedQueryError(
            "unsupported persisted query version (1 is supported)",
            "BAD_REQUEST",
            request_error=False,
        )
    found = persisted.get("sha256Hash")
    if not isinstance(found, str) or not _HASH.match(found):
        raise PersistedQueryError(
            "`extensions.persistedQuery.sha256Hash` must be 64 lowercase hex digits",
            "BAD_REQUEST",
            request_error=False,
        )
    return found


class Persisted:
    """Resolves the document of a request: given, registered (APQ) or trusted."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        cache_size: int,
        trusted: TrustedDocuments | None,
        local_size: int = 512,
    ) -> None:
        self._redis = redis
        self._docs = f"{prefix}:apq:docs"
        self._lru = f"{prefix}:apq:lru"
        # Uses are ordered by a counter, not the clock: uses in the same millisecond (or on
        # processes whose clocks differ) still evict the least recently used first.
        self._clock = f"{prefix}:apq:clock"
        self._apq = cache_size > 0 and trusted is None
        self._cache_size = cache_size
        self.trusted = trusted
        self._local: OrderedDict[str, str] = OrderedDict()
        self._local_size = local_size

    async def resolve(self, params: Mapping[str, Any]) -> Resolved:
        """The document to run for `params` (a request's parameters, already shape-checked
        except for `query`), or PersistedQueryError."""
        query = params.get("query")
        if query is not None and (not isinstance(query, str) or not query.strip()):
            raise PersistedQueryError(
                "the `query` parameter must be a non-empty string",
                "BAD_REQUEST",
                request_error=False,
            )
        wanted = _requested_hash(params)
        if self.trusted is not None:
            return Resolved(self.trusted.resolve(query, wanted))
        if wanted is None:
            if query is None:
                raise PersistedQueryError(
                    "the `query` parameter must be a non-empty string",
                    "BAD_REQUEST",
                    request_error=False,
                )
            return Resolved(query)
        if not self._apq:
            raise PersistedQueryError("PersistedQueryNotSupported", NOT_SUPPORTED)
        if query is not None:
            if sha256(query) != wanted:
                raise PersistedQueryError(
                    "provided sha256Hash does not match the query",
                    HASH_MISMATCH,
                    request_error=False,
                )
            known = self._local.get(wanted) is not None
            return Resolved(query, register=None if known else wanted)
        found = await self._get(wanted)
        if found is None:
            raise PersistedQueryError("PersistedQueryNotFound", NOT_FOUND)
        return Resolved(found)

    async def _get(self, digest: str) -> str | None:
        found = self._local.get(digest)
        if found is not None:
            self._local.move_to_end(digest)
            return found
        try:
            raw = await self._redis.eval(_GET, 3, self._docs, self._lru, self._clock, digest)
        except Exception:
            log.warning("persisted query cache unavailable (Redis)", exc_info=True)
            return None
        if raw is None:
            return None
        document = raw.decode() if isinstance(raw, bytes) else str(raw)
        if sha256(document) != digest:  # not ours, or damaged: never run it
            return None
        self._remember(digest, document)
        return document

    async def register(self, digest: str, document: str) -> None:
        """Keep a document that validated (called after it ran), fail-open on Redis errors."""
        if len(document.encode()) > MAX_CACHED_DOCUMENT_BYTES:
            return
        self._remember(digest, document)
        try:
            await self._redis.eval(
                _PUT, 3, self._docs, self._lru, self._clock, digest, document, self._cache_size
            )
        except Exception:
            log.warning("could not store a persisted query (Redis)", exc_info=True)

    def _remember(self, digest: str, document: str) -> None:
        self._local[digest] = document
        self._local.move_to_end(digest)
        if len(self._local) > self._local_size:
            self._local.popitem(last=False)


# KEYS: docs (hash), lru (sorted set of hashes by last use), clock (the use counter).
# ARGV: hash.
_GET = """
local doc = redis.call('HGET', KEYS[1], ARGV[1])
if doc then redis.call('ZADD', KEYS[2], 'XX', redis.call('INCR', KEYS[3]), ARGV[1]) end
return doc
"""
# ARGV: hash, document, size. Evicts the least recently used past `size`.
_PUT = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over > 0 then
  local old = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #old, 2 do redis.call('HDEL', KEYS[1], old[i]) end
end
return 1
"""


class ManifestError(ValueError):
    """A trusted-documents manifest cannot be used (the process refuses to start)."""


class TrustedDocuments:
    """The operations a trusted-documents deployment runs, by id and by canonical form."""

    def __init__(self, documents: Mapping[str, str]) -> None:
        self._by_id = dict(documents)
        self._canonical: dict[str, str] = {}
        for doc_id, body in self._by_id.items():
            try:
                self._canonical[canonical(body)] = body
            except GraphQLError as exc:
                raise ManifestError(f"document {doc_id} does not parse: {exc.message}") from None
        self._seen: OrderedDict[str, bool] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_id)

    @classmethod
    def load(cls, paths: Iterable[Path]) -> TrustedDocuments:
        documents: dict[str, str] = {}
        for path in paths:
            try:
                raw = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise ManifestError(f"{path}: {exc}") from None
            for doc_id, body in _entries(raw, path):
                documents[doc_id] = body
        return cls(documents)

    def resolve(self, query: str | None, wanted: str | None) -> str:
        """The trusted document to run. A hash alone names a manifest entry (unknown:
        NOT_FOUND, so an APQ client sends the text next); a text must be a manifest's
        document, and a hash sent with it must be its sha256 or its manifest id."""
        if query is None:
            if wanted is None:
                raise PersistedQueryError(
                    "send a trusted document's id (`extensions.persistedQuery.sha256Hash` or "
                    "`documentId`) or its text",
                    "BAD_REQUEST",
                    request_error=False,
                )
            body = self._body(wanted)
            if body is None:
                raise PersistedQueryError(f"no trusted document has the id {wanted!r}", NOT_FOUND)
            return body
        if not self.allows(query):
            raise PersistedQueryError(
                "this server runs trusted documents only (GRAPHQL_TRUSTED_DOCUMENTS), and this "
                "operation is in none of its manifests",
                NOT_TRUSTED,
            )
        if wanted is not None and sha256(query) != wanted:
            body = self._body(wanted)
            if body is None or canonical(body) != canonical(query):
                raise PersistedQueryError(
                    "the id sent does not name this document",
                    HASH_MISMATCH,
                    request_error=False,
                )
        return query

    def _body(self, wanted: str) -> str | None:
        return self._by_id.get(wanted) or self._by_id.get(f"sha256:{wanted}")

    def allows(self, query: str) -> bool:
        """Whether `query` is a manifest's document up to formatting and order (cached)."""
        found = self._seen.get(query)
        if found is not None:
            self._seen.move_to_end(query)
            return found
        try:
            found = canonical(query) in self._canonical
        except GraphQLError:
            found = False
        if len(query) <= MAX_CACHED_DOCUMENT_BYTES:
            self._seen[query] = found
            if len(self._seen) > 1024:
                self._seen.popitem(last=False)
        return found


def _entries(raw: object, path: Path) -> Iterable[tuple[str, str]]:
    """A manifest's (id, document) pairs: GraphQL Code Generator's client preset
    (`{"sha256:<hex>": "document"}`, or bare ids), or Apollo's persisted query manifest
    (`{"format": "apollo-persisted-query-manifest", "operations": [{"id", "body"}]}`)."""
    if isinstance(raw, dict) and raw.get("format") == "apollo-persisted-query-manifest":
        operations = raw.get("operations")
        if not isinstance(operations, list):
            raise ManifestError(f"{path}: `operations` must be a list")
        pairs = [(op.get("id"), op.get("body")) for op in operations if isinstance(op, dict)]
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        raise ManifestError(f"{path}: not a manifest (a JSON object of id -> document)")
    for doc_id, body in pairs:
        if not isinstance(doc_id, str) or not isinstance(body, str) or not body.strip():
            raise ManifestError(f"{path}: every entry needs a string id and a document")
        bare = doc_id.removeprefix("sha256:")
        if (doc_id.startswith("sha256:") or _HASH.match(bare)) and sha256(body) != bare:
            raise ManifestError(f"{path}: the id {doc_id} is not the sha256 of its document")
        yield doc_id, body


def canonical(document: str) -> str:
    """`document` printed with its definitions, selections, arguments, variables and input
    object fields sorted (mutation root fields keep their order: they run in it)."""
    ast = parse(document, no_location=True)
    definitions = sorted((_sorted_definition(d) for d in ast.definitions), key=_definition_key)
    return print_ast(DocumentNode(definitions=tuple(definitions)))


def _definition_key(node: DefinitionNode) -> tuple[str, str]:
    name = getattr(node, "name", None)
    return (node.kind, name.value if name is not None else "")


def _sorted_definition(node: DefinitionNode) -> DefinitionNode:
    if isinstance(node, OperationDefinitionNode):
        variables = sorted(node.variable_definitions or (), key=lambda v: v.variable.name.value)
        keep_order = node.operation is OperationType.MUTATION
        return OperationDefinitionNode(
            operation=node.operation,
            name=node.name,
            variable_definitions=tuple(variables),
            directives=node.directives,
            selection_set=_sorted_selections(node.selection_set, keep_order=keep_order),
        )
    if isinstance(node, FragmentDefinitionNode):
        return FragmentDefinitionNode(
            name=node.name,
            type_condition=node.type_condition,
            variable_definitions=node.variable_definitions,
            directives=node.directives,
            selection_set=_sorted_selections(node.selection_set),
        )
    return node


def _selection_key(node: SelectionNode) -> tuple[int, str]:
    if isinstance(node, FieldNode):
        return (0, (node.alias or node.name).value + ":" + node.name.value)
    if isinstance(node, FragmentSpreadNode):
        return (1, node.name.value)
    if isinstance(node, InlineFragmentNode):
        on = node.type_condition.name.value if node.type_condition else ""
        return (2, on + print_ast(node))
    return (3, "")


def _sorted_selections(
    selection_set: SelectionSetNode, *, keep_order: bool = False
) -> SelectionSetNode:
    out: list[SelectionNode] = []
    for node in selection_set.selections:
        if isinstance(node, FieldNode):
            node = FieldNode(
                alias=node.alias,
                name=node.name,
                arguments=tuple(sorted(map(_sorted_argument, node.arguments or ()), key=_name)),
                directives=node.directives,
                selection_set=(
                    None if node.selection_set is None else _sorted_selections(node.selection_set)
                ),
            )
        elif isinstance(node, InlineFragmentNode):
            node = InlineFragmentNode(
                type_condition=node.type_condition,
                directives=node.directives,
                selection_set=_sorted_selections(node.selection_set),
            )
        out.append(node)
    if not keep_order:
        out.sort(key=_selection_key)
    return SelectionSetNode(selections=tuple(out))


def _name(node: ArgumentNode | ObjectFieldNode) -> str:
    return node.name.value


def _sorted_argument(node: ArgumentNode) -> ArgumentNode:
    return ArgumentNode(name=node.name, value=_sorted_value(node.value))


def _sorted_value(value: ValueNode) -> ValueNode:
    if isinstance(value, ObjectValueNode):
        fields = (ObjectFieldNode(name=f.name, value=_sorted_value(f.value)) for f in value.fields)
        return ObjectValueNode(fields=tuple(sorted(fields, key=_name)))
    return value
