"""What the synthesiser is asked: the user's conversation, and every member's notes in its system prompt."""

from __future__ import annotations

from collections.abc import Sequence

from smart_agent.agent.loop import Message

NOTES_HEADING = "# The team's notes on the user's latest message"


def notes_text(notes: Sequence[tuple[str, str, str | None]]) -> str:
    """The members' notes as the synthesiser reads them: (name, text, error or None) each."""
    parts = [NOTES_HEADING]
    failed = [name for name, _, error in notes if error is not None]
    if failed:
        parts.append(f"These members failed, so their notes are missing or incomplete: {', '.join(failed)}.")
    for name, text, error in notes:
        heading = f"## {name}" + (f" (failed: {error})" if error is not None else "")
        parts.append(f"{heading}\n\n{text.strip() or '(no notes)'}")
    return "\n\n".join(parts)


def synthesis_messages(
    prompt: str, conversation: Sequence[Message], notes: Sequence[tuple[str, str, str | None]]
) -> list[Message]:
    """The synthesiser's request: its prompt and the notes, then the conversation without system messages."""
    system = {"role": "system", "content": f"{prompt}\n\n{notes_text(notes)}"}
    return [system, *(dict(m) for m in conversation if m.get("role") != "system")]
