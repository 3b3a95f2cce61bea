"""Authentication: API keys and the short-lived read tokens minted from them.

A key reads `cvk_<lookup>_<secret>`. The lookup half finds the row; the secret half (32 random
bytes) is stored only as HMAC-SHA256 keyed with SECRET_KEY and compared in constant time. A
high-entropy random secret needs no slow hash (there is nothing to brute-force); the key makes
a stolen table useless without the server's secret. Keys made before migration 0002 carry a
plain SHA-256 and are re-hashed on first use.

A token reads `cvt_<payload>.<signature>` (base64url JSON, HMAC-SHA256 with SECRET_KEY): tenant,
scope (`tenant` or `job:<id>`), expiry and the minting key. Besides the signature, one database
read (cached like keys) checks that the minting key is still active and in the token's tenant,
and that a job token's job is in that tenant: revoking a key revokes every token minted from
it. A principal carries its credential's expiry, so open WebSockets can be closed at it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conveyor.db import keys as keys_repo
from conveyor.db.engine import statements, transaction
from conveyor.domain import storable
from conveyor.domain.errors import Unauthenticated
from conveyor.domain.models import DEFAULT_TENANT_ID, ApiKey, Principal
from conveyor.domain.policy import Role
from conveyor.services import audit

log = logging.getLogger(__name__)

PREFIX = "cvk"
TOKEN_PREFIX = "cvt"


def keyed_hash(secret_key: str, secret: str) -> bytes:
    return hmac.new(secret_key.encode(), secret.encode(), hashlib.sha256).digest()


def _legacy_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def create_api_key(
    engine: AsyncEngine,
    *,
    name: str,
    admin: bool = False,
    secret_key: str,
    role: Role | None = None,
    tenant_id: uuid.UUID = DEFAULT_TENANT_ID,
    superuser: bool = False,
    expires_at: datetime | None = None,
    created_by: Principal | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; the returned plaintext is shown once and never stored.

    `admin=True` is the pre-tenant spelling of `role=Role.ADMIN` (in the default tenant).
    """
    role = role or (Role.ADMIN if admin or superuser else Role.SUBMITTER)
    lookup = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    async with transaction(engine) as conn:
        key = await keys_repo.insert(
            conn,
            name=name,
            lookup=lookup,
            secret_hash=keyed_hash(secret_key, secret),
            role=role.value,
            tenant_id=tenant_id,
            is_superuser=superuser,
            expires_at=expires_at,
            created_by=created_by.id if created_by else None,
        )
        await audit.append(
            conn,
            [
                audit.entry(
                    created_by,
                    "key.create",
                    f"key:{key.id}",
                    after=_summary(key),
                    tenant_id=tenant_id,
                )
            ],
        )
    return key, f"{PREFIX}_{lookup}_{secret}"


def _summary(key: ApiKey) -> dict[str, Any]:
    return {
        "name": key.name,
        "role": key.role,
        "superuser": key.is_superuser,
        "expiresAt": key.expires_at.isoformat() if key.expires_at else None,
    }


def parse_bearer(header: str | None) -> str:
    if not header:
        raise Unauthenticated("missing Authorization header: send 'Authorization: Bearer <key>'")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must read 'Bearer <key>'")
    return token.strip()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(secret_key: str, claims: dict[str, Any]) -> str:
    body = _b64(orjson.dumps(claims))
    sig = hmac.new(secret_key.encode(), f"{TOKEN_PREFIX}.{body}".encode(), hashlib.sha256)
    return f"{TOKEN_PREFIX}_{body}.{_b64(sig.digest())}"


def verify_token(secret_key: str, token: str, *, now: float | None = None) -> dict[str, Any]:
    """The claims of a well-signed, unexpired token; `Unauthenticated` otherwise."""
    body, _, sig = token[len(TOKEN_PREFIX) + 1 :].partition(".")
    expected = hmac.new(secret_key.encode(), f"{TOKEN_PREFIX}.{body}".encode(), hashlib.sha256)
    try:
        given = _unb64(sig)
        claims: dict[str, Any] = orjson.loads(_unb64(body)) if body else {}
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise Unauthenticated("invalid token") from exc
    if not hmac.compare_digest(given, expected.digest()) or not isinstance(claims, dict):
        raise Unauthenticated("invalid token")
    if float(claims.get("exp", 0)) <= (now if now is not None else time.time()):
        raise Unauthenticated("the token has expired")
    return claims


