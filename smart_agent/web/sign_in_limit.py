"""The sign-in limit on Chainlit's password login (POST /login): failures counted, refusals with 429."""

from __future__ import annotations

import logging
import math

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smart_agent.history.login import SIGN_IN_WINDOW_S, SignInLimit

logger = logging.getLogger(__name__)

TOO_MANY_SIGN_INS = "toomanysignins"
"""The detail of a refused sign-in: the page shows its translation `auth.login.errors.toomanysignins`."""
_MAX_FORM_BYTES = 64 * 1024  # a name and a password


class SignInLimitMiddleware:
    """Count failed password sign-ins per client address and name; over the limit, answer 429 at once.

    Chainlit 2.12's POST /login answers 401 `credentialssignin` when the password callback returns no
    user and 200 with the token cookie otherwise (server.py `login`, `_authenticate_user`); the status
    tells this middleware what happened, so the callback stays a plain check of the password.
    """

    def __init__(self, app: ASGIApp, limit: SignInLimit) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("path") != "/login":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            await JSONResponse({"detail": "Request too large"}, status_code=413)(scope, receive, send)
            return
        replay = _replaying(body, receive)
        try:
            form = await Request(scope, _replaying(body, receive)).form()
        except HTTPException:  # a malformed form: Chainlit refuses it with 4xx, which counts as nothing
            await self.app(scope, replay, send)
            return
        name = str(form.get("username") or "")
        client = scope.get("client")
        address = client[0] if client else "unknown"
        wait = self.limit.retry_after(address, name)
        if wait > 0:
            headers = {"Retry-After": str(math.ceil(wait))}
            await JSONResponse({"detail": TOO_MANY_SIGN_INS}, 429, headers)(scope, replay, send)
            return
        status: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, replay, watch)
        if status == [401]:
            self.limit.failed(address, name)
            if self.limit.retry_after(address, name) > 0:
                logger.warning(
                    "sign-in as %r from %s refused for up to %g s: too many wrong passwords",
                    name,
                    address,
                    SIGN_IN_WINDOW_S,
                )
        elif status == [200]:
            self.limit.succeeded(address, name)


async def _read_body(receive: Receive) -> bytes | None:
    """The request's body, or None once it passes _MAX_FORM_BYTES."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # the client went away: the app sees an empty form and refuses it
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives `body` first, then whatever `receive` gives (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
