"""Seed 004's interface, a presenter over the run log: `GET /api/question/stream` as its frontend reads it.

A GET starts a run; the browser reconnecting with the same session and question (within the run's
retention, from any instance) reads the same run again instead of starting another one: a hash of
(key, session, question) names the run in the run log (RunLog.claim: smart_agent/runs/names.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from smart_agent import metrics
from smart_agent.api.access import AccessError
from smart_agent.api.held import Outcome
from smart_agent.api.routes import Api, error_response
from smart_agent.api.schema import RequestError, parse_run_request, parse_stream_options
from smart_agent.api.sse import stream_events
from smart_agent.runs import events as kinds
from smart_agent.runs.log import (
    TOMBSTONE_SECONDS,
    InvalidEventIdError,
    RunExpiredError,
    RunLimitError,
    UnknownRunError,
)
from smart_agent.runs.manager import new_run_id

PATH = "/api/question/stream"
THINKING = "Analysing your question…"
MAX_SESSION_ID_CHARS = 200
REDACTED = "?<redacted>"
CREATING_SECONDS = 10.0
"""A claimed name whose run the log does not know is taken as being created for this long."""
RETRY_CREATING_MS = 300


class _RedactQuestions(logging.Filter):
    """Drops the query string of this endpoint from uvicorn's access lines: it holds the question."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn 0.3x logs '%s - "%s %s HTTP/%s" %d' with (client, method, path?query, version, status).
        if isinstance(args, tuple) and len(args) == 5 and str(args[2]).startswith(PATH + "?"):
            record.args = (*args[:2], PATH + REDACTED, *args[3:])
        return True


