"""Lint every migration as the SQL it runs: `python migrations/lint.py` (in `make check`).

Each revision is rendered offline (`alembic upgrade PARENT:REV --sql`, through env.py, so with
its `SET lock_timeout` / `SET statement_timeout`) and checked by squawk, the PostgreSQL
migration linter (squawk-cli, pinned in the dev dependencies). What squawk finds fails the
check unless migrations/squawk.toml switches the rule off with a reason: for every revision
(`[rules_off]`), or for one revision already applied in users' databases (`[[historical]]`).
A historical suppression that matches nothing fails too, so the file never grows stale.
See ADR-0016.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.script import ScriptDirectory

from conveyor.db import migrate

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "squawk.toml"
SQUAWK = Path(sys.executable).parent / "squawk"


class ConfigError(Exception):
    """migrations/squawk.toml is malformed: the message says where."""


@dataclass(frozen=True)
class Suppression:
    revision: str
    rule: str
    reason: str


@dataclass(frozen=True)
class Finding:
    revision: str
    source: str  #: the migration script, relative to the repository
    line: int  #: in the rendered SQL
    rule: str
    message: str
    statement: str


@dataclass(frozen=True)
class Config:
    pg_version: str
    rules_off: dict[str, str]
    historical: tuple[Suppression, ...]


def load_config(path: Path, known: set[str]) -> Config:
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    pg_version = raw.get("pg_version")
    if not isinstance(pg_version, str) or not pg_version:
        raise ConfigError(f'{path}: pg_version = "15" (the oldest PostgreSQL Conveyor supports)')
    rules_off = raw.get("rules_off", {})
    if not isinstance(rules_off, dict):
        raise ConfigError(f"{path}: [rules_off] maps a rule to the reason it is off")
    for rule, reason in rules_off.items():
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(f"{path}: rules_off.{rule} needs a reason")
    historical: list[Suppression] = []
    for n, entry in enumerate(raw.get("historical", []), 1):
        where = f"{path}: [[historical]] #{n}"
        revision, rules, reason = entry.get("revision"), entry.get("rules"), entry.get("reason")
        if revision not in known:
            raise ConfigError(f"{where}: revision {revision!r} is not a migration")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(f"{where}: needs a reason")
        if not isinstance(rules, list) or not rules or not all(isinstance(r, str) for r in rules):
            raise ConfigError(f"{where}: rules = [...] names the squawk rules it suppresses")
        historical.extend(Suppression(revision, rule, reason) for rule in rules)
    return Config(pg_version, dict(rules_off), tuple(historical))


def render(scripts: ScriptDirectory, revision: str) -> str:
    """The SQL `conveyor migrate` runs for one revision (offline mode: no database)."""
    config = migrate.alembic_config("postgresql+asyncpg://lint@localhost/lint")
    config.set_main_option("script_location", scripts.dir)
    config.output_buffer = io.StringIO()
    parent = scripts.get_revision(revision).down_revision
    command.upgrade(config, f"{parent or 'base'}:{revision}", sql=True)
    return config.output_buffer.getvalue()


def squawk(files: list[Path], config: Config, workdir: Path) -> list[dict[str, Any]]:
    empty = workdir / "squawk.toml"  # so no .squawk.toml found around the cwd applies
    empty.write_text("")
    args = [str(SQUAWK), "--config", str(empty), "--reporter", "json"]
    args += ["--pg-version", config.pg_version]
    args += [f"--exclude={rule}" for rule in sorted(config.rules_off)]
    out = subprocess.run([*args, *map(str, files)], capture_output=True, text=True, check=False)
    if out.returncode not in (0, 1) or not out.stdout.strip().startswith("["):
        raise RuntimeError(f"squawk failed (exit {out.returncode}): {out.stderr or out.stdout}")
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def lint(
    config_path: Path = CONFIG, migrations: Path = migrate.MIGRATIONS
) -> tuple[list[Finding], list[Suppression], int]:
    """Unsuppressed findings, suppressions that matched nothing, and how many were suppressed."""
    scripts = ScriptDirectory(str(migrations))
    revisions = list(reversed(list(scripts.walk_revisions())))
    config = load_config(config_path, {s.revision for s in revisions})
    sources = {s.revision: Path(s.path) for s in revisions}
    with tempfile.TemporaryDirectory(prefix="conveyor-squawk-") as tmp:
        workdir = Path(tmp)
        files = []
        for script in revisions:
            target = workdir / f"{script.revision}.sql"
            target.write_text(render(scripts, script.revision))
            files.append(target)
        rendered = {f.stem: f.read_text().splitlines() for f in files}
        raw = squawk(files, config, workdir)
    root = migrations.parent
    findings, used, suppressed = [], set(), 0
    for item in raw:
        revision = Path(item["file"]).stem
        match = next(
            (
                s
                for s in config.historical
                if s.revision == revision and s.rule == item["rule_name"]
            ),
            None,
        )
        if match is not None:
            used.add(match)
            suppressed += 1
            continue
        source = sources[revision]
        shown = source.relative_to(root) if source.is_relative_to(root) else source
        findings.append(
            Finding(
                revision=revision,
                source=str(shown),
                line=item["line"],
                rule=item["rule_name"],
                message=item["message"],
                statement=rendered[revision][item["line"] - 1].strip(),
            )
        )
    stale = [s for s in config.historical if s not in used]
    return findings, stale, suppressed


def main() -> int:
    try:
        findings, stale, suppressed = lint()
    except ConfigError as exc:
        sys.stderr.write(f"migration lint: {exc}\n")
        return 2
    for f in findings:
        sys.stderr.write(
            f"{f.source} (revision {f.revision}, rendered SQL line {f.line}): "
            f"{f.rule}: {f.message}\n    {f.statement}\n"
        )
    for s in stale:
        sys.stderr.write(
            f"migrations/squawk.toml: revision {s.revision} no longer trips {s.rule}: "
            "remove that suppression\n"
        )
    if findings or stale:
        sys.stderr.write(
            "migration lint failed: follow ADR-0016 (docs/adr), or switch a rule off with a "
            "reason in migrations/squawk.toml\n"
        )
        return 1
    sys.stdout.write(f"migrations lint clean (squawk; {suppressed} historical findings kept)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
