"""The history schema: every field Chainlit writes has a column, migrations, URLs, the file's mode."""

import asyncio
import os
import socket
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import chainlit as cl
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from chainlit.context import init_ws_context
from chainlit.element import ElementDict
from chainlit.session import WebsocketSession
from chainlit.step import StepDict
from chainlit.user import PersistedUser

from smart_agent.errors import HistoryError
from smart_agent.history.actor import acting_user
from smart_agent.history.data_layer import HistoryDataLayer
from smart_agent.history.engine import create_engine
from smart_agent.history.migrate import VERSION_TABLE, upgrade
from smart_agent.history.rows import (
    ELEMENT_COLUMNS,
    ELEMENT_FIELDS_NOT_STORED,
    STEP_COLUMNS,
    STEP_FIELDS_NOT_STORED,
)
from smart_agent.history.schema import metadata
from smart_agent.history.urls import database_url
from tests import postgres_server as pg
from tests.history_fixtures import BACKENDS, make_user, open_store, step


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HistoryDataLayer]:
    async for layer in open_store(request, tmp_path):
        yield layer


# A Chainlit upgrade that adds a field must fail here until the field has a column (and a migration).


def test_every_step_dict_field_has_a_column() -> None:
    assert set(StepDict.__annotations__) - STEP_FIELDS_NOT_STORED <= STEP_COLUMNS


def test_every_element_dict_field_has_a_column() -> None:
    assert set(ElementDict.__annotations__) - ELEMENT_FIELDS_NOT_STORED <= ELEMENT_COLUMNS


async def test_every_field_chainlit_emits_for_steps_messages_and_elements_has_a_column() -> None:
    session = WebsocketSession(
        id=str(uuid.uuid4()),
        socket_id=str(uuid.uuid4()),
        emit=lambda *_: None,
        emit_call=lambda *_: None,
        user_env={},
        client_type="webapp",
        thread_id=str(uuid.uuid4()),
        user=PersistedUser(id="u", identifier="alice", createdAt=""),
    )
    init_ws_context(session)
    emitted: set[str] = set()
    emitted |= set(cl.Step(name="tool", type="tool", tags=["t"], icon="i").to_dict())
    emitted |= set(cl.Message(content="hi").to_dict())
    emitted |= set(cl.AskUserMessage(content="?").to_dict())
    assert emitted - STEP_FIELDS_NOT_STORED <= STEP_COLUMNS
    element_fields = set(cl.Text(content="x", name="n").to_dict()) | set(
        cl.Image(url="u", name="i").to_dict()
    )
    assert element_fields - ELEMENT_FIELDS_NOT_STORED <= ELEMENT_COLUMNS


# Migrations


async def test_migrations_when_applied_twice_then_second_is_a_no_op_and_schema_matches(
    store: HistoryDataLayer,
) -> None:
    async with store.engine.connect() as connection:
        before = await connection.run_sync(lambda c: sa.inspect(c).get_table_names())
    await upgrade(store.engine)
    async with store.engine.connect() as connection:
        after = await connection.run_sync(lambda c: sa.inspect(c).get_table_names())
        versions = (await connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))).all()
        drift = await connection.run_sync(
            lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"version_table": VERSION_TABLE}), metadata
            )
        )
    assert sorted(before) == sorted(after)
    assert {"users", "threads", "steps", "elements", "feedbacks"} <= set(after)
    assert versions == [("0003",)]
    assert drift == []


async def test_migrations_when_two_processes_start_together_then_both_succeed(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    engines = [create_engine(path), create_engine(path)]
    try:
        await asyncio.gather(*(upgrade(engine) for engine in engines))
    finally:
        for engine in engines:
            await engine.dispose()


# Where history lives


def test_sqlite_file_when_created_then_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "history.db"
    previous = os.umask(0o022)
    try:

        async def write_one() -> None:
            layer = await HistoryDataLayer.open(path)
            try:
                user = await make_user(layer, "alice")
                with acting_user("alice"):
                    await layer.update_thread("t", user_id=user.id)
                    await layer.create_step(step("t"))  # type: ignore[arg-type]
            finally:
                await layer.close()

        asyncio.run(write_one())
    finally:
        os.umask(previous)
    for name in ("history.db", "history.db-wal", "history.db-shm"):
        if (path.parent / name).exists():
            assert stat.S_IMODE((path.parent / name).stat().st_mode) == 0o600, name
    assert path.exists()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db.example:5433/chat", "postgresql+asyncpg://u:p@db.example:5433/chat"),
        ("postgres://u:p@db.example/chat", "postgresql+asyncpg://u:p@db.example/chat"),
        ("postgresql+psycopg2://u@h/chat", "postgresql+asyncpg://u@h/chat"),
        ("postgresql://u@h/chat?sslmode=require", "postgresql+asyncpg://u@h/chat?ssl=require"),
        ("sqlite:////srv/chat/history.db", "sqlite+aiosqlite:////srv/chat/history.db"),
        ("/srv/chat/history.db", "sqlite+aiosqlite:////srv/chat/history.db"),
    ],
)
def test_database_url_when_written_as_users_do_then_async_driver(given: str, expected: str) -> None:
    assert database_url(given).render_as_string(hide_password=False) == expected


def test_database_url_when_relative_path_then_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert database_url("history.db").database == str(tmp_path / "history.db")


@pytest.mark.parametrize("given", ["mysql://u@h/chat", "sqlite://", "sqlite:///:memory:"])
def test_database_url_when_unsupported_then_error_names_what_is_allowed(given: str) -> None:
    with pytest.raises(ValueError, match="postgresql://") as raised:
        database_url(given)
    assert "invalid history database" in str(raised.value)


async def test_open_when_server_unreachable_then_history_error_without_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(HistoryError, match="cannot open the chat history") as raised:
        await HistoryDataLayer.open(f"postgresql://u:hunter2@127.0.0.1:{port}/chat")
    assert "hunter2" not in str(raised.value)


def test_database_url_when_invalid_then_password_not_shown() -> None:
    with pytest.raises(ValueError) as raised:
        database_url("mysql://user:hunter2@h/chat")
    assert "hunter2" not in str(raised.value)


# Concurrent writes, as Chainlit fires them (one task per step write, session metadata on the side)


async def test_writes_when_racing_then_none_fails_and_no_metadata_is_lost(store: HistoryDataLayer) -> None:
    user = await make_user(store, "alice")
    with acting_user("alice"):
        writes: list[Any] = []
        for n in range(10):
            thread_id = f"t{n}"
            writes.append(store.update_thread(thread_id, name=f"chat {n}", user_id=user.id))
            writes += [store.create_step(step(thread_id)) for _ in range(4)]  # type: ignore[arg-type]
            writes += [store.update_thread(thread_id, metadata={f"k{k}": k}) for k in range(3)]
        await asyncio.gather(*writes)
        for n in range(10):
            thread = await store.get_thread(f"t{n}")
            assert thread is not None and len(thread["steps"]) == 4
            assert thread["metadata"] == {"k0": 0, "k1": 1, "k2": 2}
            assert thread["userIdentifier"] == "alice" and thread["name"] == f"chat {n}"


def test_postgres_fixture_when_binaries_missing_then_fails_not_skips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg, "PG_BIN", tmp_path / "no-postgresql")
    with pytest.raises(pytest.fail.Exception, match="postgresql"), pg.postgres_server():
        pass
