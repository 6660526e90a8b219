"""Drop cancelled timers from the event loop, which Chainlit's nest_asyncio patch stopped doing.

Chainlit 2.12.0 calls `nest_asyncio.apply()` when `chainlit.cli` is imported (chainlit/cli/__init__.py:11;
its session.py runs a nested `run_until_complete`). nest_asyncio 1.6 replaces the loop class's
`_run_once` with one that never purges cancelled timers from the heap, as asyncio's own does once they
are over half of it: they stay until their deadline. engineio waits for each outgoing packet with a
~60 s `wait_for` that is cancelled when the packet comes, so at 100 chat sessions the heap held 100,000+
cancelled timers (each with a copy of the context), and every full garbage collection walked them:
pauses of 100 to 300 ms (issue 14). web/chainlit_patches.py puts this module's purge back in front of
the patched method.
"""

from __future__ import annotations

import heapq
from typing import Any

# asyncio.base_events' own thresholds: purge when over 100 timers and over half of them cancelled
MIN_SCHEDULED = 100
CANCELLED_FRACTION = 0.5


def drop_cancelled_timers(loop: Any) -> None:
    """Rebuild `loop`'s timer heap without its cancelled timers when they are too many, as asyncio does."""
    scheduled = loop._scheduled
    count = len(scheduled)
    if count <= MIN_SCHEDULED or loop._timer_cancelled_count / count <= CANCELLED_FRACTION:
        return
    live = []
    for handle in scheduled:
        if handle._cancelled:
            handle._scheduled = False
        else:
            live.append(handle)
    heapq.heapify(live)
    loop._scheduled = live
    loop._timer_cancelled_count = 0
