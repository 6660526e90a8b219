"""Accounts on SQLite and PostgreSQL: argon2id hashes in our own table, migration 0002, secret-free errors."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import pytest
import sqlalchemy as sa
from alembic import command
from argon2 import PasswordHasher

from smart_agent.errors import AccountError, HistoryError
from smart_agent.history.accounts import MAX_PASSWORD_CHARS, Accounts
from smart_agent.history.engine import create_engine
from smart_agent.history.migrate import VERSION_TABLE, alembic_config, upgrade
from smart_agent.history.schema import accounts as accounts_table
from smart_agent.history.schema import users
from tests.history_fixtures import BACKENDS, fresh_database

PASSWORD = "correct horse battery staple"


class CountingHasher(PasswordHasher):
    """A real argon2id hasher, cheap enough for tests, that counts its verifications."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**{"time_cost": 1, "memory_cost": 1024, "parallelism": 1, **params})
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified += 1
        return super().verify(hash, password)


async def database(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    if request.param == "sqlite":
        return tmp_path / "history.db"
    return await fresh_database(request.getfixturevalue("postgres"))


@pytest.fixture(params=BACKENDS)
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    return await database(request, tmp_path)


@pytest.fixture
async def store(target: str | Path) -> AsyncIterator[Accounts]:
    accounts = await Accounts.open(target, CountingHasher())
    try:
        yield accounts
    finally:
        await accounts.close()


async def stored_hash(accounts: Accounts, name: str) -> str:
    query = sa.select(accounts_table.c.password_hash).where(accounts_table.c.identifier == name)
    async with accounts.engine.connect() as connection:
        return str((await connection.execute(query)).scalar_one())


async def test_add_when_new_then_only_its_password_verifies(store: Accounts) -> None:
    await store.add("alice@example.com", PASSWORD)
    assert await store.verify("alice@example.com", PASSWORD)
    for wrong in ["", PASSWORD + " ", PASSWORD.upper(), PASSWORD[:-1], "x" * (MAX_PASSWORD_CHARS + 1)]:
        assert not await store.verify("alice@example.com", wrong)


async def test_add_when_stored_then_argon2id_hash_in_our_table_and_nothing_in_chainlit_users(
    store: Accounts,
) -> None:
    await store.add("alice", PASSWORD)
    stored = await stored_hash(store, "alice")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    async with store.engine.connect() as connection:
        assert (await connection.execute(sa.select(users))).all() == []


async def test_verify_when_unknown_name_then_false_and_the_kdf_still_runs(target: str | Path) -> None:
    hasher = CountingHasher()
    store = await Accounts.open(target, hasher)
    try:
        await store.add("alice", PASSWORD)
        assert not await store.verify("bob", PASSWORD)
        assert not await store.verify("bob", "another")
        assert hasher.verified == 2
        assert await store.verify("alice", PASSWORD)
        assert hasher.verified == 3
    finally:
        await store.close()


async def test_add_when_name_taken_then_error_and_the_first_password_kept(store: Accounts) -> None:
    await store.add("alice", PASSWORD)
    with pytest.raises(AccountError, match="'alice' exists already") as caught:
        await store.add("alice", "second password")
    assert "second password" not in str(caught.value)
    assert await store.verify("alice", PASSWORD)
    assert not await store.verify("alice", "second password")


async def test_names_when_several_then_sorted_with_their_creation_time(store: Accounts) -> None:
    assert await store.names() == []
    assert not await store.exists_any()
    await store.add("bob", PASSWORD)
    await store.add("alice", PASSWORD)
    listed = await store.names()
    assert [name for name, _ in listed] == ["alice", "bob"]
    assert all(created.endswith("Z") and created.startswith("20") for _, created in listed)
    assert await store.exists_any()


async def test_remove_when_present_then_gone_and_unknown_then_error(store: Accounts) -> None:
    await store.add("alice", PASSWORD)
    await store.remove("alice")
    assert await store.names() == []
    assert not await store.verify("alice", PASSWORD)
    assert not await store.exists_any()
    with pytest.raises(AccountError, match="no account 'alice'"):
        await store.remove("alice")


@pytest.mark.parametrize("name", ["", "x" * 65, "a b", "a/b", "é", "alice\n", "a;DROP TABLE users"])
async def test_add_when_name_not_allowed_then_error_naming_what_is(store: Accounts, name: str) -> None:
    with pytest.raises(AccountError, match=r"letters, digits and \. _ - @"):
        await store.add(name, PASSWORD)
    assert await store.names() == []


@pytest.mark.parametrize("password", ["", "p" * (MAX_PASSWORD_CHARS + 1), "bad \udcff"])
async def test_add_when_password_not_allowed_then_error_without_the_password(
    store: Accounts, password: str
) -> None:
    with pytest.raises(AccountError) as caught:
        await store.add("alice", password)
    assert password not in str(caught.value) or not password
    assert await store.names() == []


async def test_add_when_name_is_64_characters_and_password_1024_then_accepted(store: Accounts) -> None:
    name, password = "a" * 64, "p" * MAX_PASSWORD_CHARS
    await store.add(name, password)
    assert await store.verify(name, password)


async def test_verify_when_hash_parameters_changed_then_hash_upgraded_and_still_verifies(
    target: str | Path,
) -> None:
    old = await Accounts.open(target, CountingHasher())
    try:
        await old.add("alice", PASSWORD)
        before = await stored_hash(old, "alice")
    finally:
        await old.close()
    stronger = CountingHasher(time_cost=2, memory_cost=2048)
    new = await Accounts.open(target, stronger)
    try:
        assert stronger.check_needs_rehash(before)
        assert not await new.verify("alice", "wrong")
        assert await stored_hash(new, "alice") == before  # a wrong password upgrades nothing
        assert await new.verify("alice", PASSWORD)
        after = await stored_hash(new, "alice")
        assert after != before and not stronger.check_needs_rehash(after)
        assert await new.verify("alice", PASSWORD)
    finally:
        await new.close()


async def test_migration_0002_when_applied_over_0001_then_keeps_rows_and_second_run_is_a_no_op(
    target: str | Path,
) -> None:
    engine = create_engine(target)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda c: command.upgrade(alembic_config(c), "0001"))
            await connection.execute(
                sa.insert(users).values(id="u1", identifier="alice", metadata={}, createdAt="2026-01-01")
            )
        await upgrade(engine)
        await upgrade(engine)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: sa.inspect(c).get_table_names())
            versions = (await connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))).all()
            kept = (await connection.execute(sa.select(users.c.identifier))).scalars().all()
        assert "smart_agent_accounts" in tables
        assert versions == [("0003",)]  # upgraded to the newest migration (0003: attachments)
        assert kept == ["alice"]
        accounts = Accounts(engine, CountingHasher())
        await accounts.add("alice", PASSWORD)
        assert await accounts.verify("alice", PASSWORD)
    finally:
        await engine.dispose()


async def test_open_when_database_unreachable_then_history_error_without_its_password() -> None:
    with pytest.raises(HistoryError, match="cannot open the accounts") as caught:
        await Accounts.open("postgresql://someone:hush-hush@127.0.0.1:1/nothing")
    assert "hush-hush" not in str(caught.value)


@pytest.mark.parametrize("corrupt", ["$argon2id$not-a-hash", "garbage"])
async def test_verify_when_stored_hash_is_corrupt_then_false_and_the_log_holds_no_secret(
    store: Accounts, caplog: pytest.LogCaptureFixture, corrupt: str
) -> None:
    await store.add("alice", PASSWORD)
    async with store.engine.begin() as connection:
        await connection.execute(sa.update(accounts_table).values(password_hash=corrupt))
    assert not await store.verify("alice", PASSWORD)
    assert "password hash of account 'alice' is damaged" in caplog.text
    assert corrupt not in caplog.text and PASSWORD not in caplog.text
