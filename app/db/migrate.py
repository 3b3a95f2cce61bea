"""Alembic, driven from code so `conveyor migrate` needs no alembic.ini."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


async def upgrade(database_url: str, revision: str = "head") -> None:
    # Alembic's env.py runs its own event loop; keep it off ours.
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), revision)


async def downgrade(database_url: str, revision: str = "base") -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), revision)
