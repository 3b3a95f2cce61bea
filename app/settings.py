"""Typed settings: the only module that reads environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Conveyor's configuration. Every field maps to an environment variable (see .env.example)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    #: PostgreSQL URL (SQLAlchemy form); the database is created by `migrate`/`dev` when missing.
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/conveyor"
    #: Redis URL; Redis only delivers and broadcasts, PostgreSQL holds the state.
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Prefix of every Redis key and channel, so several deployments can share one Redis.
    redis_prefix: str = Field(default="conveyor", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")

    #: Queues a worker serves when `--queues` is not given (comma separated).
    worker_queues: str = "default,cpu"
    worker_concurrency: int = Field(default=16, ge=1, le=10_000)
    #: Processes for CPU-bound handlers (`ctx.run_in_process`); 0 = number of CPUs.
    worker_processes: int = Field(default=0, ge=0, le=256)
    #: A running attempt's lease; a worker renews it every third of it.
    lease_seconds: float = Field(default=15.0, ge=1.0, le=3600.0)
    #: Seconds a SIGTERMed worker lets running jobs finish before releasing them.
    shutdown_grace_seconds: float = Field(default=30.0, ge=0.0, le=3600.0)
    #: Progress writes per job are coalesced to at most one per this many seconds.
    progress_interval_seconds: float = Field(default=0.1, ge=0.0, le=60.0)
    #: How often the maintenance loop promotes due jobs, recovers leases and re-dispatches.
    maintenance_interval_seconds: float = Field(default=0.5, ge=0.05, le=60.0)
    #: A QUEUED job whose message was not confirmed sent after this long is sent again.
    redispatch_after_seconds: float = Field(default=5.0, ge=0.5, le=3600.0)
    #: Pending stream entries idle this long belong to a dead consumer and are re-claimed.
    reclaim_idle_seconds: float = Field(default=30.0, ge=1.0, le=86_400.0)
    #: Finished jobs older than this are pruned with their attempts and events (0 = never).
    retention_days: float = Field(default=30.0, ge=0.0)
    #: How often a worker prunes (one batch of 1,000 per run).
    prune_interval_seconds: float = Field(default=60.0, ge=0.1)

    #: Defaults for retries when a job kind does not set its own.
    retry_backoff_base_seconds: float = Field(default=1.0, ge=0.0)
    retry_backoff_cap_seconds: float = Field(default=300.0, ge=0.0)

    #: Largest accepted request body, in bytes.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    #: Browser origins allowed for CORS and WebSocket upgrades (comma separated).
    allowed_origins: str = ""
    #: Live subscriptions one WebSocket connection may hold, and one API process in all.
    max_subscriptions_per_connection: int = Field(default=100, ge=1, le=10_000)
    max_subscriptions_per_process: int = Field(default=20_000, ge=1, le=1_000_000)
    #: Per-subscriber buffer of pending live changes; a subscriber that falls this far behind
    #: is resynchronised from PostgreSQL (jobEvents) or disconnected (jobUpdates).
    subscriber_buffer: int = Field(default=1000, ge=10, le=100_000)
    #: WebSocket keepalive: a client that does not answer a ping within the timeout (for
    #: instance because it stopped reading) is disconnected.
    ws_ping_interval_seconds: float = Field(default=20.0, gt=0)
    ws_ping_timeout_seconds: float = Field(default=20.0, gt=0)
    #: Seconds an authenticated API key is cached in-process before it is checked again.
    auth_cache_seconds: float = Field(default=2.0, ge=0.0, le=300.0)

    #: Worker: serve Prometheus metrics on this port (0 = off) and address.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"

    log_level: str = "INFO"
    #: `json` for one JSON object per line (production), `text` for humans.
    log_format: str = Field(default="text", pattern="^(json|text)$")

    @field_validator("database_url")
    @classmethod
    def _asyncpg_driver(cls, value: str) -> str:
        # Accept the common libpq spelling and use the async driver underneath.
        for plain in ("postgresql://", "postgres://"):
            if value.startswith(plain):
                return "postgresql+asyncpg://" + value[len(plain) :]
        return value

    @property
    def queues(self) -> list[str]:
        return [q.strip() for q in self.worker_queues.split(",") if q.strip()]

    @property
    def origins(self) -> list[str]:
        return [o.strip() for o in self.allowed_origins.split(",") if o.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
