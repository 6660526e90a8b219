"""History stores for the contract tests: a fresh SQLite file or a fresh PostgreSQL database each."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from chainlit.user import PersistedUser, User

from smart_agent.history.data_layer import HistoryDataLayer
from tests.postgres_server import PostgresServer

BACKENDS = ["sqlite", "postgresql"]


async def fresh_database(server: PostgresServer) -> str:
    """Create an empty database on the server and return its postgresql:// URL."""
    name = f"history_{uuid.uuid4().hex}"
    connection = await asyncpg.connect(server.url())
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return server.url(name)


async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HistoryDataLayer]:
    """Open the store named by the fixture's parameter; closed afterwards."""
    if request.param == "sqlite":
        target: str | Path = tmp_path / "history.db"
    else:
        target = await fresh_database(request.getfixturevalue("postgres"))
    layer = await HistoryDataLayer.open(target)
    try:
        yield layer
    finally:
        await layer.close()


async def make_user(layer: HistoryDataLayer, identifier: str) -> PersistedUser:
    """Store a user and return it with its id."""
    user = await layer.create_user(User(identifier=identifier, metadata={"role": "user"}))
    assert user is not None
    return user


def step(thread_id: str, step_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A StepDict with Chainlit's required fields and the given ones."""
    return {
        "id": step_id or str(uuid.uuid4()),
        "threadId": thread_id,
        "name": "Assistant",
        "type": "assistant_message",
        "streaming": False,
        "output": "",
        "metadata": {},
        **fields,
    }
