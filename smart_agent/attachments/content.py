"""A user message with attachments as the model gets it: marked text context and image parts."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from smart_agent.attachments.files import Attachment
from smart_agent.llm.context import IMAGE_TOKENS, LETTERS_PER_TOKEN

IMAGE_DATA_URL = re.compile(r"data:image/(png|jpeg|gif|webp);base64,([A-Za-z0-9+/]*={0,2})")
"""An image as an API message may carry it: base64 in a data URL (the server never fetches a link)."""
CUT_NOTE = "[… cut here: the file is longer than fits the model's context]"


@dataclass(frozen=True)
class UserContent:
    """The message's content for the model, its text alone, and the notices to show (a file cut to fit)."""

    content: str | list[dict[str, Any]]
    text: str
    notices: list[str]


def data_url(image: Attachment) -> str:
    """The image as a data URL."""
    return f"data:{image.mime};base64,{base64.b64encode(image.data).decode('ascii')}"


def marked(name: str, text: str) -> str:
    """A text file as marked context the model can tell from the user's words."""
    fence = "```"
    while fence in text:
        fence += "`"
    return f"Attached file {name}:\n{fence}\n{text}\n{fence}"


def room_for_files(input_chars: int, text: str, attachments: Sequence[Attachment]) -> int:
    """The characters of text files that fit next to the user's text and images in a message of at most
    `input_chars` (what the context budget allows, smart_agent/llm/context.py `input_limit`)."""
    images = sum(1 for attachment in attachments if attachment.is_image)
    return max(0, input_chars - len(text) - images * IMAGE_TOKENS * LETTERS_PER_TOKEN)


def user_content(text: str, attachments: Sequence[Attachment], room: int) -> UserContent:
    """The user's text followed by each text file (`room` characters of files in all, the rest cut
    with a notice), then the images as `image_url` parts; plain text when there is no image."""
    notices: list[str] = []
    pieces = [text] if text else []
    for attachment in attachments:
        if attachment.is_image:
            continue
        body = attachment.text
        if len(body) > room:
            notices.append(
                f"{attachment.name} was cut to {room:,} of its {len(body):,} characters to fit the "
                "model's context."
            )
            body = f"{body[:room]}\n{CUT_NOTE}"
        room = max(0, room - len(body))
        pieces.append(marked(attachment.name, body))
    joined = "\n\n".join(pieces)
    images = [attachment for attachment in attachments if attachment.is_image]
    if not images:
        return UserContent(joined, joined, notices)
    parts: list[dict[str, Any]] = [{"type": "text", "text": joined}] if joined else []
    parts.extend({"type": "image_url", "image_url": {"url": data_url(image)}} for image in images)
    return UserContent(parts, joined, notices)
