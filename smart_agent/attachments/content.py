"""A user message with attachments as the model gets it: marked text context and image parts."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from smart_agent.attachments.files import Attachment
from smart_agent.llm.context import IMAGE_TOKENS, LETTERS_PER_TOKEN, estimate_tokens

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
    """The tokens (by the context's estimate) text files may take next to the user's text and images in
    a message of at most `input_chars` plain characters (smart_agent/llm/context.py `input_limit`)."""
    images = sum(1 for attachment in attachments if attachment.is_image)
    return max(0, input_chars // LETTERS_PER_TOKEN - estimate_tokens(text) - images * IMAGE_TOKENS)


def _fitting(body: str, tokens: int) -> int:
    """The longest prefix of `body` (in characters) whose estimate is at most `tokens`."""
    low, high = 0, len(body)
    while low < high:
        middle = (low + high + 1) // 2
        if estimate_tokens(body[:middle]) <= tokens:
            low = middle
        else:
            high = middle - 1
    return low


def user_content(text: str, attachments: Sequence[Attachment], room: int) -> UserContent:
    """The user's text followed by each text file (`room` tokens of files in all, the rest cut with a
    notice), then the images as `image_url` parts; plain text when there is no image."""
    notices: list[str] = []
    pieces = [text] if text else []
    for attachment in attachments:
        if attachment.is_image:
            continue
        body = attachment.text
        frame = estimate_tokens(marked(attachment.name, f"\n{CUT_NOTE}"))  # the marks around a cut file
        if estimate_tokens(body) + frame > room:
            kept = _fitting(body, max(0, room - frame))
            notices.append(
                f"{attachment.name} was cut to {kept:,} of its {len(body):,} characters to fit the "
                "model's context."
            )
            body = f"{body[:kept]}\n{CUT_NOTE}"
        piece = marked(attachment.name, body)
        room = max(0, room - estimate_tokens(piece))
        pieces.append(piece)
    joined = "\n\n".join(pieces)
    images = [attachment for attachment in attachments if attachment.is_image]
    if not images:
        return UserContent(joined, joined, notices)
    parts: list[dict[str, Any]] = [{"type": "text", "text": joined}] if joined else []
    parts.extend({"type": "image_url", "image_url": {"url": data_url(image)}} for image in images)
    return UserContent(parts, joined, notices)
