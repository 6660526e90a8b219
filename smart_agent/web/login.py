"""Login in the app: accounts by password, the local user on loopback, OAuth; every token re-checked.

Chainlit 2.12 internals touched here (paths under chainlit/):
- `/auth/config` (auth/__init__.py `get_configuration`) offers header auth whenever
  `config.code.header_auth_callback` is set, and the login page then posts `/auth/header` by itself;
  when that fails it shows "credentialssignin" under the form and a 401 toast. So the callback is set only
  while no account exists (`Login.names`), refreshed before Chainlit reads it.
- Chainlit checks a token's signature and expiry only (auth/jwt.py `decode_jwt`), for HTTP and for the
  Socket.IO handshake (socket.py `connect`). A token this app no longer honours (the local user's once an
  account exists, a removed account's) is taken out of the request, so Chainlit refuses it as missing.
- PUT /feedback turns a data-layer error into a 500 carrying its message (server.py `update_feedback`);
  DELETE /feedback lets it escape. A refused access answers 403 instead.
- The share routes (`GET /project/share/{id}`, `PUT /project/thread/share`) run whatever
  `features.allow_thread_sharing` says, and the first needs no login: they answer 404 while sharing is off.
- POST /login (server.py `login`) is counted and, over the limit, refused before Chainlit sees it
  (web/sign_in_limit.py): Chainlit runs the password callback through `utils.wrap_user_function`,
  which logs and swallows whatever it raises, so the callback cannot answer 429 itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import chainlit as cl
from chainlit.auth.cookie import get_token_from_cookies
from chainlit.auth.jwt import decode_jwt
from chainlit.config import config
from chainlit.data import get_data_layer
from chainlit.oauth_providers import get_configured_oauth_providers
from fastapi.exception_handlers import http_exception_handler
from jwt import InvalidTokenError
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from smart_agent.errors import HistoryAccessError
from smart_agent.history.accounts import Accounts
from smart_agent.history.actor import acting_user
from smart_agent.history.data_layer import HistoryDataLayer
from smart_agent.history.login import (
    LOCAL_PROVIDER,
    LOCAL_USER,
    PASSWORD_PROVIDER,
    AccountNames,
    SignInLimit,
    honoured,
    oauth_identifier,
)
from smart_agent.web import chainlit_patches
from smart_agent.web.sign_in_limit import SignInLimitMiddleware

_SHARE_ROUTES = re.compile(r"^/project/(share/[^/]+|thread/share)/?$")


class Login:
    """The app's sign-in rules, over one `Accounts` on the history database's engine."""

    def __init__(self, local_user: bool) -> None:
        self._local_user = local_user
        self._names = AccountNames(self._read_names)
        self._accounts: Accounts | None = None
        self._header_callback: Any = None

    def offer_local_user(self) -> None:
        """Register the header-auth callback that signs the local user in while there is no account."""

        @cl.header_auth_callback
        async def local_user(headers: Any) -> cl.User | None:
            if await self.names():
                return None
            return cl.User(identifier=LOCAL_USER, metadata={"provider": LOCAL_PROVIDER})

        self._header_callback = config.code.header_auth_callback

    def accounts(self) -> Accounts:
        """The accounts, on the data layer's engine (made on first use, in the server's event loop)."""
        if self._accounts is None:
            layer = get_data_layer()  # type: ignore[no-untyped-call]
            if not isinstance(layer, HistoryDataLayer):
                raise RuntimeError("the history data layer is not installed")
            self._accounts = Accounts(layer.engine)
        return self._accounts

    async def _read_names(self) -> list[str]:
        return [name for name, _ in await self.accounts().names()]

    async def names(self) -> frozenset[str]:
        """The account names (a second old at most); header auth is offered only while there are none."""
        names = await self._names.get()
        if self._header_callback is not None:
            config.code.header_auth_callback = None if names else self._header_callback
        return names

    async def password_user(self, name: str, password: str) -> cl.User | None:
        """The account's user if the password is right."""
        if not await self.accounts().verify(name, password):
            return None
        return cl.User(identifier=name, metadata={"provider": PASSWORD_PROVIDER})

    async def honours(self, user: cl.User) -> bool:
        """Whether a token naming `user` still signs them in."""
        provider = (user.metadata or {}).get("provider")
        return honoured(user.identifier, provider, await self.names(), _oauth_providers())


