"""The model's thinking on the page: a "Thinking" step above the answer, streamed while the model
thinks, then folded with its duration ("Thought for 12 s") when the answer or a tool call starts.

The step streams through the same batching and page-wide budget (the turn's pacer) as the reply. It
is a tool-type step (the app's `cot = "tool_call"` shows only those), marked in its metadata so the
conversation rebuilt from history leaves it out: thinking is never sent back to the model. With
"Show thinking" off the step shows no text, only "Thinking… 12 s" while it lasts.
"""

from __future__ import annotations

from typing import Any

import chainlit as cl

from smart_agent.config import Settings
from smart_agent.history.conversation import THINKING_STEP_KEY
from smart_agent.streaming import Pacer, SmoothStreamWrapper
from smart_agent.streaming.batcher import policy_for
from smart_agent.streaming.clock import Clock, MonotonicClock
from smart_agent.web.resync import Turn

THINKING = "Thinking"
INDICATOR_EVERY = 1.0  # seconds between updates of the "Thinking… N s" line (thinking hidden)


def thought_for(seconds: float) -> str:
    """The folded step's name: "Thought for 12 s" (one decimal below 10 s)."""
    return f"Thought for {seconds:.1f} s" if seconds < 10 else f"Thought for {seconds:.0f} s"


class StepText:
    """A step seen as a message for SmoothStreamWrapper: its output is the content."""

    def __init__(self, step: cl.Step) -> None:
        self.step = step

    @property
    def content(self) -> str:
        return str(self.step.output)

    @content.setter
    def content(self, value: str) -> None:
        self.step.output = value

    async def stream_token(self, token: str, is_sequence: bool = False) -> None:
        await self.step.stream_token(token, is_sequence)

    async def send(self) -> Any:
        return await self.step.send()

    async def update(self) -> Any:
        return await self.step.update()

    async def remove(self) -> Any:
        return await self.step.remove()


class ThinkingSteps:
    """One step per stretch of thinking in a turn (a turn with tool rounds may think again)."""

    def __init__(
        self,
        turn: Turn,
        settings: Settings,
        pacer: Pacer | None = None,
        clock: Clock | None = None,
        parent: cl.Step | None = None,
    ) -> None:
        self._turn = turn
        self._settings = settings
        self._pacer = pacer
        self._clock = clock or MonotonicClock()
        self._parent = parent
        self._show = settings.show_thinking
        self._step: cl.Step | None = None
        self._wrapper: SmoothStreamWrapper | None = None
        self._text: list[str] = []
        self._started = 0.0
        self._shown_at = 0.0
        self._answer_since: float | None = None  # when the answer's text began, since the last thinking

    @property
    def thinking(self) -> bool:
        """Whether a step is open (the model is thinking now)."""
        return self._step is not None

    async def add(self, text: str) -> None:
        """More thinking: into the open step, opening one if needed."""
        if not text:
            return
        if self._step is None:
            await self._open()
        self._text.append(text)
        if self._wrapper is not None:
            await self._wrapper.stream_token(text)
        else:
            await self._tick()

    async def moved(self, text: str) -> None:
        """Text shown as the answer was thinking after all: it goes into a step, in one update; the
        thinking started when that text did."""
        if not text:
            return
        if self._step is None:
            await self._open(since=self._answer_since)
        self._answer_since = None
        self._text.append(text)
        if self._wrapper is not None and self._step is not None:
            self._wrapper.set_content("".join(self._text))
            await self._step.update()

    async def answer(self) -> None:
        """Answer text arrives: fold the thinking; a lone `</think>` may yet move that text here."""
        await self._fold()
        if self._answer_since is None:
            self._answer_since = self._clock.now()

    async def done(self) -> None:
        """The thinking ended otherwise (a tool call starts, or the turn ends): fold the step."""
        self._answer_since = None
        await self._fold()

    async def _fold(self) -> None:
        step, wrapper = self._step, self._wrapper
        if step is None:
            return
        self._step = self._wrapper = None
        if wrapper is not None:
            wrapper.stop()  # what it still buffers goes out in the step's final update, not before it
        step.output = "".join(self._text) if self._show else ""
        self._text = []
        step.name = thought_for(self._clock.now() - self._started)
        step.end = cl.utils.utc_now()
        await step.update()

    async def _open(self, since: float | None = None) -> None:
        parent = self._parent or cl.context.current_step
        # Open while the model thinks, folded by the page once it has an `end` (autoCollapse); a
        # `start` is needed, or the page shows it as done at once.
        step = cl.Step(
            name=THINKING,
            type="tool",
            parent_id=parent.id if parent else None,
            default_open=self._show,
            auto_collapse=True,
        )
        step.metadata = {THINKING_STEP_KEY: True}
        step.start = cl.utils.utc_now()
        self._started = self._shown_at = self._clock.now() if since is None else since
        self._step = step
        self._turn.add(step)
        await step.send()
        if self._show:
            self._wrapper = SmoothStreamWrapper(
                StepText(step), policy_for(self._settings), self._clock, "thinking", self._pacer
            )

    async def _tick(self) -> None:
        """Thinking hidden: say for how long it has lasted, at most every INDICATOR_EVERY s."""
        now = self._clock.now()
        if self._step is None or now - self._shown_at < INDICATOR_EVERY:
            return
        self._shown_at = now
        self._step.name = f"{THINKING}… {now - self._started:.0f} s"
        await self._step.update()
