"""Attachments in the chat: Chainlit's upload limits from the settings, the files of a message judged,
and the stored files served back to their owner only.

Chainlit 2.12 internals touched here:
- `config.features.spontaneous_file_upload` (config.py `SpontaneousFileUploadFeature`) is read by the
  page (its file picker refuses a file over `max_size_mb` or of an extension not in `accept`) and by
  `upload_file` (server.py), which checks the browser's claimed type and the size only.
- An uploaded file lives in the session's `.files/` folder under a generated name until the session
  ends (session.py `persist_file`); the message's elements carry that `path`.
- Chainlit ends its routes with GET /{full_path:path}: our route goes before it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import chainlit as cl
from chainlit.data import get_data_layer
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from smart_agent.attachments.files import Attachment, AttachmentError, Limits, read_attachment
from smart_agent.history.actor import current_actor
from smart_agent.history.data_layer import ATTACHMENT_URL, HistoryDataLayer

# Served back inert: nothing a user uploaded runs in the page (an HTML or SVG file is text/plain,
# the browser may not sniff another type, and the CSP sandbox forbids script even if it did).
_INERT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cache-Control": "private, no-store",
}
_SERVED_TYPES = {"image/png": "image/png", "text/plain": "text/plain; charset=utf-8"}


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


def install(app: FastAPI) -> None:
    """Serve stored attachments at ATTACHMENT_URL, ahead of Chainlit's catch-all page route."""
    path = ATTACHMENT_URL.replace("{id}", "{element_id}")
    route: Any = APIRoute(path, _serve, methods=["GET"])
    app.router.routes[:0] = [route]
