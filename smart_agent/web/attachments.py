"""Attachments in the chat: Chainlit's upload limits from the settings, the files of a message judged,
and the stored files served back to their owner only.

Chainlit 2.12 internals touched here:
- `config.features.spontaneous_file_upload` (config.py `SpontaneousFileUploadFeature`) is read by the
  page (its file picker refuses a file over `max_size_mb` or of an extension not in `accept`) and by
  `upload_file` (server.py), which checks the browser's claimed type and the size only.
- An uploaded file lives in the session's `.files/` folder under a generated name until the session
  ends (session.py `persist_file`); the message's elements carry that `path`.
- Chainlit ends its routes with GET /{full_path:path}: our route goes before it
  (`chainlit_patches.routes_first`).
- GET /project/file/{file_id} (server.py `get_file`) serves a session's upload with the type the browser
  claimed for it (an HTML file as text/html, in the app's origin): `harden_session_files` wraps that
  route (`chainlit_patches.wrap_route`) so it answers only inert types, with nosniff and a sandboxing CSP.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import chainlit as cl
from chainlit.data import get_data_layer
from chainlit.types import ThreadDict
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smart_agent.attachments.content import data_url
from smart_agent.attachments.files import Attachment, AttachmentError, Limits, read_attachment
from smart_agent.history.actor import current_actor
from smart_agent.history.data_layer import ATTACHMENT_URL, HistoryDataLayer
from smart_agent.web import chainlit_patches

# Served back inert: nothing a user uploaded runs in the page (an HTML or SVG file is text/plain,
# the browser may not sniff another type, and the CSP sandbox forbids script even if it did).
_INERT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cache-Control": "private, no-store",
}
_SERVED_TYPES = {"image/png": "image/png", "text/plain": "text/plain; charset=utf-8"}
_INERT_IMAGES = (b"image/png", b"image/jpeg", b"image/gif", b"image/webp")


def configure(limits: Limits) -> None:
    """Chainlit's upload feature on, with these limits, so the page refuses a file before sending it."""
    from chainlit.config import config

    feature = config.features.spontaneous_file_upload
    if feature is None:  # pragma: no cover - the shipped config.toml sets the section
        raise RuntimeError("Chainlit's config has no [features.spontaneous_file_upload]")
    feature.enabled = True
    # Any claimed type, but only these names: browsers claim application/octet-stream for many
    # text files; the content decides on the server (attachments/files.py).
    feature.accept = {"*/*": [f".{extension}" for extension in limits.extensions]}
    feature.max_files = limits.max_files
    feature.max_size_mb = max(1, limits.max_bytes // 1_000_000)


async def collect(message: cl.Message, limits: Limits) -> tuple[list[Attachment], list[str]]:
    """The message's files judged by content within `limits`: those accepted, and why others are not."""
    files = [element for element in message.elements or [] if element.path]
    refusals: list[str] = []
    if len(files) > limits.max_files:
        refusals.append(f"{len(files)} files were attached; the limit is {limits.max_files}")
    accepted: list[Attachment] = []
    for element in files[: limits.max_files]:
        try:
            accepted.append(
                await asyncio.to_thread(read_attachment, element.name, Path(element.path or ""), limits)
            )
        except AttachmentError as exc:
            refusals.append(f"{element.name}: {exc}")
        except OSError:
            refusals.append(f"{element.name}: it could not be read")
    return accepted, refusals


async def stored_images(thread: ThreadDict) -> dict[str, str]:
    """The thread's stored images as data URLs by element id, read as the acting user (its owner)."""
    layer = get_data_layer()  # type: ignore[no-untyped-call]
    if not isinstance(layer, HistoryDataLayer):
        return {}
    found: dict[str, str] = {}
    for element in thread.get("elements") or []:
        if element.get("type") == "image" and (stored := await layer.get_attachment(element["id"])):
            mime, data = stored
            found[element["id"]] = data_url(Attachment(element.get("name") or "image", mime, data))
    return found


def refusal_text(refusals: list[str], limits: Limits) -> str:
    """What the page says when a message's files are refused."""
    return "Your message was not sent to the model: " + "; ".join(refusals) + f". Attach {limits.describe()}."


async def _serve(request: Request) -> Response:
    """A stored attachment, to the user whose thread holds it; 404 to anyone else."""
    layer = get_data_layer()  # type: ignore[no-untyped-call]
    if current_actor() is None or not isinstance(layer, HistoryDataLayer):
        return Response("Not found", status_code=404, media_type="text/plain")
    found = await layer.get_attachment(request.path_params["element_id"])
    if found is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    mime, data = found
    media_type = _SERVED_TYPES.get(mime, "application/octet-stream")
    return Response(data, media_type=media_type, headers=_INERT_HEADERS)


class _Inert:
    """An ASGI app whose responses' type is made inert: a raster image stays, anything else is plain text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def inert_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-type"]
                claimed = dict(message.get("headers", [])).get(b"content-type", b"")
                kept = claimed if claimed.split(b";")[0].strip().lower() in _INERT_IMAGES else None
                headers.append((b"content-type", kept or b"text/plain; charset=utf-8"))
                headers += [(k.lower().encode(), v.encode()) for k, v in _INERT_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, inert_send)


def harden_session_files(app: FastAPI) -> None:
    """Serve Chainlit's session-file route through `_Inert` (its login and session checks kept)."""
    chainlit_patches.wrap_route(app, chainlit_patches.SESSION_FILE_PATH, _Inert)


def install(app: FastAPI) -> None:
    """Serve stored attachments at ATTACHMENT_URL, ahead of Chainlit's catch-all page route."""
    path = ATTACHMENT_URL.replace("{id}", "{element_id}")
    chainlit_patches.routes_first(app, [APIRoute(path, _serve, methods=["GET"])])
