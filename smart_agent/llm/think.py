"""Thinking written inline as `<think>…</think>` in a reply's content, split from the answer as it streams.

Servers without a reasoning parser send a reasoning model's thinking inside `content`. Only a
leading think block is thinking: a `<think>` later in the answer (in a code block, say) is text. The
tags may be split across chunks at any character, and a cut stream may leave the block unclosed.

Some chat templates put the opening `<think>` into the prompt (DeepSeek-R1's distills), so the reply
starts with thinking and only `</think>` ends it. With THINK_AUTO such a reply first streams as
text; when its `</think>` arrives, a `Moved` part says that the text given so far was thinking. A
`</think>` counts as that end only before the reply's first code fence or `<think>`, and when no
backtick is just before it (so an answer that explains the tag stays text). THINK_PREFILLED, for
models known to do this, takes the reply as thinking from its first character, so nothing moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

THINK_AUTO: Final = "auto"
THINK_PREFILLED: Final = "prefilled"
THINK_NONE: Final = "none"
THINK_MODES: Final = (THINK_AUTO, THINK_PREFILLED, THINK_NONE)
"""auto: a leading `<think>` block (or a lone `</think>`) marks thinking; prefilled: the reply starts
thinking; none: `<think>` tags are text."""

OPEN: Final = "<think>"
CLOSE: Final = "</think>"
FENCE: Final = "```"


@dataclass(frozen=True)
class Reasoning:
    """Thinking text."""

    text: str


@dataclass(frozen=True)
class Text:
    """Answer text."""

    text: str


@dataclass(frozen=True)
class Moved:
    """The last `chars` characters of text given so far were thinking (a `</think>` without `<think>`)."""

    chars: int


Part = Reasoning | Text | Moved


def _partial_suffix(data: str, *marks: str) -> int:
    """The length of the longest end of `data` that is the start of one of `marks` (held back)."""
    longest = 0
    for mark in marks:
        # Only an end that starts with the mark's first character can be the mark's start: find
        # those (on most tokens of a reply, none) rather than try each length.
        at = data.find(mark[0], max(len(data) - len(mark) + 1, 0))
        while at >= 0 and len(data) - at > longest:
            if mark.startswith(data[at:]):
                longest = len(data) - at
                break
            at = data.find(mark[0], at + 1)
    return longest


class ThinkSplitter:
    """Splits one model turn's content into thinking and answer, chunk by chunk."""

    def __init__(self, mode: str = THINK_AUTO) -> None:
        if mode not in THINK_MODES:
            raise ValueError(f"think mode must be one of {', '.join(THINK_MODES)}")
        self._mode = mode
        # start: before the first non-blank characters; thinking; after (blanks after `</think>`);
        # open: answer text that a lone `</think>` may still turn into thinking; answer.
        self._state = "answer" if mode == THINK_NONE else "start"
        self._held = ""
        self._open_chars = 0  # text given in the `open` state, which a `</think>` would move
        self._last = ""  # the last character given in the `open` state

    @property
    def thinking(self) -> bool:
        """Whether the content is inside the think block now."""
        return self._state == "thinking"

    def feed(self, text: str) -> list[Part]:
        """The parts `text` completes; a possible tag's start is held back until it is known."""
        if self._state == "answer":
            return [Text(text)] if text else []
        data, self._held = self._held + text, ""
        parts: list[Part] = []
        while data:
            data = self._step(data, parts)
        return parts

    def end(self) -> list[Part]:
        """The parts still held back when the content ends (an unclosed block stays thinking)."""
        held, self._held = self._held, ""
        if not held or self._state == "after":
            return []
        if self._state == "thinking" or (self._state == "start" and self._mode == THINK_PREFILLED):
            return [Reasoning(held)]
        return [Text(held)]

    def _step(self, data: str, parts: list[Part]) -> str:
        """Consume what the current state can of `data`; return the rest for the next state."""
        if self._state == "start":
            return self._start(data, parts)
        if self._state == "thinking":
            return self._thinking(data, parts)
        if self._state == "after":
            rest = data.lstrip()
            if rest:
                self._state = "answer"
                parts.append(Text(rest))
            return ""
        if self._state == "open":
            return self._open(data, parts)
        parts.append(Text(data))
        return ""

    def _start(self, data: str, parts: list[Part]) -> str:
        stripped = data.lstrip()
        if stripped.startswith(OPEN):
            self._state = "thinking"
            return stripped[len(OPEN) :]
        if OPEN.startswith(stripped):  # blanks, or the tag's start: wait for more
            self._held = data
            return ""
        if self._mode == THINK_PREFILLED:
            self._state = "thinking"
            return stripped
        self._state = "open"
        return data

    def _thinking(self, data: str, parts: list[Part]) -> str:
        end = data.find(CLOSE)
        if end >= 0:
            if end:
                parts.append(Reasoning(data[:end]))
            self._state = "after"
            return data[end + len(CLOSE) :]
        keep = _partial_suffix(data, CLOSE)
        if keep:
            self._held = data[-keep:]
        if len(data) > keep:
            parts.append(Reasoning(data[: len(data) - keep]))
        return ""

    def _open(self, data: str, parts: list[Part]) -> str:
        # A code fence or a `<think>` in the answer: from there on a `</think>` is the answer's.
        marks = [at for at in (data.find(FENCE), data.find(OPEN)) if at >= 0]
        fence = min(marks, default=-1)
        close = data.find(CLOSE)
        while close >= 0 and (data[close - 1] if close else self._last) == "`":  # in inline code: text
            close = data.find(CLOSE, close + 1)
        if close >= 0 and (fence < 0 or close < fence):
            if self._open_chars:
                parts.append(Moved(self._open_chars))
            if close:
                parts.append(Reasoning(data[:close]))
            self._open_chars = 0
            self._state = "after"
            return data[close + len(CLOSE) :]
        if fence >= 0:
            self._state = "answer"
            return data
        keep = _partial_suffix(data, CLOSE, FENCE, OPEN)
        if keep:
            self._held = data[-keep:]
        given = data[: len(data) - keep]
        if given:
            self._open_chars += len(given)
            self._last = given[-1]
            parts.append(Text(given))
        return ""
