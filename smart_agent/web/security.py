"""The guard in front of Chainlit: known Host and Origin only, request bodies capped per route, a CSP."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smart_agent.web import chainlit_patches
from smart_agent.web.origins import host_values

log = logging.getLogger("smart_agent.security")

# Chat messages travel over the websocket, so no legitimate HTTP body but an upload or an API run
# with images comes near this; Socket.IO's long-polling fallback is capped at 1,000,000 bytes by
# engine.io itself.
MAX_BODY_BYTES = 2 * 1024 * 1024
UPLOAD_PATH = "/project/file"
"""Chainlit 2.12's upload route (server.py `upload_file`): one file per multipart request."""
RUNS_PATH = "/api/v1/runs"
RUN_PATHS = (RUNS_PATH, "/api/chat", "/api/ag-ui", "/v1/chat/completions")
"""Every route whose body starts a run, images included (the protocols' presenters under api/)."""
MULTIPART_SLACK = 64 * 1024  # a multipart body's boundaries and part headers around the file


def body_limits(max_file_bytes: int, max_files: int) -> dict[str, int]:
    """Per-route body caps: an upload holds one file; an API run may carry every image as base64."""
    run = MAX_BODY_BYTES + max_files * (max_file_bytes * 4 // 3 + 64)
    return {UPLOAD_PATH: max_file_bytes + MULTIPART_SLACK} | {path: run for path in RUN_PATHS}


# img-src/media-src: model output must not make the browser fetch other hosts (markdown images
# are an exfiltration channel). script-src: Chainlit's page has inline scripts, and custom
# elements compile JSX in the browser ('unsafe-eval'); model output never becomes HTML or script
# (unsafe_allow_html stays off). The stylesheet host is the Inter font that Chainlit 2.12's
# index.html links; its KaTeX link (cdn.jsdelivr.net) is refused here without a request: the
# app serves KaTeX itself (public/katex/, imported by public/smart-agent.css).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline' https://fonts.googleapis.com",
        "font-src 'self' data: https://fonts.gstatic.com",
        "img-src 'self' data: blob:",
        "media-src 'self' data: blob:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "frame-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
)
_HOW_TO_ALLOW = b"add its origin to SMART_AGENT_ALLOWED_ORIGINS (see docs/security.md)"


API_PATH = "/api/"
_CODES = {400: "invalid_request", 403: "forbidden", 413: "too_large"}


async def _refuse(scope: Scope, send: Send, status: int, text: bytes) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403
        return
    content_type = b"text/plain; charset=utf-8"
    if scope.get("path", "").startswith(API_PATH):  # API clients get the API's JSON error shape
        error = {"code": _CODES.get(status, "refused"), "message": text.decode()}
        if status == 413:
            error["field"] = "body"
        text, content_type = json.dumps({"error": error}).encode(), b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(text)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": text})


class SecurityMiddleware:
    """Refuse foreign Host and Origin values and bodies over `max_body_bytes`; add the CSP."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        origins: tuple[str, ...],
        max_body_bytes: int = MAX_BODY_BYTES,
        route_limits: dict[str, int] | None = None,
    ):
        self.app = app
        self.origins = frozenset(origins)
        self.hosts = host_values(origins)
        self.max_body_bytes = max_body_bytes
        self.route_limits = dict(route_limits or {})  # exact path -> its own cap

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "").lower()
        if host not in self.hosts:  # DNS rebinding: a foreign name that resolves to us
            log.warning("refused a request for Host %r: to serve that name, %s", host, _HOW_TO_ALLOW.decode())
            await _refuse(scope, send, 400, b"Unknown Host header: to serve this name, " + _HOW_TO_ALLOW)
            return
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:  # another site's page driving us
            log.warning("refused a request from origin %r: to allow it, %s", origin, _HOW_TO_ALLOW.decode())
            await _refuse(scope, send, 403, b"Cross-origin request refused: to allow it, " + _HOW_TO_ALLOW)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        limit = self.route_limits.get(scope.get("path", "").rstrip("/"), self.max_body_bytes)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(scope, send, 413, _too_large(limit))
            return
        await self._capped(scope, receive, send, limit)

    async def _capped(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Run the app, counting streamed body bytes; past the cap, answer 413 and stop reading."""
        received = 0
        started = False
        refused = False

        async def capped_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started and not refused:
                        refused = True
                        await _refuse(scope, send, 413, _too_large(limit))
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is already out; the app's answer to the cut-off body is dropped
            if message["type"] == "http.response.start":
                started = True
                message = _with_csp(message)
            await send(message)

        try:
            await self.app(scope, capped_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # The app failed reading the body we cut off; the client already has its 413.
            log.debug("app error after a 413 for an oversized body", exc_info=True)


def _too_large(limit: int) -> bytes:
    return f"Request body over {limit:,} bytes refused.".encode()


def _with_csp(message: Message) -> Message:
    headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
    if not any(name.lower() == b"content-security-policy" for name, _ in headers):
        headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
    return {**message, "headers": headers}


def install(app: Any, sio: Any, origins: tuple[str, ...], route_limits: dict[str, int] | None = None) -> None:
    """Put the guard in front of Chainlit's app (outermost) and make Socket.IO check Origin too
    (engine.io's own check, off in Chainlit: a second line of defence)."""
    app.add_middleware(SecurityMiddleware, origins=origins, route_limits=route_limits)
    chainlit_patches.socket_origins(sio, origins)