def install(local_user: bool) -> Login:
    """Register the sign-in callbacks, the token check and the refusal answers on Chainlit's server."""
    login = Login(local_user)
    if local_user:
        login.offer_local_user()

    @cl.password_auth_callback
    async def password_user(username: str, password: str) -> cl.User | None:
        return await login.password_user(username, password)

    if _oauth_providers():

        @cl.oauth_callback
        async def oauth_user(
            provider_id: str, token: str, raw: dict[str, str], default: cl.User, id_token: str | None = None
        ) -> cl.User | None:
            return oauth_app_user(provider_id, default)

    from chainlit.server import app

    app.add_middleware(LoginMiddleware, login=login)
    app.add_middleware(SignInLimitMiddleware, limit=SignInLimit())
    app.add_exception_handler(HTTPException, _refused_or_chainlit)
    app.add_exception_handler(HistoryAccessError, _refused)
    return login


def oauth_app_user(provider_id: str, default: cl.User) -> cl.User:
    """The app's user for Chainlit's default user of an OAuth provider: `provider:name`, never an account."""
    return cl.User(
        identifier=oauth_identifier(provider_id, default.identifier),
        display_name=default.display_name or default.identifier,
        metadata={**default.metadata, "provider": provider_id},
    )


class LoginMiddleware:
    """Drop tokens no longer honoured, run each HTTP request as its token's user, close sharing."""

    def __init__(self, app: ASGIApp, login: Login) -> None:
        self.app = app
        self.login = login

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if scope["type"] == "http" and _SHARE_ROUTES.match(path) and not _sharing_on():
            await JSONResponse({"detail": "Thread not found"}, status_code=404)(scope, receive, send)
            return
        if path in ("/auth/config", "/auth/header"):
            await self.login.names()  # Chainlit reads the header callback next
        user, source = _token_user(HTTPConnection(scope))
        if user is None:
            await self.app(scope, receive, send)
        elif not await self.login.honours(user):
            await self.app(_without_token(scope, source), receive, send)
        elif scope["type"] == "websocket":
            await self.app(scope, receive, send)  # socket handlers find the session's user themselves
        else:
            with acting_user(user.identifier):
                await self.app(scope, receive, send)


def _oauth_providers() -> list[str]:
    # The ids of the providers whose OAUTH_* variables are all set (chainlit/oauth_providers.py).
    return list(get_configured_oauth_providers())  # type: ignore[no-untyped-call]


def _sharing_on() -> bool:
    return bool(config.features.allow_thread_sharing and config.code.on_shared_thread_view)


def _token_user(connection: HTTPConnection) -> tuple[cl.User | None, str]:
    token, source = get_token_from_cookies(dict(connection.cookies)), "cookie"
    header = connection.headers.get("authorization", "")
    if token is None and header.lower().startswith("bearer "):
        token, source = header[7:], "authorization"
    if not token:
        return None, source
    try:
        return decode_jwt(token), source
    except (InvalidTokenError, AssertionError, TypeError):  # bad or foreign token: Chainlit answers 401
        return None, source


def _without_token(scope: Scope, source: str) -> Scope:
    headers: list[tuple[bytes, bytes]] = []
    for name, value in scope["headers"]:
        if source == "authorization" and name == b"authorization":
            continue
        if source == "cookie" and name == b"cookie":
            kept = list(_other_cookies(value.decode("latin-1").split(";")))
            if kept:
                headers.append((name, "; ".join(kept).encode("latin-1")))
            continue
        headers.append((name, value))
    return {**scope, "headers": headers}


def _other_cookies(parts: Iterable[str]) -> Iterable[str]:
    token_cookie = chainlit_patches.auth_cookie_name()
    for part in parts:
        name = part.strip().split("=", 1)[0]
        # The token may be split into access_token_0, _1, ... (auth/cookie.py `set_auth_cookie`).
        if name and not name.startswith(token_cookie):
            yield part.strip()


async def _refused(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": str(exc)}, status_code=403)


async def _refused_or_chainlit(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if isinstance(exc.__cause__, HistoryAccessError):
        return await _refused(request, exc.__cause__)
    return await http_exception_handler(request, exc)
