"""An orderly stop on Ctrl-C or SIGTERM: replies still running are stopped like the stop button
stops them, marked as stopped, and stored before the process ends.

Chainlit 2.12 runs `on_app_shutdown` in its lifespan's `finally` and then ends the process with
`os._exit(0)` (server.py `lifespan`), so nothing after it runs: the turns are stopped here, and the
data layer's `close()` waits for the writes Chainlit started in tasks of its own
(history/data_layer.py).
"""

from __future__ import annotations

import asyncio
import logging

from smart_agent.web import chainlit_patches

log = logging.getLogger("smart_agent.shutdown")
STOP_SECONDS = 5.0
"""How long the stopped turns get to finalise their replies (a second Ctrl-C ends the wait)."""
STOPPED_NOTE = "Stopped: smart-agent was shut down before this reply ended."

_stopping = False


def shutting_down() -> bool:
    """Whether the app is stopping (a turn cancelled now was stopped by the shutdown)."""
    return _stopping


async def stop_running_turns() -> int:
    """Cancel every session's running turn and wait (bounded) until each has finalised; the count."""
    global _stopping
    _stopping = True
    running = {
        task
        for session in chainlit_patches.live_sessions()
        if (task := session.current_task) is not None and not task.done()
    }
    for task in running:
        task.cancel()
    if running:
        _, late = await asyncio.wait(running, timeout=STOP_SECONDS)
        if late:
            log.warning("%d replies did not finish stopping within %g s", len(late), STOP_SECONDS)
    return len(running)
