"""Decorators for the data layer's methods: Chainlit's queue before the first message, loud errors."""

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, cast

import sqlalchemy as sa
from chainlit.context import context_var
from chainlit.data.utils import queue_until_user_message

from smart_agent.errors import HistoryAccessError, HistoryError

logger = logging.getLogger("smart_agent.history")

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def queued(method: F) -> F:
    """Chainlit's `queue_until_user_message` (data/utils.py, 2.12), which an override does not inherit.

    Outside any Chainlit context (scripts, tests, benchmarks) the call runs at once instead of raising.
    Not public: web/chainlit_patches.py checks it at start-up (imported here, as history is below web).
    """
    chainlit_queued = queue_until_user_message()(method)  # type: ignore[no-untyped-call]

    @functools.wraps(method)
    async def run(*args: Any, **kwargs: Any) -> Any:
        if context_var.get(None) is None:
            return await method(*args, **kwargs)
        return await chainlit_queued(*args, **kwargs)

    return cast(F, run)


def surfaced(method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Log a failure and raise it as a HistoryError; Chainlit's own layer logs a warning and carries on."""

    @functools.wraps(method)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except HistoryAccessError as exc:
            logger.warning("history: %s refused: %s", method.__name__, exc)
            raise
        except HistoryError:
            logger.exception("history: %s failed", method.__name__)
            raise
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            logger.exception("history: %s failed", method.__name__)
            raise HistoryError(f"chat history: {method.__name__} failed: {exc}") from exc

    return run


def tracked(method: F) -> F:
    """Keep the write's task in `self.writing` while it runs: Chainlit starts writes in tasks it never
    awaits, and `close()` waits for them (an app stopped mid-reply keeps what it wrote)."""

    @functools.wraps(method)
    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        task = asyncio.current_task()
        if task is not None:
            self.writing.add(task)
        try:
            return await method(self, *args, **kwargs)
        finally:
            if task is not None:
                self.writing.discard(task)

    return cast(F, run)
