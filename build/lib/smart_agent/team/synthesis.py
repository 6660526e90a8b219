"""What the synthesiser is asked: the user's conversation, and every member's notes in its system prompt."""

from __future__ import annotations

from collections.abc import Sequence

from smart_agent.agent.loop import Message
from smart_agent.llm.context import estimate_tokens

NOTES_HEADING = "# The team's notes on the user's latest message"


def cut_to(text: str, tokens: int) -> str:
    """`text`, cut at the end to about `tokens` (smart-agent's estimate), saying so."""
    estimate = estimate_tokens(text)
    if estimate <= tokens:
        return text
    keep = max(0, len(text) * tokens // estimate - 40)
    return f"{text[:keep]}… (cut: {len(text) - keep:,} more characters)"


def notes_text(notes: Sequence[tuple[str, str, str | None]], budget_tokens: int) -> str:
    """The members' notes as the synthesiser reads them: (name, text, error or None) each, every
    member's cut to an equal share of `budget_tokens` so the request fits the model's context."""
    share = budget_tokens // max(1, len(notes))
    parts = [NOTES_HEADING]
    failed = [name for name, _, error in notes if error is not None]
    if failed:
        parts.append(f"These members failed, so their notes are missing or incomplete: {', '.join(failed)}.")
    for name, text, error in notes:
        heading = f"## {name}" + (f" (failed: {error})" if error is not None else "")
        parts.append(f"{heading}\n\n{cut_to(text.strip(), share) or '(no notes)'}")
    return "\n\n".join(parts)


def synthesis_messages(
    prompt: str,
    conversation: Sequence[Message],
    notes: Sequence[tuple[str, str, str | None]],
    budget_tokens: int,
) -> list[Message]:
    """The synthesiser's request: its prompt and the notes (within `budget_tokens`), then the
    conversation without system messages."""
    system = {"role": "system", "content": f"{prompt}\n\n{notes_text(notes, budget_tokens)}"}
    return [system, *(dict(m) for m in conversation if m.get("role") != "system")]
