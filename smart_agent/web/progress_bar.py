"""The slim progress bar of a long reply on the chat page: the progress estimate drawn as one line."""

from __future__ import annotations

from dataclasses import dataclass

from smart_agent.streaming.estimate import ReplyLengths
from smart_agent.streaming.progress import ReplyProgress

LONG_REPLY_SECONDS = 3.0
"""A reply expected to take less than this gets no bar: it is over before a bar would say anything."""
CELLS = 24
"""The bar's width in characters; the bar-only line changes at most once per cell (a bounded count)."""
SURE_ENOUGH = 0.3
"""Below this confidence the bar shows no percentage or time left: the length is a guess."""
FILLED, EMPTY, UNKNOWN = "━", "─", "╌"


@dataclass(frozen=True)
class BarLine:
    """What the bar shows now, and the part whose change is worth a page update."""

    text: str
    key: tuple[bool, int]  # (whether a percentage is shown, filled cells)


class ReplyHistory:
    """This process's recent reply lengths and rates per model, for the chat page's estimates."""

    def __init__(self) -> None:
        self.lengths = ReplyLengths()
        self._rates: dict[str, float] = {}

    def learn(self, model: str, progress: ReplyProgress) -> None:
        """Remember a reply that ended with an answer: its length and rate."""
        self.lengths.record(model, progress.tokens)
        if progress.tokens_per_second > 0:
            self._rates[model] = progress.tokens_per_second

    def expects_long(self, model: str) -> bool:
        """Whether `model`'s next reply is expected to take LONG_REPLY_SECONDS or more (by its history)."""
        rate = self._rates.get(model)
        expected, _ = self.lengths.expected(model)
        return rate is not None and expected / rate >= LONG_REPLY_SECONDS


PAGE_HISTORY = ReplyHistory()
"""Every chat of this process learns from the replies of every other (like the runs API's estimate)."""


class ReplyBar:
    """Decides whether a reply is long and draws its bar from the estimate of each progress report."""

    def __init__(self, model: str, history: ReplyHistory | None = None) -> None:
        self._model = model
        self._history = history or PAGE_HISTORY
        self.shown = False  # once long, a reply keeps its bar until it ends

    def expected_long(self) -> bool:
        """Whether the history says this reply will be long, before it starts."""
        return self._history.expects_long(self._model)

    def line(self, progress: ReplyProgress) -> BarLine | None:
        """The bar for a running reply, or None while the reply is not (expected to be) long."""
        estimate = self._history.lengths.estimate(self._model, progress.tokens, progress.tokens_per_second)
        rate = estimate.tokens_per_second
        if not self.shown and not (rate > 0 and estimate.expected_tokens / rate >= LONG_REPLY_SECONDS):
            return None
        self.shown = True
        return draw(estimate.percent_complete, estimate.seconds_remaining, estimate.confidence)

    def ended(self, progress: ReplyProgress) -> None:
        """Learn from a reply that ended with an answer (a stopped or failed one teaches nothing)."""
        self._history.learn(self._model, progress)


WAITING_LINE = f"{UNKNOWN * CELLS}  waiting for the model…"
"""The bar-only line before the reply's first estimate."""


def draw(percent: float, seconds_remaining: float | None, confidence: float) -> BarLine:
    """The bar's line: filled cells and a percentage when the estimate is sure enough, else a dashed track."""
    if confidence < SURE_ENOUGH or seconds_remaining is None:
        return BarLine(f"{UNKNOWN * CELLS}  estimating the length…", (False, 0))
    filled = min(CELLS, int(percent * CELLS / 100))
    left = f"about {seconds_remaining:.0f} s left" if seconds_remaining >= 1 else "almost done"
    return BarLine(f"{FILLED * filled}{EMPTY * (CELLS - filled)}  {percent:.0f} % · {left}", (True, filled))
