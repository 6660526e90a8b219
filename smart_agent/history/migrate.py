"""Bring a history database to the newest schema with the Alembic migrations shipped in this package."""

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from smart_agent.history.engine import writer

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "smart_agent_history_version"
"""Alembic's bookkeeping table; not `alembic_version`, which another application may own."""

_PG_LOCK_KEY = 0x5A_4849_5354  # any constant: serialises concurrent upgrades of one PostgreSQL database


async def upgrade(engine: AsyncEngine) -> None:
    """Apply every migration not yet applied; a database already at the newest revision is left as is."""
    async with writer(engine).begin() as connection:
        await connection.run_sync(_upgrade)


def alembic_config(connection: sa.Connection) -> Config:
    """An Alembic config for our migrations that runs them on `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = VERSION_TABLE
    return config


def _upgrade(connection: sa.Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    command.upgrade(alembic_config(connection), "head")
