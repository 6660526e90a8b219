"""What `POST /api/chat` accepts: the AI SDK default transport's body, checked field by field, then
turned into a run's messages and checked again by the runs API's own schema (sizes, images)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from smart_agent.api.schema import ROLES, RequestError, parse_run_request
from smart_agent.attachments.files import Limits

MAX_CHAT_ID_CHARS = 200
TRIGGERS = ("submit-message", "regenerate-message")
_IGNORED_PARTS = re.compile(
    r"^(reasoning|step-start|source-url|source-document|dynamic-tool|tool-.+|data-.+)$"
)
"""Parts of earlier replies that are the UI's, not the conversation's: the model gets their text only."""


@dataclass(frozen=True)
class ChatRequest:
    """A validated AI SDK chat request: the chat's id and the run's messages."""

    chat_id: str
    messages: list[dict[str, Any]]
    model: str | None
    trigger: str
    cancel_on_disconnect: bool = False


def parse_chat_request(body: bytes, max_content_chars: int, limits: Limits | None) -> ChatRequest:
    """Validate the transport's body (`id`, `messages` with `parts`, `trigger`, `messageId`); the
    RequestError names the field as the client sent it (`messages[0].parts[1].text`)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise RequestError(
            "body", 'must be JSON like {"id": "...", "messages": [{"role", "parts"}]}'
        ) from None
    if not isinstance(data, dict):
        raise RequestError("body", "must be a JSON object")
    chat_id = data.get("id")
    if not isinstance(chat_id, str) or not chat_id.strip() or len(chat_id) > MAX_CHAT_ID_CHARS:
        raise RequestError("id", f"must be the chat's id: a non-empty string of at most {MAX_CHAT_ID_CHARS}")
    trigger = data.get("trigger", "submit-message")
    if trigger not in TRIGGERS:
        raise RequestError("trigger", f"must be one of {', '.join(TRIGGERS)}")
    message_id = data.get("messageId")
    if message_id is not None and not isinstance(message_id, str):
        raise RequestError("messageId", "must be a string when given")
    cancel = data.get("cancelOnDisconnect", False)
    if not isinstance(cancel, bool):
        raise RequestError("cancelOnDisconnect", "must be true or false")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages", 'must be a non-empty list of {"id", "role", "parts"} UI messages')
    converted = [_message(index, item, limits) for index, item in enumerate(messages)]
    kept = [(index, message) for index, message in enumerate(converted) if message is not None]
    run_body = {"messages": [message for _, message in kept]}
    if data.get("model") is not None:
        run_body["model"] = data["model"]
    try:
        run = parse_run_request(json.dumps(run_body).encode(), max_content_chars, limits)
    except RequestError as exc:
        raise RequestError(
            _client_field(exc.field, [index for index, _ in kept]), exc.message, exc.status
        ) from None
    return ChatRequest(chat_id, run.messages, run.model, trigger, cancel)


def _message(index: int, item: Any, limits: Limits | None) -> dict[str, Any] | None:
    """The run's message for one UI message; None for a reply that held no text (only tool steps)."""
    where = f"messages[{index}]"
    if not isinstance(item, dict):
        raise RequestError(where, 'must be a UI message object {"id", "role", "parts"}')
    role = item.get("role")
    if role not in ROLES:
        raise RequestError(f"{where}.role", f"must be one of {', '.join(ROLES)}")
    parts = item.get("parts")
    if not isinstance(parts, list):
        raise RequestError(f"{where}.parts", "must be a list of message parts")
    content: list[dict[str, Any]] = []
    for number, part in enumerate(parts):
        at = f"{where}.parts[{number}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(kind, str):
            raise RequestError(f"{at}.type", "must be a part type such as text or file")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise RequestError(f"{at}.text", "must be a string")
            content.append({"type": "text", "text": part["text"]})
        elif kind == "file" and role == "user":
            url, media = part.get("url"), part.get("mediaType")
            if not isinstance(url, str) or not isinstance(media, str) or not media.startswith("image/"):
                raise RequestError(at, "a file part must be an image: mediaType image/* and a data: URL")
            content.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "file" or _IGNORED_PARTS.match(kind):
            continue
        else:
            raise RequestError(f"{at}.type", f"{kind!r} is not a part this server reads")
    if role == "user" and any(part["type"] == "image_url" for part in content):
        return {"role": role, "content": content}
    text = "".join(part["text"] for part in content)
    if not text.strip() and role == "assistant":
        return None
    return {"role": role, "content": text}


def _client_field(field: str, indexes: list[int]) -> str:
    """The runs schema's field (`messages[2].content[0]`) as the client sent it (`messages[3].parts`)."""
    match = re.match(r"^messages\[(\d+)\](?:\.(\w+))?", field)
    if match is None:
        return field
    index = indexes[int(match.group(1))] if int(match.group(1)) < len(indexes) else int(match.group(1))
    rest = ".parts" if match.group(2) == "content" else f".{match.group(2)}" if match.group(2) else ""
    return f"messages[{index}]{rest}"
