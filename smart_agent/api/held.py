"""An open event stream's bookkeeping, the same in every protocol: the key's stream slots, the
connection metrics with why it closed, and the run's cancel when its reader goes."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TypeVar

from smart_agent import metrics

T = TypeVar("T")
GONE = ("client_gone", "send_failed")
"""Why a stream closed when its reader went away (not when the run ended or the reader fell behind)."""


@dataclass
class Outcome:
    """How a stream ended, set by the protocol's own generator: `ended` once it has sent the run's end.
    Left at `slow_reader`, the stream stopped early (the reader fell behind, or the log lost the run)."""

    reason: str = "slow_reader"


@dataclass
class StreamSlots:
    """The event streams open per key, against the configured limit."""

    limit: int
    open: Counter[str] = field(default_factory=Counter)

    def refusal(self, principal: str) -> str | None:
        """Why `principal` may not open another stream now (for a 429), or None."""
        if self.open[principal] < self.limit:
            return None
        return (
            f"{self.open[principal]} event streams are open for this key; "
            f"at most {self.limit} may be open at once"
        )

    async def held(
        self,
        principal: str,
        stream: Callable[[Outcome], AsyncGenerator[T, None]],
        cancel: Callable[[], None] | None = None,
        *,
        cancel_when_lost: bool = False,
    ) -> AsyncGenerator[T, None]:
        """Yield `stream(outcome)` holding one of the key's slots, counted open and closed with the
        reason; `cancel` runs when the reader went (and, with `cancel_when_lost`, when the stream
        stopped before the run's end for any reason: a protocol that cannot resume)."""
        # Counted here, not in the route: a generator that never starts never runs its `finally`.
        self.open[principal] += 1
        metrics.sse_connection_opened()
        outcome = Outcome()
        try:
            async with aclosing(stream(outcome)) as events:
                async for event in events:
                    yield event
        except asyncio.CancelledError:  # sse-starlette cancels the stream when the client goes
            outcome.reason = "client_gone"
            raise
        except GeneratorExit:  # ... and closes it when a send fails or times out
            outcome.reason = "send_failed"
            raise
        finally:
            metrics.sse_connection_closed(outcome.reason)
            self.open[principal] -= 1
            if self.open[principal] <= 0:
                del self.open[principal]
            # Here, not in sse-starlette's disconnect handler: when a send fails first, its task
            # group cancels the disconnect listener before it hears the client go.
            stopped = outcome.reason in GONE or (cancel_when_lost and outcome.reason != "ended")
            if cancel is not None and stopped:
                cancel()  # the generator may be being closed: no waiting here
