"""Settings refuse what would fail later (a URL no driver takes, a placeholder secret) and keep
accepting every spelling that works."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from conveyor.db import migrate
from conveyor.settings import DEV_SECRET_KEY, Settings


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u:p@db:5432/c", "postgresql+asyncpg://u:p@db:5432/c"),
        ("postgres://u@db/c", "postgresql+asyncpg://u@db/c"),
        ("postgresql+asyncpg://u@db/c", "postgresql+asyncpg://u@db/c"),
        ("postgresql:///c?host=/run/postgresql", "postgresql+asyncpg:///c?host=/run/postgresql"),
    ],
)
def test_postgresql_urls_in_libpq_or_sqlalchemy_spelling(given: str, used: str) -> None:
    assert Settings(database_url=given).database_url == used


@pytest.mark.parametrize(
    "url", ["", "foo", "mysql://db/c", "postgresql+psycopg://db/c", "postgresql://db:x/c"]
)
def test_other_database_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="not a PostgreSQL URL"):
        Settings(database_url=url)


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://:pw@cache:6380/1", "unix:///run/redis.sock"]
)
def test_redis_urls_redis_py_takes(url: str) -> None:
    assert Settings(redis_url=url).redis_url == url


@pytest.mark.parametrize("url", ["", "127.0.0.1:6379", "http://cache", "redis://cache:port/0"])
def test_other_redis_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="expected redis://"):
        Settings(redis_url=url)


def test_the_development_key_only_stands_in_with_env_dev() -> None:
    assert Settings(env="dev", secret_key="").dev_secret
    assert Settings(env="dev", secret_key="").secret_key.get_secret_value() == DEV_SECRET_KEY
    assert not Settings(env="dev", secret_key="x" * 40).dev_secret
    with pytest.raises(ValidationError) as raised:
        Settings(env="production", secret_key="")
    assert [e["loc"] for e in raised.value.errors()] == [("secret_key",)]


def test_log_level_is_a_level_name() -> None:
    assert Settings(log_level="debug").log_level == "debug"
    with pytest.raises(ValidationError, match="log_level"):
        Settings(log_level="loud")


def test_migration_timeouts_default_to_what_env_py_uses_without_settings() -> None:
    """pytest-alembic and `alembic` itself run env.py without Settings: same defaults."""
    settings = Settings(secret_key=DEV_SECRET_KEY)
    assert settings.migration_lock_timeout_seconds == migrate.LOCK_TIMEOUT_SECONDS
    assert settings.migration_statement_timeout_seconds == migrate.STATEMENT_TIMEOUT_SECONDS
    assert settings.migration_lock_retries == migrate.LOCK_RETRIES
