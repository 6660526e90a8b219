"""Bring a history database to the newest schema with the Alembic migrations shipped in this package."""

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from smart_agent.errors import HistoryError
from smart_agent.history.engine import create_engine, writer
from smart_agent.history.urls import database_url

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "smart_agent_history_version"
"""Alembic's bookkeeping table; not `alembic_version`, which another application may own."""

_PG_LOCK_KEY = 0x5A_4849_5354  # any constant: serialises concurrent upgrades of one PostgreSQL database


async def upgrade(engine: AsyncEngine) -> None:
    """Apply every migration not yet applied; a database already at the newest revision is left as is."""
    async with writer(engine).begin() as connection:
        await connection.run_sync(_upgrade)


async def open_migrated(url_or_path: str | Path, what: str) -> AsyncEngine:
    """An engine on the database, brought to the newest schema; HistoryError naming `what` (and
    the database, password hidden) when it cannot be opened. A URL that is not a database's raises
    ValueError (config.py checks URLs before they get here)."""
    url = database_url(url_or_path)
    try:
        engine = create_engine(url)
    except OSError as exc:
        where = url.render_as_string(hide_password=True)
        raise HistoryError(f"cannot open {what} at {where}: {exc.strerror or exc}") from exc
    try:
        await upgrade(engine)
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        await engine.dispose()
        where = engine.url.render_as_string(hide_password=True)
        raise HistoryError(f"cannot open {what} at {where}: {describe_cause(exc)}") from exc
    except BaseException:
        await engine.dispose()
        raise
    return engine


def describe_cause(exc: BaseException) -> str:
    """A database error in one line, without the statement's parameters (they may hold a hash)."""
    if isinstance(exc, sa.exc.DBAPIError):
        return str(exc.orig).splitlines()[0] if str(exc.orig) else type(exc.orig).__name__
    if isinstance(exc, sa.exc.SQLAlchemyError):
        return type(exc).__name__
    return str(exc) or type(exc).__name__


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
