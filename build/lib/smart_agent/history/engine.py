"""The async engine for history: SQLite tuned for one writer at a time, PostgreSQL as configured."""

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from smart_agent.history.urls import create_private_file, database_url

WRITE_OPTION = "history_write"
"""Execution option marking a write transaction (SQLite takes its write lock at BEGIN for those)."""

SQLITE_BUSY_TIMEOUT_S = 30.0


def create_engine(url_or_path: str | Path | sa.URL) -> AsyncEngine:
    """An async engine for a history database; a SQLite file is created 0600 before it is opened."""
    url = url_or_path if isinstance(url_or_path, sa.URL) else database_url(url_or_path)
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    assert url.database is not None
    create_private_file(Path(url.database))
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    event.listen(engine.sync_engine, "connect", _sqlite_connect)
    event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine, marking its transactions as writes."""
    return engine.execution_options(**{WRITE_OPTION: True})


def insert(connection: AsyncConnection, table: sa.Table) -> Any:
    """INSERT with ON CONFLICT support, for the connection's dialect."""
    return (pg_insert if connection.dialect.name == "postgresql" else sqlite_insert)(table)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy's documented recipe for aiosqlite: let SQLAlchemy, not the driver, emit BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    # A deferred transaction that reads and then writes fails at once with "database is locked" when
    # another writer got there first (the busy timeout does not apply); BEGIN IMMEDIATE waits instead.
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
