"""API keys: creation and authentication.

A key reads `cvk_<lookup>_<secret>`. The lookup half finds the row; the secret half (32 random
bytes) is stored only as SHA-256, compared in constant time. A high-entropy random secret needs
no slow hash: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import keys as keys_repo
from app.db.engine import statements, transaction
from app.domain.errors import Unauthenticated
from app.domain.models import Principal

PREFIX = "cvk"


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def create_api_key(engine: AsyncEngine, *, name: str, admin: bool) -> tuple[Principal, str]:
    """Create a key; the returned plaintext is shown once and never stored."""
    lookup = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    async with transaction(engine) as conn:
        key_id = await keys_repo.insert(
            conn, name=name, lookup=lookup, secret_hash=_hash(secret), is_admin=admin
        )
    return Principal(id=key_id, name=name, is_admin=admin), f"{PREFIX}_{lookup}_{secret}"


def parse_bearer(header: str | None) -> str:
    if not header:
        raise Unauthenticated("missing Authorization header: send 'Authorization: Bearer <key>'")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must read 'Bearer <key>'")
    return token.strip()


class Authenticator:
    """Checks keys against PostgreSQL, caching successes briefly (`auth_cache_seconds`)."""

    def __init__(self, engine: AsyncEngine, *, cache_seconds: float) -> None:
        self._engine = engine
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def authenticate(self, header: str | None) -> Principal:
        key = parse_bearer(header)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached and cached[0] > now:
            return cached[1]
        principal = await self._check(key)
        if self._ttl > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + self._ttl, principal)
        return principal

    async def _check(self, key: str) -> Principal:
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            raise Unauthenticated("invalid API key")
        _, lookup, secret = parts
        async with statements(self._engine) as conn:
            row = await keys_repo.find_active(conn, lookup=lookup)
        if row is None or not hmac.compare_digest(row["secret_hash"], _hash(secret)):
            raise Unauthenticated("invalid, revoked or expired API key")
        return Principal(id=uuid.UUID(str(row["id"])), name=row["name"], is_admin=row["is_admin"])
