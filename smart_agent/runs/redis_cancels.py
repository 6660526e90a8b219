"""Cancel requests between instances: PUBLISH on one channel; only the run's producer acts on them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from smart_agent.runs.log import CancelHandler, RunLogError
from smart_agent.runs.redis_keys import as_str

log = logging.getLogger("smart_agent.runs")

CONFIRM_SECONDS = 5.0
"""How long the subscription may take to be confirmed before the first run is refused."""


class CancelRequests:
    """The cancel channel of one process: subscribed and confirmed before its first run exists."""

    def __init__(self, blocking: Redis, channel: str, description: str, producing: Callable[[str], bool]):
        self._blocking = blocking
        self.channel = channel
        self._description = description
        self._producing = producing
        self._handlers: list[CancelHandler] = []
        self._pubsub: PubSub | None = None

    @property
    def started(self) -> bool:
        """Whether the subscription is confirmed."""
        return self._pubsub is not None

    def on_request(self, handler: CancelHandler) -> None:
        """Call `handler` with the id of each run of this process that some instance asked to cancel."""
        self._handlers.append(handler)

    async def start(self) -> asyncio.Task[None]:
        """Subscribe, wait for the confirmation (from then on no request is missed) and listen."""
        pubsub = self._blocking.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            deadline = time.monotonic() + CONFIRM_SECONDS
            while time.monotonic() < deadline:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message["type"] == "subscribe":
                    break
            else:
                raise RunLogError(f"{self._description} did not confirm the cancel subscription")
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py 8.1
            raise
        self._pubsub = pubsub
        return asyncio.get_running_loop().create_task(self._listen(pubsub), name="run cancels")

    async def aclose(self) -> None:
        """Drop the subscription (its listening task is the caller's to cancel)."""
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py 8.1

    async def _listen(self, pubsub: PubSub) -> None:
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except (RedisError, OSError) as exc:
                log.warning("cancel requests from %s: %s", self._description, exc)
                await asyncio.sleep(1.0)  # back off; redis-py resubscribes when it reconnects
                continue
            if message is None or message["type"] != "message":
                continue
            run_id = as_str(message["data"])
            if self._producing(run_id):
                for handler in list(self._handlers):
                    try:
                        handler(run_id)
                    except Exception:  # one broken handler must not stop cancels for other runs
                        log.exception("cancel handler failed for run %s", run_id)
