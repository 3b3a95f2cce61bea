"""Prometheus metrics. Each process has its own registry; the API serves it at /metrics, a
worker on METRICS_PORT (off by default)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

# Worker side.
ATTEMPT_SECONDS = Histogram(
    "conveyor_attempt_duration_seconds",
    "How long attempts ran, by kind and outcome.",
    ["kind", "outcome"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
    registry=REGISTRY,
)
RETRIES = Counter(
    "conveyor_retries_total",
    "Attempts that failed and were scheduled again.",
    ["kind"],
    registry=REGISTRY,
)
DEAD_LETTERED = Counter(
    "conveyor_dead_lettered_total",
    "Jobs that ended FAILED (the dead-letter set).",
    ["kind"],
    registry=REGISTRY,
)
RUNNING = Gauge("conveyor_worker_running_jobs", "Jobs this worker runs now.", registry=REGISTRY)
RECOVERED = Counter(
    "conveyor_recovered_attempts_total",
    "Attempts whose lease expired and were recovered.",
    registry=REGISTRY,
)

# API side (refreshed from PostgreSQL when /metrics is scraped).
JOBS = Gauge(
    "conveyor_jobs",
    "Jobs by status and kind (finished ones until pruned).",
    ["status", "kind"],
    registry=REGISTRY,
)
QUEUE_LAG = Gauge(
    "conveyor_queue_lag_seconds",
    "Age of the oldest waiting job, per queue.",
    ["queue"],
    registry=REGISTRY,
)
QUEUE_WAITING = Gauge(
    "conveyor_queue_waiting_jobs", "QUEUED jobs, per queue.", ["queue"], registry=REGISTRY
)
SHARED_FEEDS = Gauge(
    "conveyor_shared_feeds",
    "Distinct shared subscription feeds (each executed once per event).",
    registry=REGISTRY,
)
SUBSCRIPTIONS = Gauge(
    "conveyor_open_subscriptions",
    "Live subscriptions held by this API process.",
    registry=REGISTRY,
)
DIRECT_FRAMES = Counter(
    "conveyor_ws_direct_frames_total",
    "Shared-feed messages written straight to a subscriber's socket (the rest go through the "
    "subscriber's task: legacy graphql-ws, errors, a socket that is backed up or closing).",
    registry=REGISTRY,
)

# Schedules and flow control (ADR-0022).
SCHEDULER_LAG = Histogram(
    "conveyor_scheduler_lag_seconds",
    "From a schedule's fire time to its job being created.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
SCHEDULE_FIRE_ERRORS = Counter(
    "conveyor_schedule_fire_errors_total",
    "Fire times that made no job (the input no longer valid, a policy denial).",
    registry=REGISTRY,
)
SCHEDULE_SKIPPED = Counter(
    "conveyor_schedule_skipped_fires_total",
    "Missed fire times the misfire policy dropped.",
    registry=REGISTRY,
)
SCHEDULER_LEADER = Gauge(
    "conveyor_scheduler_lease_held",
    "1 while this process holds the scheduler lease.",
    registry=REGISTRY,
)
JOBS_WAITING = Gauge(
    "conveyor_jobs_waiting",
    "Jobs not running, by why (the codes of Job.waitingReason).",
    ["reason"],
    registry=REGISTRY,
)
