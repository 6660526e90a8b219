"""Login accounts in the history database: a name and its argon2id hash, in a table of our own."""

import asyncio
import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.ext.asyncio import AsyncEngine

from smart_agent.errors import AccountError, HistoryError
from smart_agent.history.engine import insert, writer
from smart_agent.history.migrate import describe_cause, open_migrated
from smart_agent.history.rows import now
from smart_agent.history.schema import accounts

logger = logging.getLogger(__name__)

MAX_NAME_CHARS = 64
MAX_PASSWORD_CHARS = 1024
_NAME = re.compile(rf"[A-Za-z0-9._@-]{{1,{MAX_NAME_CHARS}}}")


def check_name(name: str) -> str:
    """`name` if it is an allowed account name; AccountError naming what is allowed otherwise."""
    if not _NAME.fullmatch(name):
        raise AccountError(
            f"invalid account name {name[:80]!r}: use 1 to {MAX_NAME_CHARS} characters among "
            "letters, digits and . _ - @"
        )
    return name


def check_password(password: str) -> str:
    """`password` if it is allowed (never quoted in the error)."""
    if not password:
        raise AccountError("the password must not be empty")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(f"the password is too long: at most {MAX_PASSWORD_CHARS:,} characters")
    try:
        password.encode()
    except UnicodeEncodeError:
        raise AccountError("the password is not valid text (UTF-8)") from None
    return password


class Accounts:
    """Add, list, remove and verify accounts; hashing runs in a thread, off the event loop."""

    def __init__(self, engine: AsyncEngine, hasher: PasswordHasher | None = None) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._hasher = hasher or PasswordHasher()  # argon2id with RFC 9106's low-memory profile
        self._dummy_hash: str | None = None

    @classmethod
    async def open(cls, url_or_path: str | Path, hasher: PasswordHasher | None = None) -> "Accounts":
        """Open (or create) the history database and apply the migrations; HistoryError if it fails.

        A URL that is not a database's raises ValueError (config.py checks URLs before they get here).
        """
        return cls(await open_migrated(url_or_path, "the accounts"), hasher)

    @property
    def engine(self) -> AsyncEngine:
        """The engine the accounts are read and written through."""
        return self._engine

    async def close(self) -> None:
        """Close every pooled connection."""
        await self._engine.dispose()

    async def add(self, name: str, password: str) -> None:
        """Store a new account; AccountError if the name is taken or either value is not allowed."""
        check_name(name)
        password_hash = await asyncio.to_thread(self._hasher.hash, check_password(password))
        async with self._surfaced("add an account"), self._writer.begin() as connection:
            statement = insert(connection, accounts).values(
                identifier=name, password_hash=password_hash, createdAt=now()
            )
            result = await connection.execute(statement.on_conflict_do_nothing())
        if result.rowcount == 0:
            raise AccountError(f"the account {name!r} exists already")

    async def names(self) -> list[tuple[str, str]]:
        """Every account's name and creation time (ISO 8601), by name."""
        query = sa.select(accounts.c.identifier, accounts.c.createdAt).order_by(accounts.c.identifier)
        async with self._surfaced("list the accounts"), self._engine.connect() as connection:
            return [(row.identifier, row.createdAt) for row in await connection.execute(query)]

    async def remove(self, name: str) -> None:
        """Delete an account; AccountError if there is none by this name."""
        check_name(name)
        async with self._surfaced("remove an account"), self._writer.begin() as connection:
            result = await connection.execute(sa.delete(accounts).where(accounts.c.identifier == name))
        if result.rowcount == 0:
            raise AccountError(f"there is no account {name!r}")

    async def exists_any(self) -> bool:
        """True once at least one account exists (then login is required)."""
        async with self._surfaced("read the accounts"), self._engine.connect() as connection:
            return (await connection.execute(sa.select(accounts.c.identifier).limit(1))).first() is not None

    async def verify(self, name: str, password: str) -> bool:
        """True if the password is the account's; an unknown name costs the same hashing as a known one."""
        if not _NAME.fullmatch(name) or not password or len(password) > MAX_PASSWORD_CHARS:
            return False
        # Made before the lookup, so the first sign-in costs the same whether the name exists or not.
        dummy = await self._dummy()
        query = sa.select(accounts.c.password_hash).where(accounts.c.identifier == name)
        async with self._surfaced("read an account"), self._engine.connect() as connection:
            stored = (await connection.execute(query)).scalar_one_or_none()
        if stored is None:
            await asyncio.to_thread(self._matches, dummy, password)
            return False
        if not await asyncio.to_thread(self._matches, stored, password, name):
            return False
        if self._hasher.check_needs_rehash(stored):
            await self._rehash(name, stored, password)
        return True

    def _matches(self, password_hash: str, password: str, name: str | None = None) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError):
            logger.warning(
                "the stored password hash of account %r is damaged, so it cannot sign in: "
                "remove the account and add it again",
                name,
            )
            return False

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(self._hasher.hash, secrets.token_urlsafe(16))
        return self._dummy_hash

    async def _rehash(self, name: str, stored: str, password: str) -> None:
        fresh = await asyncio.to_thread(self._hasher.hash, password)
        # Only over the hash just verified: a password changed meanwhile is not overwritten.
        statement = (
            sa.update(accounts)
            .where(accounts.c.identifier == name, accounts.c.password_hash == stored)
            .values(password_hash=fresh)
        )
        async with self._surfaced("update a password hash"), self._writer.begin() as connection:
            await connection.execute(statement)

    @asynccontextmanager
    async def _surfaced(self, action: str) -> AsyncIterator[None]:
        """Turn a database failure into a HistoryError naming the action, without SQL or parameters."""
        try:
            yield
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            where = _where(self._engine)
            raise HistoryError(
                f"cannot {action} in the history database at {where}: {describe_cause(exc)}"
            ) from exc


def _where(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=True)
