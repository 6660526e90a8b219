"""The SSE API's routes: start, read, resume and cancel runs; JSON errors that name the field."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from sse_starlette import EventSourceResponse, ServerSentEvent

from smart_agent import metrics
from smart_agent.api.access import Access, AccessError
from smart_agent.api.held import Outcome, StreamSlots
from smart_agent.api.schema import RequestError, parse_run_request, parse_stream_options
from smart_agent.api.sse import stream_events
from smart_agent.api.turns import Turns
from smart_agent.attachments.files import Limits
from smart_agent.config import Settings
from smart_agent.runs.events import HEARTBEAT, SNAPSHOT, TERMINAL
from smart_agent.runs.log import (
    InvalidEventIdError,
    RunExpiredError,
    RunLimitError,
    RunRecord,
    UnknownRunError,
)
from smart_agent.runs.manager import RunManager

log = logging.getLogger("smart_agent.api")
PREFIX = "/api/v1"
RETRY_AFTER_SECONDS = 2


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    """The API's one error shape: {"error": {"code", "message", ...}}."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 429 else None
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status, headers=headers)


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


@dataclass
class Api:
    """What the routes need: the settings, the runs, the turns to run and the access rule."""

    settings: Settings
    manager: RunManager
    turns: Turns
    access: Access
    slots: StreamSlots = field(init=False)

    def __post_init__(self) -> None:
        self.slots = StreamSlots(self.settings.api_max_streams)

    @property
    def limits(self) -> Limits:
        """What a run's messages may carry as images (the chat's attachment limits)."""
        return Limits.from_settings(self.settings)

    def principal(self, request: Request) -> str:
        """Who is asking (the key's name, or "" in the open loopback mode)."""
        try:
            return self.access.authorize(request.headers.get("authorization"))
        except AccessError as exc:
            response = error_response(exc.status, exc.code, exc.message)
            response.headers.update(exc.headers)
            raise _Refused(response) from None

    async def visible_run(self, run_id: str, principal: str) -> RunRecord:
        """The run if `principal` created it; anyone else gets the same 404 as for no run."""
        try:
            record = await self.manager.log.get(run_id)
        except RunExpiredError:
            raise _Refused(
                error_response(
                    410,
                    "replay_window_exceeded",
                    f"run {run_id} ended more than {self.settings.run_retention:g} s ago; "
                    "its events are gone",
                )
            ) from None
        except UnknownRunError:
            record = None
        if record is None or record.owner != principal:
            raise _Refused(error_response(404, "not_found", f"no run {run_id}"))
        return record


def build_router(api: Api) -> APIRouter:
    """The API's routes, bound to `api`."""
    router = APIRouter(prefix=PREFIX)

    @router.post("/runs")
    async def create_run(request: Request) -> Response:
        try:
            principal = api.principal(request)
            run = parse_run_request(await request.body(), api.turns.max_content_chars, api.limits)
            await api.turns.check_model(run.model)
            record = await api.manager.start(
                principal,
                api.turns.stream(run.messages, run.model),
                api.settings.api_max_runs,
                model=run.model,
            )
        except _Refused as refused:
            return refused.response
        except RequestError as exc:
            return error_response(exc.status, "invalid_request", exc.message, field=exc.field)
        except RunLimitError as exc:
            return error_response(429, "limit_exceeded", str(exc))
        events_url = f"{PREFIX}/runs/{record.id}/events"
        return JSONResponse(
            {"id": record.id, "status": record.status, "events_url": events_url},
            201,
            headers={"Location": f"{PREFIX}/runs/{record.id}"},
        )

    @router.get("/runs/{run_id}")
    async def get_run(run_id: str, request: Request) -> Response:
        try:
            record = await api.visible_run(run_id, api.principal(request))
        except _Refused as refused:
            return refused.response
        return JSONResponse(_describe(record))

    @router.post("/runs/{run_id}/cancel")
    async def cancel_run(run_id: str, request: Request) -> Response:
        try:
            record = await api.visible_run(run_id, api.principal(request))
            if record.status == "running":
                await api.manager.cancel(run_id)
        except _Refused as refused:
            return refused.response
        except UnknownRunError:
            return error_response(404, "not_found", f"no run {run_id}")
        return JSONResponse(
            {"id": run_id, "status": record.status}, 202 if record.status == "running" else 200
        )

    @router.get("/runs/{run_id}/events")
    async def run_events(run_id: str, request: Request) -> Response:
        query = request.query_params
        after = request.headers.get("last-event-id") or query.get("last_event_id") or None
        try:
            principal = api.principal(request)
            options = parse_stream_options(
                query, api.settings.flush_interval, api.settings.max_events_per_second
            )
            record = await api.visible_run(run_id, principal)
            if after is not None:
                await api.manager.log.check_id(run_id, after)
        except _Refused as refused:
            if after is not None and refused.response.status_code == 410:
                metrics.sse_resume("expired")
            return refused.response
        except RequestError as exc:
            return error_response(exc.status, "invalid_request", exc.message, field=exc.field)
        except InvalidEventIdError as exc:
            metrics.sse_resume("invalid")
            return error_response(400, "invalid_request", str(exc), field="Last-Event-ID")
        if after is not None and record.status != "running" and await _is_last(api, run_id, after):
            # Nothing will ever follow: 204 tells an EventSource to stop reconnecting.
            metrics.sse_resume("ended")
            return Response(status_code=204)
        if (busy := api.slots.refusal(principal)) is not None:
            return error_response(429, "limit_exceeded", busy)

        async def events(outcome: Outcome) -> AsyncGenerator[ServerSentEvent, None]:
            first = True
            stream = stream_events(api.manager.log, run_id, after, options, api.settings.sse_heartbeat)
            async with aclosing(stream):  # closed with this generator, not left to the GC
                async for event in stream:
                    if first and after is not None and event.event != HEARTBEAT:
                        metrics.sse_resume("snapshot" if event.event == SNAPSHOT else "replayed")
                        first = False
                    if event.event in TERMINAL:
                        outcome.reason = "ended"
                    yield event

        cancel = partial(api.manager.cancel_soon, run_id) if options.cancel_on_disconnect else None
        return EventSourceResponse(
            api.slots.held(principal, events, cancel),
            ping=0,  # heartbeats are named events, sent only when nothing else is (stream_events)
            send_timeout=api.settings.sse_send_timeout,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return router


def metrics_route(api: Api) -> APIRoute:
    """GET /metrics in Prometheus's text format, under the API's access rule."""

    async def serve_metrics(request: Request) -> Response:
        try:
            api.principal(request)
        except _Refused as refused:
            return refused.response
        body, content_type = metrics.render()
        return Response(body, headers={"Content-Type": content_type})

    return APIRoute("/metrics", serve_metrics, methods=["GET"])


def unknown_api_route() -> APIRoute:
    """Any other path under /api/: a JSON 404, not the chat page Chainlit serves for every path."""

    async def not_found(request: Request) -> Response:
        return error_response(404, "not_found", f"no API endpoint {request.method} {request.url.path}")

    return APIRoute("/api/{rest:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])


async def _is_last(api: Api, run_id: str, after: str) -> bool:
    """True when nothing follows `after` in an ended run (it is the terminal event's id)."""
    async with aclosing(api.manager.log.read(run_id, after)) as events:
        async for _ in events:
            return False
    return True


def _describe(record: RunRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "status": record.status,
        "text": record.text,
        "reasoning": record.reasoning,
        "usage": record.usage,
    }
