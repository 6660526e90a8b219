"""What API requests may contain: each refusal names the field and what is allowed."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smart_agent.attachments.content import IMAGE_DATA_URL, data_url
from smart_agent.attachments.files import Attachment, AttachmentError, Limits, bounded_png

MAX_MESSAGES = 1_000
MAX_MODEL_CHARS = 200
ROLES = ("user", "assistant", "system")
MAX_FLUSH_INTERVAL = 10.0
MIN_EVENTS_PER_SECOND = 0.1


class RequestError(ValueError):
    """A request the API refuses; `field` names what is wrong, `status` the HTTP status."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


@dataclass(frozen=True)
class RunRequest:
    """A validated `POST /api/v1/runs` body."""

    messages: list[dict[str, Any]]
    model: str | None = None


def parse_run_request(body: bytes, max_content_chars: int, limits: Limits | None = None) -> RunRequest:
    """Validate a run request's JSON body; RequestError names the first bad field. A user message's
    content may be a list of text and image parts (data URLs within `limits`; none without them)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise RequestError(
            "body", 'must be JSON like {"messages": [{"role": "user", "content": "..."}]}'
        ) from None
    if not isinstance(data, dict):
        raise RequestError("body", "must be a JSON object")
    unknown = sorted(set(data) - {"messages", "model"})
    if unknown:
        raise RequestError(unknown[0], "is not a field of a run request (allowed: messages, model)")
    model = data.get("model")
    if model is not None and (
        not isinstance(model, str) or not model.strip() or len(model) > MAX_MODEL_CHARS
    ):
        raise RequestError("model", f"must be a non-empty string of at most {MAX_MODEL_CHARS} characters")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages", 'must be a non-empty list of {"role", "content"} objects')
    if len(messages) > MAX_MESSAGES:
        raise RequestError("messages", f"must hold at most {MAX_MESSAGES:,} messages")
    parsed = [_message(index, item, max_content_chars, limits) for index, item in enumerate(messages)]
    if parsed[-1]["role"] != "user":
        raise RequestError(f"messages[{len(parsed) - 1}].role", "the last message must be the user's")
    return RunRequest(parsed, model.strip() if isinstance(model, str) else None)


def _message(index: int, item: Any, max_content_chars: int, limits: Limits | None) -> dict[str, Any]:
    where = f"messages[{index}]"
    if not isinstance(item, dict):
        raise RequestError(where, "must be an object with role and content")
    unknown = sorted(set(item) - {"role", "content"})
    if unknown:
        raise RequestError(f"{where}.{unknown[0]}", "is not a field of a message (allowed: role, content)")
    role, content = item.get("role"), item.get("content")
    if role not in ROLES:
        raise RequestError(f"{where}.role", f"must be one of {', '.join(ROLES)}")
    if isinstance(content, list):
        if role != "user":
            raise RequestError(f"{where}.content", "content parts are accepted in user messages only")
        return {"role": role, "content": _parts(where, content, max_content_chars, limits)}
    if not isinstance(content, str) or not content.strip():
        raise RequestError(f"{where}.content", "must be a non-empty string")
    if len(content) > max_content_chars:
        raise RequestError(
            f"{where}.content",
            f"has {len(content):,} characters; the limit is {max_content_chars:,} "
            "(what fits the model's context; SMART_AGENT_MAX_INPUT_CHARS sets it)",
            status=413,
        )
    return {"role": role, "content": content}


_PART_SHAPE = (
    'must be {"type": "text", "text": "..."} or '
    '{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}'
)


def _parts(
    where: str, content: list[Any], max_content_chars: int, limits: Limits | None
) -> list[dict[str, Any]]:
    """Text and image parts as OpenAI takes them; every image decoded, bounded and re-encoded."""
    if not content:
        raise RequestError(f"{where}.content", "must be a non-empty string or list of content parts")
    parts: list[dict[str, Any]] = []
    chars = 0
    for index, part in enumerate(content):
        at = f"{where}.content[{index}]"
        if not isinstance(part, dict):
            raise RequestError(at, _PART_SHAPE)
        if part.get("type") == "text":
            text = part.get("text")
            if set(part) != {"type", "text"} or not isinstance(text, str):
                raise RequestError(at, _PART_SHAPE)
            chars += len(text)
            parts.append({"type": "text", "text": text})
        elif part.get("type") == "image_url":
            parts.append({"type": "image_url", "image_url": {"url": _image(at, part, limits)}})
        else:
            raise RequestError(f"{at}.type", "must be text or image_url")
    images = sum(1 for part in parts if part["type"] == "image_url")
    if limits is not None and images > limits.max_files:
        raise RequestError(f"{where}.content", f"has {images} images; the limit is {limits.max_files}")
    if chars > max_content_chars:
        raise RequestError(
            f"{where}.content", f"has {chars:,} characters of text; the limit is {max_content_chars:,}", 413
        )
    if not chars and not images:
        raise RequestError(f"{where}.content", "must hold some text or an image")
    return parts


def _image(at: str, part: dict[str, Any], limits: Limits | None) -> str:
    field = f"{at}.image_url.url"
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else None
    if set(part) != {"type", "image_url"} or not isinstance(url, str):
        raise RequestError(at, _PART_SHAPE)
    if limits is None:
        raise RequestError(field, "images are not accepted here")
    match = IMAGE_DATA_URL.fullmatch(url)
    if match is None:
        raise RequestError(field, "must be a data URL of a PNG, JPEG, GIF or WebP image in base64 (no links)")
    if len(match.group(2)) * 3 // 4 > limits.max_bytes + 2:
        raise RequestError(field, f"the image is over the limit of {limits.max_bytes:,} bytes", 413)
    try:
        data = base64.b64decode(match.group(2), validate=True)
        png = bounded_png(data, limits.max_pixels)
    except binascii.Error:
        raise RequestError(field, "is not valid base64") from None
    except AttachmentError as exc:
        raise RequestError(field, str(exc)) from None
    return data_url(Attachment("image", "image/png", png))


@dataclass(frozen=True)
class StreamOptions:
    """How one reader wants its token events paced; None keeps the server's pacing."""

    flush_interval: float | None = None
    max_events_per_second: float | None = None
    cancel_on_disconnect: bool = False

    @property
    def coalescing(self) -> bool:
        """True when this reader asked for coarser pacing than the server's."""
        return self.flush_interval is not None or self.max_events_per_second is not None


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_stream_options(query: Mapping[str, str], server_flush: float, server_rate: float) -> StreamOptions:
    """Validate an events request's query; the pacing may only be coarser than the server's."""
    flush = _number(query, "flush_interval", server_flush, MAX_FLUSH_INTERVAL, "s")
    rate = _number(query, "max_events_per_second", MIN_EVENTS_PER_SECOND, server_rate, "")
    raw = query.get("cancel_on_disconnect", "false").strip().lower()
    if raw not in _TRUE | _FALSE:
        raise RequestError("cancel_on_disconnect", "must be true or false")
    return StreamOptions(flush, rate, raw in _TRUE)


def _number(query: Mapping[str, str], name: str, low: float, high: float, unit: str) -> float | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        raise RequestError(
            name, f"must be a number from {low:g}{unit} to {high:g}{unit} (the server's bounds)"
        )
    return value