def redact_access_log() -> None:
    """Keep questions out of uvicorn's access log (idempotent; its dictConfig keeps logger filters)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _RedactQuestions) for f in logger.filters):
        logger.addFilter(_RedactQuestions())


def parse_question(query: Mapping[str, str], max_content_chars: int) -> tuple[str, str]:
    """The question and session id of a request; RequestError names the missing or bad one."""
    question = query.get("question")
    if question is None or not question.strip():
        raise RequestError("question", "is required: ?question=…&session_id=…")
    body = json.dumps({"messages": [{"role": "user", "content": question}]}).encode()
    try:  # the runs API's checks (length, characters), named after this interface's field
        parse_run_request(body, max_content_chars)
    except RequestError as exc:
        raise RequestError("question", exc.message, exc.status) from None
    session_id = query.get("session_id")
    if session_id is None or not session_id.strip() or len(session_id) > MAX_SESSION_ID_CHARS:
        raise RequestError("session_id", f"is required: 1 to {MAX_SESSION_ID_CHARS} characters")
    return question, session_id


def build_router(api: Api) -> APIRouter:
    """The seed-004 route, bound to `api` (its keys, limits, run log and metrics)."""
    names = api.manager.log
    # A name outlives the run's retention; whether it still stands is the run log's answer.
    ttl = api.settings.run_retention + TOMBSTONE_SECONDS
    router = APIRouter()
    redact_access_log()

    async def run_for(principal: str, session_id: str, question: str) -> str | None:
        """The run this (key, session, question) names, started here when there is none; None
        while another request is creating it."""
        secret = "\0".join((principal, session_id, question)).encode()
        name = "seed004:" + hashlib.sha256(secret).hexdigest()
        fresh = new_run_id()
        # The claim's time goes with the name: a run it names that the log does not know yet is
        # being created by another request (a moment), not long forgotten.
        mine = f"{fresh} {time.time():.3f}"
        held = await names.claim(name, mine, ttl)
        if held != mine:
            run_id, _, claimed = held.partition(" ")
            try:
                if (await api.manager.log.get(run_id)).owner == principal:
                    return run_id
            except UnknownRunError:
                if time.time() - float(claimed or 0) < CREATING_SECONDS:
                    return None
            except RunExpiredError:
                pass  # its retention passed: the question is asked anew
            held = await names.claim(name, mine, ttl, replacing=held)
            if held != mine:  # another request replaced it first
                return held.partition(" ")[0]
        messages = [{"role": "user", "content": question}]
        try:
            turn = api.turns.stream(messages, None)
            await api.manager.start(principal, turn, api.settings.api_max_runs, run_id=fresh)
        except BaseException:
            await names.release(name, mine)
            raise
        return fresh

    @router.get(PATH)
    async def question_stream(request: Request) -> Response:
        after = request.headers.get("last-event-id") or request.query_params.get("last_event_id") or None
        try:
            principal = api.access.authorize(request.headers.get("authorization"))
            question, session_id = parse_question(request.query_params, api.turns.max_content_chars)
            if (busy := api.slots.refusal(principal)) is not None:
                return error_response(429, "limit_exceeded", busy)
            run_id = await run_for(principal, session_id, question)
            if run_id is None:  # an EventSource asks again after `retry`, when the run exists
                return Response(f"retry: {RETRY_CREATING_MS}\n\n", media_type="text/event-stream")
            if after is not None:
                await api.manager.log.check_id(run_id, after)
                if await _nothing_after(api, run_id, after):
                    metrics.sse_resume("ended")
                    return Response(status_code=204)  # an EventSource stops reconnecting
        except AccessError as exc:
            response = error_response(exc.status, exc.code, exc.message)
            response.headers.update(exc.headers)
            return response
        except RequestError as exc:
            return error_response(exc.status, "invalid_request", exc.message, field=exc.field)
        except InvalidEventIdError as exc:
            metrics.sse_resume("invalid")
            return error_response(400, "invalid_request", str(exc), field="Last-Event-ID")
        except RunLimitError as exc:
            return error_response(429, "limit_exceeded", str(exc))
        except RunExpiredError:
            return error_response(410, "replay_window_exceeded", "the run's events are gone; ask again")
        options = parse_stream_options({}, api.settings.flush_interval, api.settings.max_events_per_second)

        async def events(outcome: Outcome) -> AsyncGenerator[ServerSentEvent, None]:
            if after is None:
                yield ServerSentEvent(data=_json({"message": THINKING}), event="thinking", retry=1000)
            else:
                metrics.sse_resume("replayed")
            stream = stream_events(api.manager.log, run_id, after, options, api.settings.sse_heartbeat)
            async with aclosing(stream):
                async for sse in stream:
                    if sse.event in kinds.TERMINAL:
                        outcome.reason = "ended"
                    shown = present(sse, resuming=after is not None)
                    if shown is not None:
                        yield shown

        return EventSourceResponse(
            api.slots.held(principal, events),
            ping=0,
            send_timeout=api.settings.sse_send_timeout,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return router


def present(sse: ServerSentEvent, *, resuming: bool) -> ServerSentEvent | None:
    """One event of our runs API as seed 004's frontend reads it (None: it has no counterpart)."""
    kind = sse.event
    if kind == kinds.HEARTBEAT:
        return ServerSentEvent(comment="keep-alive")  # named events would reach no listener anyway
    data: dict[str, Any] = json.loads(str(sse.data))
    retry = sse.retry
    if kind == kinds.TOKEN or (kind == kinds.SNAPSHOT and not resuming):
        # batch_size counts characters: the run log keeps the text, not the model's token boundaries.
        text = data["text"]
        return ServerSentEvent(data=_json({"content": text, "batch_size": len(text)}), id=sse.id, retry=retry)
    if kind == kinds.PROGRESS:
        return _named("progress", progress_fields(data), sse)
    if kind == kinds.TOOL_CALL:
        return _named("thinking", {"message": f"Using the tool {data['name']}…"}, sse)
    if kind == kinds.NOTICE:
        return _named("thinking", {"message": data["message"]}, sse)
    if kind == kinds.DONE:
        return _named("done", {"total_tokens": data["tokens"]}, sse)
    if kind == kinds.ERROR:
        return _named("error", {"message": data["message"], "recoverable": data["retryable"]}, sse)
    # Thinking text, tool results and text moved to the thinking have no place in seed 004's page.
    return None


def progress_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """A run log `progress` event with the names seed 004's frontend reads."""
    return {
        "percentageComplete": data.get("percent_complete"),
        "tokensPerSecond": data["tokens_per_second"],
        "estimatedSecondsRemaining": data.get("estimated_seconds_remaining"),
        "confidence": data.get("confidence"),
        "tokens": data["tokens"],
        "elapsedSeconds": data["elapsed_s"],
    }


def _named(event: str, data: dict[str, Any], sse: ServerSentEvent) -> ServerSentEvent:
    return ServerSentEvent(data=_json(data), event=event, id=sse.id, retry=sse.retry)


def _json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


async def _nothing_after(api: Api, run_id: str, after: str) -> bool:
    """True when the run ended and `after` is its last event: a resume that would get nothing."""
    if (await api.manager.log.get(run_id)).status == "running":
        return False
    async with aclosing(api.manager.log.read(run_id, after)) as rest:
        async for _ in rest:
            return False
    return True
