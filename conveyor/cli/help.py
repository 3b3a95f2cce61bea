"""What `conveyor --help` and `--version` say, generated from the code: the settings' names,
defaults and `#:` comments (`conveyor/settings.py`), the installed distribution's version."""

from __future__ import annotations

import inspect
import re
import textwrap
from importlib import metadata

from pydantic import SecretStr

from conveyor.settings import Settings

#: The settings `conveyor --help` lists (every one: .env.example, README "Configuration").
MAIN = (
    "database_url",
    "redis_url",
    "redis_prefix",
    "job_modules",
    "env",
    "secret_key",
    "worker_queues",
    "worker_concurrency",
    "worker_processes",
    "lease_seconds",
    "allowed_origins",
    "log_level",
    "log_format",
    "metrics_port",
    "metrics_token",
)
_FIELD = re.compile(r"^\s+(\w+)\s*:")
_COMMENT = re.compile(r"^\s+#:\s?(.*)$")


def version() -> str:
    try:
        return metadata.version("conveyor")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(unknown: not installed)"


def comments() -> dict[str, str]:
    """Each setting's `#:` comment (the lines right above it), joined into one paragraph."""
    try:
        source = inspect.getsource(Settings)
    except (OSError, TypeError):  # no source shipped: names and defaults only
        return {}
    found: dict[str, str] = {}
    pending: list[str] = []
    for line in source.splitlines():
        if match := _COMMENT.match(line):
            pending.append(match.group(1))
        elif (match := _FIELD.match(line)) and pending:
            found[match.group(1)] = " ".join(pending)
            pending = []
        else:
            pending = []
    return found


def _default(name: str) -> str:
    value = Settings.model_fields[name].default
    if value is None or (isinstance(value, SecretStr) and not value.get_secret_value()):
        return "unset"
    return str(value) if value != "" else "empty"


def environment(width: int = 79) -> str:
    """The epilog of `conveyor --help`: the main environment variables."""
    described = comments()
    lines = ["configuration: environment variables (or a .env file in the working directory):"]
    for name in MAIN:
        text = f"{described.get(name, '')} [default: {_default(name)}]".strip()
        lines.append(f"  {name.upper()}")
        lines += textwrap.wrap(text, width, initial_indent=" " * 6, subsequent_indent=" " * 6)
    lines.append("every setting: .env.example; how they fit together: README, Configuration")
    return "\n".join(lines)
