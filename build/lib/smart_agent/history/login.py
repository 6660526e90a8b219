"""Who a login token may still sign in: the local user until an account exists, accounts, OAuth users."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

LOCAL_USER = "local"
"""The identifier of the one user signed in automatically on a loopback host while there is no account."""

LOCAL_PROVIDER = "local"
PASSWORD_PROVIDER = "password"

ACCOUNTS_TTL_S = 1.0
"""How long the account names read from the database are trusted: `users add` takes effect within it."""


def oauth_identifier(provider: str, name: str) -> str:
    """An OAuth user's identifier, `provider:name`: no account name has a colon, so none can equal it."""
    return f"{provider}:{name}"


def honoured(identifier: str, provider: object, accounts: frozenset[str], oauth: Iterable[str]) -> bool:
    """Whether a token naming this user (signed in through `provider`) still signs them in."""
    if provider == LOCAL_PROVIDER:
        # Once an account exists login is required: a cookie the local user got before stops working.
        return identifier == LOCAL_USER and not accounts
    if provider == PASSWORD_PROVIDER:
        return identifier in accounts  # a removed account is signed out at once
    return isinstance(provider, str) and provider in oauth and identifier.startswith(f"{provider}:")


class AccountNames:
    """The names of the accounts, read again at most every `ttl` seconds; concurrent callers share a read."""

    def __init__(
        self,
        read: Callable[[], Awaitable[Iterable[str]]],
        ttl: float = ACCOUNTS_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._ttl = ttl
        self._clock = clock
        self._names: frozenset[str] = frozenset()
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> frozenset[str]:
        """The account names, at most `ttl` seconds old."""
        if self._fresh():
            return self._names
        async with self._lock:
            if not self._fresh():  # another caller may have read them while this one waited
                started = self._clock()
                self._names = frozenset(await self._read())
                self._read_at = started
        return self._names

    def _fresh(self) -> bool:
        return self._read_at is not None and self._clock() - self._read_at < self._ttl
