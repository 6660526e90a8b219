"""Where a growing markdown reply can be cut into successive messages without changing how it
renders: at a blank line outside code fences that is not followed by an indented line."""

from __future__ import annotations

import re
from collections.abc import Iterable

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)$")


class CutFinder:
    """Reads a segment's text as it grows and says where it may end.

    Scans each line once: O(length) over the whole reply. A cut is only proposed once the
    segment holds `threshold` characters, at the first safe blank line after that, and only when
    the first character of the next line has arrived (so an indented continuation is seen).
    """

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.text = ""
        self._line_start = 0  # start of the first line not yet complete
        self._fence: str | None = None  # the open fence's marker, e.g. "```"
        self._candidate: int | None = None  # offset just after a safe blank line
        self._shown = False  # a non-blank line is complete: a cut would not leave an empty message

    def add(self, token: str) -> int | None:
        """Append `token`; return the offset in `text` where the segment should end, if any."""
        self.text += token
        if self.threshold <= 0:
            return None
        text = self.text
        while True:
            newline = text.find("\n", self._line_start)
            if newline == -1:
                break
            line = text[self._line_start : newline].rstrip("\r")
            start, self._line_start = self._line_start, newline + 1
            cut = self._complete_line(line, start)
            if cut is not None:
                return cut
        return self._decide(text[self._line_start :])

    def restart(self, offset: int) -> int | None:
        """Begin a new segment with the text after `offset` (the cut just taken); like `add`, say
        where that text may already be cut."""
        rest = self.text[offset:]
        self.text, self._line_start, self._fence, self._candidate = "", 0, None, None
        self._shown = False
        return self.add(rest) if rest else None

    def _complete_line(self, line: str, start: int) -> int | None:
        if self._fence is not None:
            match = _FENCE.match(line)
            if match and match.group(1)[0] == self._fence[0] and len(match.group(1)) >= len(self._fence):
                if not match.group(2).strip():
                    self._fence = None
            return None
        cut = self._decide(line)
        if cut is not None:
            return cut
        if not line.strip():
            if self._shown and start + len(line) >= self.threshold:
                self._candidate = self._line_start
            return None
        self._shown = True
        match = _FENCE.match(line)
        if match and not (match.group(1)[0] == "`" and "`" in match.group(2)):
            self._fence = match.group(1)
        return None

    def _decide(self, line_so_far: str) -> int | None:
        """With a candidate pending, judge the next line by its first character."""
        if self._candidate is None or not line_so_far:
            return None
        stripped = line_so_far.lstrip(" \t\r")
        if not stripped:
            return None  # only white space so far: indentation or a blank line, wait
        if len(stripped) != len(line_so_far.lstrip("\r")):
            self._candidate = None  # indented: a list item's continuation or indented code
            return None
        cut, self._candidate = self._candidate, None
        return cut


def split_segments(tokens: Iterable[str], threshold: int) -> list[str]:
    """Cut a token stream into segments, as the streaming core does while it streams."""
    finder = CutFinder(threshold)
    segments: list[str] = []
    for token in tokens:
        cut = finder.add(token)
        while cut is not None:
            segments.append(finder.text[:cut])
            cut = finder.restart(cut)
    if finder.text or not segments:
        segments.append(finder.text)
    return segments
