"""Serve the API from the chat app itself: same host, port, origin checks and process."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from smart_agent.api.access import Access
from smart_agent.api.routes import Api, build_router
from smart_agent.api.turns import Turns
from smart_agent.config import Settings
from smart_agent.runs.log import RunLog
from smart_agent.runs.manager import RunManager
from smart_agent.runs.memory import MemoryRunLog
from smart_agent.streaming.batcher import policy_for


def run_log(settings: Settings) -> RunLog:
    """Redis Streams when SMART_AGENT_REDIS_URL is set, else this process's memory."""
    if settings.redis_url:
        from smart_agent.runs.redis_log import RedisRunLog

        shared: RunLog = RedisRunLog.from_settings(settings)
        return shared
    return MemoryRunLog(settings.run_retention)


def install(app: FastAPI, settings: Settings, *, loopback: bool, keys: Any = None) -> Api:
    """Add the API's routes to Chainlit's app, ahead of its catch-all page route."""
    manager = RunManager(run_log(settings), policy_for(settings))
    api = Api(settings, manager, Turns(settings), Access(keys, loopback))
    router = build_router(api)
    # Chainlit 2.12 ends its routes with GET /{full_path:path}, which serves the page for any path:
    # routes added after it would never be reached, so the API's go first.
    app.router.routes[:0] = router.routes
    return api


async def shutdown(api: Api) -> None:
    """End this process's runs (their readers learn the producer stopped) and release the rest."""
    try:
        await api.manager.aclose()
    finally:
        await api.turns.aclose()
