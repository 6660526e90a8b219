"""Live progress of a reply (tokens, tokens/s) and its summary, reported a few times a second."""

from __future__ import annotations

from dataclasses import dataclass

from smart_agent.streaming.clock import Clock, MonotonicClock

REPORT_EVERY = 0.5  # seconds: the display must not become a per-token event stream


@dataclass(frozen=True)
class ReplyProgress:
    """A snapshot of one reply's figures."""

    tokens: int
    elapsed: float
    first_token: float | None
    tokens_per_second: float
    ui_events: int
    done: bool = False
    stopped: bool = False

    @property
    def events_saved(self) -> int:
        """UI events batching avoided, against one event per token."""
        return max(0, self.tokens - self.ui_events)

    def text(self) -> str:
        """The line a reader sees: tokens, speed, then the reply's time (`412 tokens · 38 tok/s · 2.1 s`)."""
        unit = "token" if self.tokens == 1 else "tokens"
        figures = f"{self.tokens:,} {unit} · {self.tokens_per_second:,.0f} tok/s"
        if not (self.done or self.stopped):
            return f"Streaming · {figures}"
        return f"{'Stopped · ' if self.stopped else ''}{figures} · {self.elapsed:.1f} s"

    def details(self) -> str:
        """With the developer's figures, for --debug's log: time to first token, UI events batching saved."""
        first = "—" if self.first_token is None else f"{self.first_token:.2f} s"
        return (
            f"{self.text()} · first token {first} · "
            f"{self.ui_events:,} UI events ({self.events_saved:,} saved by batching)"
        )


class ReplyMeter:
    """Counts a reply's tokens and says when a progress report is due."""

    def __init__(self, clock: Clock | None = None, report_every: float = REPORT_EVERY) -> None:
        self._clock = clock or MonotonicClock()
        self._report_every = report_every
        self.started = self._clock.now()
        self.first_token_at: float | None = None
        self.tokens = 0
        self._last_report: float | None = None
        self.reports = 0

    def on_token(self) -> bool:
        """Count one token; True when a report is due (at most every `report_every` s)."""
        now = self._clock.now()
        if self.first_token_at is None:
            self.first_token_at = now
        self.tokens += 1
        if self._last_report is None or now - self._last_report >= self._report_every:
            self._last_report = now
            self.reports += 1
            return True
        return False

    def snapshot(self, ui_events: int, *, done: bool = False, stopped: bool = False) -> ReplyProgress:
        """The figures now."""
        now = self._clock.now()
        streaming_for = now - self.first_token_at if self.first_token_at is not None else 0.0
        return ReplyProgress(
            tokens=self.tokens,
            elapsed=now - self.started,
            first_token=None if self.first_token_at is None else self.first_token_at - self.started,
            # Intervals between tokens over the time they took: one token alone has no rate (its
            # count over the microseconds since it arrived would read as hundreds of thousands).
            tokens_per_second=(self.tokens - 1) / streaming_for if streaming_for > 0 else 0.0,
            ui_events=ui_events,
            done=done,
            stopped=stopped,
        )