class Authenticator:
    """Checks keys and tokens, caching successes briefly (`cache_seconds`). `forget(key_id)`
    drops a revoked key (and its tokens) from the cache at once."""

    def __init__(self, engine: AsyncEngine, *, cache_seconds: float, secret_key: str) -> None:
        self._engine = engine
        self._ttl = cache_seconds
        self._secret_key = secret_key
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def authenticate(self, header: str | None) -> Principal:
        return await self.authenticate_credential(parse_bearer(header))

    async def authenticate_credential(self, credential: str) -> Principal:
        if storable.find_unstorable(credential) is not None:
            # No key or token holds such characters, and PostgreSQL could not look them up.
            raise Unauthenticated("invalid API key")
        now = time.monotonic()
        cached = self._cache.get(credential)
        if cached and cached[0] > now:
            return cached[1]
        if credential.startswith(f"{TOKEN_PREFIX}_"):
            principal = await self._check_token(credential)
        else:
            principal = await self._check(credential)
        ttl = self._ttl
        if principal.expires_at is not None:  # never cached past the credential's expiry
            ttl = min(ttl, principal.expires_at.timestamp() - time.time())
        if ttl > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[credential] = (now + ttl, principal)
        return principal

    def forget(self, key_id: uuid.UUID) -> None:
        for credential, (_, principal) in list(self._cache.items()):
            if principal.key_id == key_id:
                self._cache.pop(credential, None)

    async def _check(self, key: str) -> Principal:
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            raise Unauthenticated("invalid API key")
        _, lookup, secret = parts
        async with statements(self._engine) as conn:
            found = await keys_repo.find_active(conn, lookup=lookup)
            if found is None:
                # Same work as a real comparison, so timing does not tell which half was wrong.
                hmac.compare_digest(keyed_hash(self._secret_key, secret), bytes(32))
                raise Unauthenticated("invalid, revoked or expired API key")
            if found.hash_scheme == "sha256":
                if not hmac.compare_digest(found.secret_hash, _legacy_hash(secret)):
                    raise Unauthenticated("invalid, revoked or expired API key")
                await keys_repo.rehash(
                    conn, key_id=found.key.id, secret_hash=keyed_hash(self._secret_key, secret)
                )
            elif not hmac.compare_digest(found.secret_hash, keyed_hash(self._secret_key, secret)):
                raise Unauthenticated("invalid, revoked or expired API key")
        return found.key.principal()

    async def _check_token(self, token: str) -> Principal:
        """A well-signed token is not enough: its minting key must still exist, be active and
        belong to the token's tenant, and a job token's job must belong to that tenant. The
        signature makes a forged claim unlikely; the database says what is true now."""
        claims = verify_token(self._secret_key, token)
        try:
            key_id = uuid.UUID(str(claims["key"]))
            tenant_id = uuid.UUID(str(claims["tenant"]))
            scope = str(claims["scope"])
            job_id = uuid.UUID(scope[4:]) if scope.startswith("job:") else None
            expires = datetime.fromtimestamp(float(claims["exp"]), UTC)
        except (KeyError, ValueError, OverflowError) as exc:
            raise Unauthenticated("invalid token") from exc
        if scope != "tenant" and job_id is None:
            raise Unauthenticated("invalid token")
        async with transaction(self._engine) as conn:
            minter = await keys_repo.token_minter(conn, key_id=key_id, job_id=job_id)
            if minter is None or not minter.active:
                raise Unauthenticated("the key that minted this token was revoked or expired")
            if minter.tenant_id != tenant_id:
                log.warning(
                    "token names a tenant its key is not in",
                    extra={"key_id": str(key_id), "tenant_id": str(tenant_id)},
                )
                raise Unauthenticated("invalid token")
            if job_id is not None and not minter.job_in_tenant:
                raise Unauthenticated("the job of this token no longer exists")
            if minter.expires_at is not None:
                expires = min(expires, minter.expires_at)
            principal = Principal(
                id=key_id,
                name=minter.name,
                tenant_id=tenant_id,
                role=Role.VIEWER.value,
                token_scope=scope,
                expires_at=expires,
            )
            await audit.append(
                conn,
                [audit.entry(principal, "token.login", f"key:{key_id}", after={"scope": scope})],
            )
        return principal


async def principal_named(
    conn: AsyncConnection, *, key: str, tenant: str | None = None
) -> Principal:
    """The principal of the active API key named `key` (or whose id it is), read in the
    caller's transaction: how a producer in a service that shares the database acts as a
    key without holding its secret. Unauthenticated when no active key, or more than one,
    answers to that name."""
    try:
        key_id: uuid.UUID | None = uuid.UUID(key)
    except ValueError:
        key_id = None
    if key_id is not None:
        found = await keys_repo.get_active(conn, key_id=key_id)
        matches = [found] if found is not None else []
    else:
        matches = await keys_repo.find_active_by_name(conn, name=key, tenant_name=tenant)
    where = f" in tenant {tenant!r}" if tenant else ""
    if not matches:
        raise Unauthenticated(f"no active API key is named {key!r}{where}")
    if len(matches) > 1:
        raise Unauthenticated(
            f"{len(matches)} active API keys are named {key!r}{where}: name the tenant, "
            "give the keys distinct names, or use the key's id"
        )
    return matches[0].principal()
