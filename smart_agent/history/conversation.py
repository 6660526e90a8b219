"""The conversation the model sees, rebuilt from a stored thread (for `on_chat_resume`)."""

from collections.abc import Iterable, Mapping
from typing import Any

from chainlit.step import StepDict
from chainlit.types import ThreadDict

from smart_agent.agent.tools import parse_arguments

Message = dict[str, Any]

TOOL_ARGUMENTS_KEY = "arguments"
"""A tool step's metadata key with the model's arguments as sent (web/ui.py writes it)."""

TEAM_STEP_KEY = "team"
"""Metadata key of the Team profile's steps (web/team.py): the members' notes, never the model's."""

THINKING_STEP_KEY = "thinking"
"""Metadata key of a step holding the model's thinking (web/thinking.py): shown, never sent back."""

SKIPPED_AUTHORS = frozenset({"stats", "note"})
"""Assistant-side messages that are page decoration, never part of the model's conversation."""

MODEL_TEXT_KEY = "model_text"
"""A user message's metadata key with the text the model got: the words and the attached text files
(web/app.py writes it); its images come back from the history's attachments (`images`)."""

STOPPED_MARKER = "Task manually stopped."
"""What Chainlit 2.12 sends, and stores, when the stop button is pressed (socket.py `stop`)."""


def model_messages(
    thread: ThreadDict, system_prompt: str | None = None, stored: Mapping[str, str] | None = None
) -> list[Message]:
    """System prompt, then per turn: the user's message (with its images as parts when `stored` maps
    their element ids to data URLs), the reply's text joined across segments, and tool calls with their
    results, in the shapes the agent loop keeps them in."""
    messages: list[Message] = [{"role": "system", "content": system_prompt}] if system_prompt else []
    images: dict[str, list[tuple[str, str | None]]] = {}
    for element in thread.get("elements") or []:
        if element.get("type") == "image" and element.get("forId"):
            found = (stored or {}).get(element["id"])
            images.setdefault(str(element["forId"]), []).append((element.get("name") or "image", found))
    turn: list[StepDict] = []
    for step in thread["steps"]:
        if step["type"] == "user_message":
            messages.extend(_turn(turn, images))
            turn = [step]
        elif turn:
            turn.append(step)
    messages.extend(_turn(turn, images))
    return messages


def _user_content(step: StepDict, images: dict[str, list[tuple[str, str | None]]]) -> str | list[Message]:
    text = (step.get("metadata") or {}).get(MODEL_TEXT_KEY)
    text = text if isinstance(text, str) else step.get("output") or ""
    attached = images.get(step["id"]) or []
    lost = [name for name, url in attached if url is None]
    if lost:  # stored without its bytes (history from before attachments were kept): named only
        text += f"\n\n[Images attached earlier, no longer available: {', '.join(lost)}]"
    urls = [url for _, url in attached if url is not None]
    if not urls:
        return text
    parts: list[Message] = [{"type": "text", "text": text}] if text else []
    return parts + [{"type": "image_url", "image_url": {"url": url}} for url in urls]


def _turn(steps: list[StepDict], images: dict[str, list[tuple[str, str | None]]]) -> list[Message]:
    if not steps:
        return []
    user, rest = steps[0], steps[1:]
    replied: list[Message] = []
    text: list[str] = []
    calls: list[StepDict] = []

    def flush() -> None:
        if calls:
            replied.append(
                {"role": "assistant", "content": "".join(text) or None, "tool_calls": _calls(calls)}
            )
            replied.extend(
                {"role": "tool", "tool_call_id": _call_id(call), "content": call.get("output") or ""}
                for call in calls
            )
        elif text:
            replied.append({"role": "assistant", "content": "".join(text)})
        text.clear()
        calls.clear()

    failed = False
    for step in rest:
        metadata = step.get("metadata") or {}
        if metadata.get(TEAM_STEP_KEY) or metadata.get(THINKING_STEP_KEY):
            continue  # only the answer is part of the conversation: not a team's notes, not thinking
        if step["type"] == "tool":
            calls.append(step)
        elif step["type"] == "assistant_message" and not _decoration(step):
            if step.get("isError"):
                failed = True
                continue
            if calls:  # text after tool results starts the next round
                flush()
            text.append(step.get("output") or "")
    flush()
    # The agent loop drops a user message whose turn failed before any answer (agent/loop.py).
    if failed and not replied:
        return []
    return [{"role": "user", "content": _user_content(user, images)}, *replied]


def _decoration(step: StepDict) -> bool:
    # The stop marker is a message without a parent; a reply segment is a child of the turn's run.
    stop_marker = step.get("output") == STOPPED_MARKER and not step.get("parentId")
    return step.get("name") in SKIPPED_AUTHORS or stop_marker


def _calls(steps: Iterable[StepDict]) -> list[Message]:
    return [
        {
            "id": _call_id(step),
            "type": "function",
            "function": {"name": step["name"], "arguments": _arguments(step)},
        }
        for step in steps
    ]


def _call_id(step: StepDict) -> str:
    # The model's own call id is not stored; any id unique in the conversation pairs call and result.
    return f"call_{step['id']}"


def _arguments(step: StepDict) -> str:
    raw = (step.get("metadata") or {}).get(TOOL_ARGUMENTS_KEY)
    if not isinstance(raw, str):
        return "{}"
    try:
        parse_arguments(raw)
    except ValueError:  # refused arguments are kept as {} (agent/loop.py `_history_call`)
        return "{}"
    return raw
