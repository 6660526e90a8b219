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


SIGN_IN_WINDOW_S = 60.0
"""The window over which failed sign-ins are counted."""
FAILURES_PER_NAME = 5
"""Failed sign-ins allowed per window for one account name from one client address."""
FAILURES_PER_ADDRESS = 20
"""Failed sign-ins allowed per window from one client address, whatever the names (password spraying)."""
_MAX_KEYS = 10_000  # bounds the memory an attacker can make it hold: old entries go first


class SignInLimit:
    """Failed password sign-ins counted per (address, name) and per address over a sliding window."""

    def __init__(
        self,
        per_name: int = FAILURES_PER_NAME,
        per_address: int = FAILURES_PER_ADDRESS,
        window: float = SIGN_IN_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {"name": per_name, "address": per_address}
        self._window = window
        self._clock = clock
        self._failures: dict[tuple[str, ...], list[float]] = {}

    def _keys(self, address: str, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return ("name", address, name.strip().lower()), ("address", address)

    def _recent(self, key: tuple[str, ...], now: float) -> list[float]:
        times = [t for t in self._failures.get(key, ()) if now - t < self._window]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def retry_after(self, address: str, name: str) -> float:
        """Seconds until this address may try this name again; 0 when it may now."""
        now = self._clock()
        wait = 0.0
        for key in self._keys(address, name):
            times = self._recent(key, now)
            limit = self._limits[key[0]]
            if len(times) >= limit:
                wait = max(wait, times[-limit] + self._window - now)
        return wait

    def failed(self, address: str, name: str) -> None:
        """Count one failed sign-in."""
        now = self._clock()
        for key in self._keys(address, name):
            self._failures.setdefault(key, []).append(now)
            del self._failures[key][: -self._limits[key[0]]]  # only the last `limit` matter
        while len(self._failures) > _MAX_KEYS:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, address: str, name: str) -> None:
        """Forget this name's failures from this address (its address-wide count stays)."""
        self._failures.pop(self._keys(address, name)[0], None)
