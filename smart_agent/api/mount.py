"""Serve the API from the chat app itself: same host, port, origin checks and process."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from fastapi import FastAPI, Request, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smart_agent import metrics
from smart_agent.api import seed004
from smart_agent.api.access import Access
from smart_agent.api.ag_ui import build_ag_ui_router
from smart_agent.api.ai_sdk import build_ai_sdk_router
from smart_agent.api.keys import KEYS_FILE, KeyStore
from smart_agent.api.openai_compat import build_openai_router
from smart_agent.api.routes import (
    RETRY_AFTER_SECONDS,
    Api,
    build_router,
    error_response,
    metrics_route,
    unknown_api_route,
)
from smart_agent.api.turns import Turns
from smart_agent.config import Settings
from smart_agent.data_dir import resolve_data_dir
from smart_agent.runs.log import RunLog, RunLogUnavailableError
from smart_agent.runs.manager import RunManager
from smart_agent.runs.memory import MemoryRunLog
from smart_agent.streaming.batcher import policy_for

log = logging.getLogger("smart_agent.api")
_shared: list[RunLog] = []  # the run log install() made: chat turns go to the same one


def run_log(settings: Settings) -> RunLog:
    """Redis Streams when SMART_AGENT_REDIS_URL is set, else this process's memory."""
    if settings.redis_url:
        from smart_agent.runs.redis_log import RedisRunLog

        shared: RunLog = RedisRunLog.from_settings(settings)
        return shared
    return MemoryRunLog(settings.run_retention)


def shared_run_log() -> RunLog | None:
    """The run log of this process's API (None until `install` ran): one log, one Redis connection."""
    return _shared[-1] if _shared else None


def install(
    app: FastAPI,
    settings: Settings,
    *,
    loopback: bool,
    routes_first: Callable[[FastAPI, list[BaseRoute]], None],
) -> Api:
    """Add the API's routes (and /metrics) to Chainlit's app, ahead of its page route (`routes_first`)."""
    manager = RunManager(
        run_log(settings), policy_for(settings), on_end=_count_end, on_start=metrics.run_started
    )
    _shared.append(manager.log)
    keys = KeyStore(resolve_data_dir(settings) / KEYS_FILE)
    api = Api(settings, manager, Turns(settings), Access(keys, loopback))
    router = build_router(api)
    routes_first(app, [*labelled("runs", router.routes), metrics_route(api), unknown_api_route()])
    # The AI SDK's /api/chat (api/ai_sdk.py), OpenAI's /v1 (api/openai_compat.py), seed 004's
    # /api/question/stream and AG-UI's /api/ag-ui (api/ag_ui.py), each counted under its protocol.
    routes_first(app, labelled("ai-sdk", build_ai_sdk_router(api).routes))
    routes_first(app, labelled("openai", build_openai_router(api).routes))
    routes_first(app, labelled("seed004", seed004.build_router(api).routes))
    routes_first(app, labelled("ag-ui", build_ag_ui_router(api).routes))
    app.add_exception_handler(RunLogUnavailableError, _unavailable)
    return api


def labelled(protocol: str, routes: Iterable[BaseRoute]) -> list[BaseRoute]:
    """`routes`, each serving its requests under `protocol` (the metrics' label) and counting them."""
    for route in routes:
        if isinstance(route, Route):
            route.app = _serving(protocol, route.app)
    return list(routes)


def _serving(protocol: str, app: ASGIApp) -> ASGIApp:
    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        # Set in this request's context: the run's task and the SSE stream's copy it when they start,
        # so what they count (metrics.run_ended, sse_connection_closed) keeps the label.
        metrics.PROTOCOL.set(protocol)
        code: int | str = "error"  # no response started: the app's exception handlers answer

        async def sending(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            metrics.api_request(code)

    return serve


async def _unavailable(_request: Request, exc: Exception) -> Response:
    # Redis is down or unreachable: say so, and when to try again, instead of a bare 500.
    log.warning("%s", exc)  # where and why, for the operator; the client learns only that it failed
    response = error_response(503, "run_log_unavailable", "The run log cannot be reached; try again shortly.")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _count_end(status: str, _usage: dict[str, object]) -> None:
    metrics.run_ended(status)


async def shutdown(api: Api) -> None:
    """End this process's runs (their readers learn the producer stopped) and release the rest."""
    try:
        await api.manager.aclose()
    finally:
        await api.turns.aclose()
