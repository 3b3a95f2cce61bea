"""Logging set-up: JSON lines (one object per record, `extra=` fields included) or plain text,
and the job context every line logged while an attempt runs carries."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
#: Fields some libraries add that repeat the message (uvicorn's copy with terminal colours).
_REPEATS = {"color_message"}


#: The job attempt the current task runs: set by the worker around each attempt, inherited by
#: the handler's task and any task it starts.
_JOB: ContextVar[dict[str, Any] | None] = ContextVar("conveyor_job", default=None)


@contextmanager
def job_context(job_id: uuid.UUID, attempt: int, kind: str) -> Iterator[None]:
    """Within this block (and tasks created in it), log records carry the job's id, attempt
    and kind."""
    token = _JOB.set({"job_id": str(job_id), "attempt": attempt, "kind": kind})
    try:
        yield
    finally:
        _JOB.reset(token)


class JobContextFilter(logging.Filter):
    """Adds `job_id`, `attempt` and `kind` to records logged inside `job_context`, handlers'
    own `logging` calls included. Fields passed with `extra=` are kept as given."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = _JOB.get()
        if job is not None:
            for key, value in job.items():
                record.__dict__.setdefault(key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(
            {k: v for k, v in record.__dict__.items() if k not in _STANDARD and k not in _REPEATS}
        )
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(out, default=str).decode()
        except TypeError:
            # orjson refuses lone surrogates, which a client's input can carry into a line;
            # the stdlib escapes them (`\ud800`) instead of losing the line.
            return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = {
            k: v for k, v in record.__dict__.items() if k not in _STANDARD and k not in _REPEATS
        }
        if extra:
            line += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        return line


def configure(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # On the handler, not a logger: logger filters do not see records propagated from children.
    handler.addFilter(JobContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("taskiq", "taskiq_redis", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
