"""Where a growing markdown reply can be cut into successive messages without changing how it
renders: at a blank line outside code fences that is not followed by an indented line."""

from __future__ import annotations

import re
from collections.abc import Iterable

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)$")


class CutFinder:
    """Reads a segment's text as it grows and says where it may end.

    Work per token is proportional to the token, whatever the reply's length: it keeps only the
    pieces of the line not yet complete (each complete line is read once) and a running length.
    A cut is only proposed once the segment holds `threshold` characters, at the first safe blank
    line after that, and only when the first character of the next line has arrived (so an
    indented continuation is seen).
    """

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.length = 0  # characters added to this segment
        self._line: list[str] = []  # the pieces of the line not yet complete
        self._line_start = 0  # its offset in the segment
        self._lead = ""  # its first character after any "\r", once it has one
        self._lead_blank = True  # whether it holds only " ", "\t" and "\r" so far
        self._rest: list[str] = []  # after a cut: the text from `_line_start` to the end
        self._fence: str | None = None  # the open fence's marker, e.g. "```"
        self._candidate: int | None = None  # offset just after a safe blank line
        self._shown = False  # a non-blank line is complete: a cut would not leave an empty message

    def add(self, token: str) -> int | None:
        """Append `token`; return the offset in this segment where it should end, if any."""
        self.length += len(token)
        if self.threshold <= 0:
            return None
        position = 0
        while True:
            newline = token.find("\n", position)
            if newline == -1:
                break
            self._line.append(token[position:newline])
            raw = "".join(self._line)
            start = self._line_start
            self._line, self._line_start = [], start + len(raw) + 1
            self._reset_lead()
            position = newline + 1
            cut = self._complete_line(raw.rstrip("\r"), start)
            if cut is not None:
                # the cut is at this line's start: keep the line and the token's unread rest
                self._rest, self._line_start = [raw, "\n", token[position:]], start
                return cut
        rest = token[position:]
        if rest:
            self._line.append(rest)
            self._read_lead(rest)
        cut = self._decide()
        if cut is not None:
            self._rest = self._line
        return cut

    def restart(self, offset: int) -> int | None:
        """Begin a new segment with the text after `offset` (at or after the cut just taken);
        like `add`, say where that text may already be cut."""
        if offset < self._line_start:
            raise ValueError(f"a segment restarts at or after its cut ({self._line_start}), not {offset}")
        tail = "".join(self._rest)[offset - self._line_start :]
        self.length, self._line, self._line_start, self._rest = 0, [], 0, []
        self._fence, self._candidate, self._shown = None, None, False
        self._reset_lead()
        return self.add(tail) if tail else None

    def _reset_lead(self) -> None:
        self._lead, self._lead_blank = "", True

    def _read_lead(self, piece: str) -> None:
        """Note what the start of the incomplete line says about indentation: O(piece)."""
        if not self._lead:
            self._lead = piece.lstrip("\r")[:1]
        if self._lead_blank and piece.strip(" \t\r"):
            self._lead_blank = False

    def _complete_line(self, line: str, start: int) -> int | None:
        if self._fence is not None:
            match = _FENCE.match(line)
            if match and match.group(1)[0] == self._fence[0] and len(match.group(1)) >= len(self._fence):
                if not match.group(2).strip():
                    self._fence = None
            return None
        if self._candidate is not None and line.strip(" \t\r"):
            cut = self._judge(line.lstrip("\r")[:1])
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

    def _decide(self) -> int | None:
        """With a candidate pending, judge the incomplete line by its first character."""
        if self._candidate is None or self._lead_blank:
            return None  # nothing, or only white space so far: indentation or a blank line, wait
        return self._judge(self._lead)

    def _judge(self, lead: str) -> int | None:
        if lead in {" ", "\t"}:
            self._candidate = None  # indented: a list item's continuation or indented code
            return None
        cut, self._candidate = self._candidate, None
        return cut


def split_segments(tokens: Iterable[str], threshold: int) -> list[str]:
    """Cut a token stream into segments, as the streaming core does while it streams."""
    finder = CutFinder(threshold)
    segments: list[str] = []
    text = ""  # this segment's text: a copy per token is fine in this reference reader
    for token in tokens:
        text += token
        cut = finder.add(token)
        while cut is not None:
            segments.append(text[:cut])
            text = text[cut:]
            cut = finder.restart(cut)
    if text or not segments:
        segments.append(text)
    return segments
