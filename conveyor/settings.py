"""Typed settings: the only module that reads environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.connection import parse_url
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

#: Used when SECRET_KEY is unset, and only accepted with ENV=dev.
MAX_API_WORKERS = 64
DEV_SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"
_PLACEHOLDERS = ("changeme", "change-me", "change_me", "secret", "placeholder", "xxx", "todo")


class Settings(BaseSettings):
    """Conveyor's configuration. Every field maps to an environment variable (see .env.example)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    #: `dev` allows the built-in SECRET_KEY (with a warning) and turns introspection and the
    #: explorer on by default; anything else (`production`) refuses placeholder secrets.
    env: Literal["dev", "test", "production"] = "dev"
    #: Keys API key hashes (HMAC-SHA256) and signs browser tokens. At least 32 characters.
    secret_key: SecretStr = Field(default=SecretStr(""), validate_default=True)

    #: PostgreSQL URL (SQLAlchemy form); the database is created by `migrate`/`dev` when missing.
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/conveyor"
    #: PostgreSQL connections an API process keeps open (and as many more for bursts, closed
    #: when returned). Above the requests a process runs at once, so none is opened per
    #: request under a steady load (a connect costs more than the submit it serves).
    database_pool_size: int = Field(default=20, ge=1, le=1000)
    #: Redis URL; Redis only delivers and broadcasts, PostgreSQL holds the state.
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Prefix of every Redis key and channel, so several deployments can share one Redis.
    redis_prefix: str = Field(default="conveyor", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")

    #: The job modules whose kinds this process accepts (API) or runs (worker): comma-separated
    #: module paths, e.g. `acme.jobs,acme.reports`. Unset: the shipped demo kinds with ENV=dev,
    #: none otherwise. `--jobs` overrides it (ADR-0019).
    job_modules: str | None = None

    #: Queues a worker serves when `--queues` is not given (comma separated).
    worker_queues: str = "default,cpu"
    #: Jobs one worker runs at once when `--concurrency` is not given.
    worker_concurrency: int = Field(default=16, ge=1, le=10_000)
    #: API processes `conveyor serve` runs on one port (`--workers`); see README, sizing.
    api_workers: int = Field(default=1, ge=1, le=MAX_API_WORKERS)
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
    #: How often a worker prunes. A pass deletes batch after batch (each its own short
    #: transaction) for up to 5 s; while a backlog remains, the next pass follows at once.
    prune_interval_seconds: float = Field(default=60.0, ge=0.1)
    #: Jobs deleted per pruning transaction (with their attempts and events).
    prune_batch_size: int = Field(default=1000, ge=1, le=100_000)

    #: Run the scheduler in this process (API and workers alike; one holds the lease).
    scheduler_enabled: bool = True
    #: How often the scheduler fires due schedules (and others try to take its lease).
    scheduler_interval_seconds: float = Field(default=0.5, ge=0.05, le=60.0)
    #: The scheduler lease: a dead holder is replaced within this long.
    scheduler_lease_seconds: float = Field(default=5.0, ge=1.0, le=600.0)
    #: How often a worker wakes parked jobs the wake-ups missed (limits, throttles, pauses).
    parked_sweep_interval_seconds: float = Field(default=1.0, ge=0.1, le=60.0)

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
    #: uvicorn's WebSocket implementation. `websockets` (the legacy one) is the default:
    #: `websockets-sansio` keeps no task per connection (~7 KiB less each) but gives up on a
    #: stalled client with a close that waits for its buffer to drain (ADR-0015).
    ws_implementation: Literal["websockets", "websockets-sansio", "wsproto"] = "websockets"
    #: permessage-deflate on WebSockets. Off: browsers always offer it, and each compressed
    #: connection keeps its own zlib state (about 40 KB measured, twice the connection's own
    #: cost) and compresses every message again, for updates of a few hundred bytes.
    ws_per_message_deflate: bool = False
    #: Seconds an authenticated API key is cached in-process before it is checked again.
    auth_cache_seconds: float = Field(default=2.0, ge=0.0, le=300.0)
    #: Open WebSockets re-check their key this often (a revocation also closes them at once).
    revocation_check_seconds: float = Field(default=5.0, ge=0.1, le=300.0)
    #: Longest lifetime of a browser token (`createToken(minutes:)`).
    token_max_minutes: int = Field(default=24 * 60, ge=1, le=30 * 24 * 60)

    #: GraphQL hardening. Introspection and the /graphiql explorer: None = on only in dev.
    graphql_introspection: bool | None = None
    graphql_explorer: bool | None = None
    graphql_max_depth: int = Field(default=12, ge=2, le=100)
    graphql_max_aliases: int = Field(default=30, ge=1, le=10_000)
    graphql_max_tokens: int = Field(default=2_000, ge=100, le=1_000_000)
    #: Largest cost of an operation: the fields its response may hold, lists multiplied by
    #: their page size (`conveyor/api/cost.py`). The dashboard's largest query costs ~8,500.
    graphql_max_cost: int = Field(default=50_000, ge=100, le=100_000_000)
    #: Seconds one HTTP GraphQL request may execute before it is answered 504.
    graphql_timeout_seconds: float = Field(default=15.0, ge=0.1, le=600.0)
    #: A WebSocket must send `connection_init` within this many seconds (else closed 4408).
    ws_init_timeout_seconds: float = Field(default=3.0, ge=0.1, le=60.0)
    #: Operations one HTTP request may batch (a JSON array; Apollo's BatchHttpLink sends up
    #: to 10). Each is parsed, validated, costed and admitted on its own; they run one after
    #: another within one GRAPHQL_TIMEOUT_SECONDS.
    graphql_max_batch: int = Field(default=10, ge=1, le=100)
    #: Automatic persisted queries (Apollo's protocol): documents registered by their sha256,
    #: kept in Redis for every API process, at most this many (least recently used go first;
    #: 0 turns APQ off: hash-only requests get PERSISTED_QUERY_NOT_SUPPORTED).
    graphql_apq_cache_size: int = Field(default=5_000, ge=0, le=1_000_000)
    #: Production hardening: run only the operations of the dashboard's manifest and of
    #: GRAPHQL_TRUSTED_MANIFESTS (comma-separated paths of JSON manifests made at build time).
    graphql_trusted_documents: bool = False
    graphql_trusted_manifests: str = ""

    #: Worker: serve Prometheus metrics on this port (0 = off) and address.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    #: The API's /metrics wants `Authorization: Bearer <METRICS_TOKEN>` when this is set; when
    #: unset it is open with ENV=dev and answers 404 otherwise.
    metrics_token: SecretStr | None = None
    #: Scrapes within this many seconds of the last one serve the same job counts (each
    #: refresh counts every job in PostgreSQL).
    metrics_cache_seconds: float = Field(default=5.0, ge=0.0, le=3600.0)

    #: `conveyor migrate` (ADR-0016): a migration statement waits at most this long for a lock
    #: (queries queue behind a waiting ALTER, so short), then the revision rolls back and is
    #: tried again, MIGRATION_LOCK_RETRIES times; and no statement runs longer than the
    #: statement timeout (a revision may raise it for itself, e.g. CREATE INDEX CONCURRENTLY).
    migration_lock_timeout_seconds: float = Field(default=2.0, gt=0.0, le=600.0)
    migration_lock_retries: int = Field(default=5, ge=0, le=100)
    migration_statement_timeout_seconds: float = Field(default=60.0, gt=0.0, le=86_400.0)

    #: OpenTelemetry traces (ADR-0024), off unless these standard variables ask for them:
    #: OTEL_TRACES_EXPORTER `otlp` (http/protobuf) or `console`, or an OTLP endpoint alone.
    #: The SDK reads the other OTEL_* variables itself (headers, OTEL_SERVICE_NAME, sampler).
    otel_sdk_disabled: bool = False
    otel_traces_exporter: str = ""
    otel_exporter_otlp_endpoint: str = ""
    otel_exporter_otlp_traces_endpoint: str = ""

    #: debug, info, warning, error or critical.
    log_level: str = Field(default="INFO", pattern=r"(?i)^(debug|info|warning|error|critical)$")
    #: `json` for one JSON object per line (production), `text` for humans.
    log_format: str = Field(default="text", pattern="^(json|text)$")

    @field_validator("database_url")
    @classmethod
    def _asyncpg_driver(cls, value: str) -> str:
        # Accept the common libpq spelling and use the async driver underneath.
        for plain in ("postgresql://", "postgres://"):
            if value.startswith(plain):
                value = "postgresql+asyncpg://" + value[len(plain) :]
        try:
            driver = make_url(value).drivername
        except (ArgumentError, ValueError):
            driver = None
        if driver != "postgresql+asyncpg":
            raise ValueError(
                "not a PostgreSQL URL; expected postgresql://user:password@host:5432/database "
                "(or postgresql+asyncpg://...)"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        try:
            parse_url(value)  # type: ignore[no-untyped-call]  # what `Redis.from_url` accepts
        except ValueError as exc:
            known = value.startswith(("redis://", "rediss://", "unix://"))
            raise ValueError(
                f"{exc if known else 'not a Redis URL'}; expected redis://host:6379/0, "
                "rediss://... (TLS) or unix:///path/to/redis.sock"
            ) from None
        return value

    @field_validator("job_modules")
    @classmethod
    def _module_paths(cls, value: str | None) -> str | None:
        from conveyor.kinds.loading import parse

        if value is not None:
            parse(value)  # a JobKindError (a ValueError) names the bad entry
        return value

    @field_validator("graphql_trusted_manifests")
    @classmethod
    def _manifests_exist(cls, value: str) -> str:
        missing = [p for p in _paths(value) if not Path(p).is_file()]
        if missing:
            raise ValueError(f"no such file: {', '.join(missing)}")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _empty_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @field_validator("secret_key")
    @classmethod
    def _real_secret(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        env = info.data.get("env")
        secret = value.get_secret_value()
        if env is None:  # ENV itself is invalid, and reported
            return value
        if env == "dev":
            return value if secret else SecretStr(DEV_SECRET_KEY)
        lowered = secret.lower()
        if len(secret) < 32 or secret == DEV_SECRET_KEY or any(p in lowered for p in _PLACEHOLDERS):
            raise ValueError(
                f"must be a random value of at least 32 characters when ENV={env} "
                '(e.g. `python -c "import secrets; print(secrets.token_urlsafe(48))"`)'
            )
        return value

    @property
    def dev_secret(self) -> bool:
        """True when the built-in development key is the SECRET_KEY (ENV=dev without one):
        the commands that use it warn (`conveyor.cli`)."""
        return self.secret_key.get_secret_value() == DEV_SECRET_KEY

    @property
    def introspection(self) -> bool:
        on = self.graphql_introspection
        return self.env == "dev" if on is None else on

    @property
    def explorer(self) -> bool:
        on = self.graphql_explorer
        return self.env == "dev" if on is None else on

    @property
    def jobs(self) -> list[str]:
        """The job modules to load: JOB_MODULES, or the demo kinds' with ENV=dev."""
        from conveyor.kinds.loading import DEMO_MODULES, parse

        if self.job_modules is None:
            return list(DEMO_MODULES) if self.env == "dev" else []
        return parse(self.job_modules)

    @property
    def worker_live_seconds(self) -> float:
        """A worker counts as live while its last heartbeat (every third of LEASE_SECONDS) is
        younger than this: listed by `workers`, and sent the jobs of its kinds."""
        return max(60.0, self.lease_seconds * 4)

    @property
    def queues(self) -> list[str]:
        return [q.strip() for q in self.worker_queues.split(",") if q.strip()]

    @property
    def trusted_manifests(self) -> list[Path]:
        return [Path(p) for p in _paths(self.graphql_trusted_manifests)]

    @property
    def origins(self) -> list[str]:
        return [o.strip() for o in self.allowed_origins.split(",") if o.strip()]


def _paths(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
