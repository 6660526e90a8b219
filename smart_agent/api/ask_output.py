"""What `smart-agent ask` prints: the answer on stdout, exactly; thinking and notes on stderr."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

DIM: Final = "\x1b[2m"
PLAIN: Final = "\x1b[0m"


@dataclass
class Printer:
    """The reply on `out` as it arrives (only its text: stdout is the exact reply); the rest on `err`."""

    out: TextIO
    err: TextIO
    quiet: bool = False
    show_thinking: bool = False
    clock: Callable[[], float] = time.monotonic
    text: str = ""
    """The reply as the server has it: text moved to the thinking is left out (stdout still has it)."""
    reasoning: str = ""
    # (length of the text before a token event, when it arrived): when moved thinking began.
    _arrivals: list[tuple[int, float]] = field(default_factory=list, repr=False)
    _thought: tuple[float, float] | None = field(default=None, repr=False)  # first and last thinking
    _out_tail: str = field(default="", repr=False)  # the last character written to `out`
    _thinking_line: bool = field(default=False, repr=False)  # shown thinking not ended by a newline

    def token(self, text: str) -> None:
        """Append reply text."""
        if text:
            self._end_thinking()
            self._arrivals.append((len(self.text), self.clock()))
            self._write(text)

    def thinking(self, text: str) -> None:
        """Append thinking: shown on `err` with --show-thinking, else only timed."""
        if not text:
            return
        now = self.clock()
        self._thought = (self._thought[0] if self._thought else now, now)
        self.reasoning += text
        if self.show_thinking:
            self.err.write(f"{DIM}{text}{PLAIN}" if self.err.isatty() else text)
            self.err.flush()
            self._thinking_line = not text.endswith("\n")

    def moved(self, chars: int) -> None:
        """The last `chars` characters of the reply were thinking: say so (stdout cannot take them back)."""
        kept = max(0, len(self.text) - chars)
        if kept == len(self.text):
            return
        self.note(
            f"(the last {chars} characters above were the model's thinking; start the app with "
            "--think-tags prefilled for this model)"
        )
        self.reasoning += self.text[kept:]
        self.text = self.text[:kept]
        # The thinking began when its first character arrived; thinking that follows continues it.
        began = next((at for start, at in reversed(self._arrivals) if start <= kept), self.clock())
        self._arrivals = [(start, at) for start, at in self._arrivals if start < kept]
        self._thought = (began, self.clock())

    def snapshot(self, text: str, reasoning: str = "") -> None:
        """The server's text and thinking so far replace ours: print what we lack, or all again."""
        if reasoning.startswith(self.reasoning):
            self.thinking(reasoning[len(self.reasoning) :])
        elif self.show_thinking:
            self.note("the thinking so far was replaced by the server's copy; it follows in full")
            self.reasoning = ""
            self.thinking(reasoning)
        else:
            self.reasoning = reasoning
        if text.startswith(self.text):
            # The usual case: ask resumed from before the events the server still keeps, so the
            # snapshot holds what was printed plus what was missed; stdout stays the exact reply.
            self.token(text[len(self.text) :])
            return
        # Printed text cannot be taken back: say so and print the server's text in full.
        self._end_thinking()
        self.note("the reply so far was replaced by the server's copy; it follows in full")
        self._write("\n")
        self.text = ""
        self._arrivals = [(0, self.clock())]
        self._write(text)

    def tool_call(self, data: dict[str, Any]) -> None:
        """A short line naming the tool and its arguments."""
        self._end_thinking()
        self.note(f"tool {data.get('name', '?')}({short(str(data.get('arguments', '')))})")

    def tool_result(self, data: dict[str, Any]) -> None:
        """A short line with the tool's answer (or failure)."""
        failed = "failed: " if data.get("is_error") else ""
        self.note(f"tool {data.get('name', '?')} -> {failed}{short(str(data.get('result', '')))}")

    def note(self, line: str) -> None:
        """One line on `err`, unless quiet."""
        if not self.quiet:
            self.line(line)

    def line(self, line: str) -> None:
        """One line on `err`, even when quiet; on a fresh line if the thinking's or the reply's is open."""
        if self._thinking_line:
            self._thinking_line = False
            line = "\n" + line
        elif self._out_tail not in ("", "\n") and self.err.isatty() and self.out.isatty():
            line = "\n" + line  # the same terminal: do not glue the note to the reply's words
        self.err.write(line + "\n")
        self.err.flush()

    def finish(self) -> None:
        """End the thinking, and the reply's line in a terminal; a pipe gets the exact text."""
        self._end_thinking()
        if self._out_tail not in ("", "\n") and self.out.isatty():
            self.out.write("\n")
            self.out.flush()

    def _write(self, text: str) -> None:
        if text:
            self.text += text
            self._out_tail = text[-1]
            self.out.write(text)
            self.out.flush()

    def _end_thinking(self) -> None:
        """Before the answer, a tool call or the end: how long the model thought, in one line, or
        the newline that ends the thinking shown."""
        if self._thought is None:
            return
        first, last = self._thought
        self._thought = None
        if not self.show_thinking:
            self.note(f"thought for {seconds(last - first)} s")
        elif self._thinking_line:
            self._thinking_line = False
            self.err.write("\n")
            self.err.flush()


def seconds(elapsed: float) -> str:
    """Whole seconds from 10 s on ("12"), one decimal below ("3.4")."""
    return f"{elapsed:.0f}" if elapsed >= 9.95 else f"{elapsed:.1f}"


def short(text: str, limit: int = 80) -> str:
    """`text` on one line, cut to `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
