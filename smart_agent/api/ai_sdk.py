"""The Vercel AI SDK's UI message stream (v1), what `useChat` speaks: a presenter over the run log.

`POST /api/chat` starts a run through the same manager as `/api/v1/runs` (keys, limits, Redis,
metrics) and streams its events as UI message chunks; the chat id leads to the run through the run
log's names (`RunLog.point`), so `GET /api/chat/{id}/stream` replays the chat's active run from its
start on any instance sharing the log. A closed stream does not cancel the run (the AI SDK's resume
needs it to go on); `DELETE /api/chat/{id}/stream` or `cancelOnDisconnect: true` in the body does.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from smart_agent.api.access import AccessError
from smart_agent.api.ai_sdk_schema import parse_chat_request
from smart_agent.api.held import Outcome
from smart_agent.api.routes import Api, error_response
from smart_agent.api.schema import RequestError
from smart_agent.runs.events import (
    CANCELLED,
    DONE,
    ERROR,
    NOTICE,
    PROGRESS,
    REASONING,
    SNAPSHOT,
    TOKEN,
    TOOL_CALL,
    TOOL_RESULT,
    RunEvent,
)
from smart_agent.runs.log import RunExpiredError, RunLimitError, UnknownRunError
from smart_agent.runs.manager import new_run_id
from smart_agent.runs.names import NAME_SECONDS
from smart_agent.runs.reading import read_through

log = logging.getLogger("smart_agent.api")
HEADERS = {
    "x-vercel-ai-ui-message-stream": "v1",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",
}
FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool-calls",
    "content_filter": "content-filter",
}


def chat_name(owner: str, chat_id: str) -> str:
    """The run log name of a chat: the key's own, so one key never finds another's chat."""
    return "ai-sdk:" + hashlib.sha256(f"{owner}\n{chat_id}".encode()).hexdigest()


class ChunkPresenter:
    """Turns one run's events into UI message chunks: parts opened and closed in order, a new step
    after each tool result (the model answers it in a new request)."""

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self._open: tuple[str, str] | None = None  # ("text" | "reasoning", part id)
        self._parts = 0
        self._after_tool = False
        self.text = ""  # what the chunks hold so far, to extend a snapshot without repeating it
        self.reasoning = ""

    def begin(self) -> list[dict[str, Any]]:
        """The chunks that open the message."""
        return [{"type": "start", "messageId": self.message_id}, {"type": "start-step"}]

    def present(self, event: RunEvent) -> list[dict[str, Any]]:
        """The chunks of one run event (none for those the protocol has no place for)."""
        data = event.data
        if event.kind == TOKEN:
            self.text += data["text"]
            return self._delta("text", data["text"])
        if event.kind == REASONING:
            self.reasoning += data["text"]
            return self._delta("reasoning", data["text"])
        if event.kind == SNAPSHOT:  # a reader behind the kept events: the text it missed, once
            chunks = self._delta("reasoning", data.get("reasoning", "")[len(self.reasoning) :])
            chunks += self._delta("text", data["text"][len(self.text) :])
            self.text, self.reasoning = data["text"], data.get("reasoning", "")
            return chunks
        if event.kind == TOOL_CALL:
            return self._tool_call(data)
        if event.kind == TOOL_RESULT:
            self._after_tool = True
            common = {"toolCallId": data["call_id"], "providerExecuted": True, "dynamic": True}
            if data.get("is_error"):
                return [{"type": "tool-output-error", "errorText": str(data["result"]), **common}]
            return [{"type": "tool-output-available", "output": data["result"], **common}]
        if event.kind == NOTICE:
            return [{"type": "data-notice", "data": {"message": data["message"]}, "transient": True}]
        if event.kind == PROGRESS:  # for useChat's onData (a progress bar), not the message
            return [{"type": "data-progress", "data": data, "transient": True}]
        if event.kind == DONE:
            reason = FINISH_REASONS.get(str(data.get("finish_reason")), "other")
            return [*self._close(), {"type": "finish-step"}, {"type": "finish", "finishReason": reason}]
        if event.kind == ERROR:
            if data.get("code") == CANCELLED:
                return [*self._close(), {"type": "abort", "reason": data.get("message", "cancelled")}]
            return [*self._close(), {"type": "error", "errorText": data.get("message", "The run failed.")}]
        return []  # what useChat has no place for (a move of text to the reasoning)

    def _step(self) -> list[dict[str, Any]]:
        if not self._after_tool:
            return []
        self._after_tool = False
        return [{"type": "finish-step"}, {"type": "start-step"}]

    def _delta(self, kind: str, text: str) -> list[dict[str, Any]]:
        if not text:
            return []
        chunks = self._step()
        if self._open is None or self._open[0] != kind:
            chunks += self._close()
            self._parts += 1
            self._open = (kind, f"{kind}-{self._parts}")
            chunks.append({"type": f"{kind}-start", "id": self._open[1]})
        chunks.append({"type": f"{kind}-delta", "id": self._open[1], "delta": text})
        return chunks

    def _close(self) -> list[dict[str, Any]]:
        if self._open is None:
            return []
        kind, part_id = self._open
        self._open = None
        return [{"type": f"{kind}-end", "id": part_id}]

    def _tool_call(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        arguments = str(data.get("arguments") or "")
        try:
            parsed: Any = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            parsed = arguments  # the model's malformed arguments, shown as they came
        common = {"toolCallId": data["call_id"], "toolName": data["name"], "dynamic": True}
        return [
            *self._step(),
            *self._close(),
            {"type": "tool-input-start", **common, "providerExecuted": True},
            {"type": "tool-input-delta", "toolCallId": data["call_id"], "inputTextDelta": arguments},
            {"type": "tool-input-available", **common, "input": parsed, "providerExecuted": True},
        ]


def _sse(chunk: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(chunk, ensure_ascii=False, separators=(",", ":")))


def _respond(api: Api, run_id: str, principal: str, cancel_on_disconnect: bool = False) -> Response:
    """The run's UI message stream from its start, ending with `data: [DONE]`; an open stream holds
    one of the key's stream slots, as in the runs API."""

    async def whole(outcome: Outcome) -> AsyncGenerator[ServerSentEvent, None]:
        async for event in _chunks(api, run_id):
            yield event
        outcome.reason = "ended"

    cancel = partial(api.manager.cancel_soon, run_id) if cancel_on_disconnect else None
    return EventSourceResponse(
        api.slots.held(principal, whole, cancel, cancel_when_lost=True),
        ping=api.settings.sse_heartbeat,
        send_timeout=api.settings.sse_send_timeout,
        headers=HEADERS,
    )


async def _chunks(api: Api, run_id: str) -> AsyncGenerator[ServerSentEvent, None]:
    presenter = ChunkPresenter(run_id)
    for chunk in presenter.begin():
        yield _sse(chunk)
    try:
        async with aclosing(read_through(api.manager.log, run_id)) as events:
            async for event in events:
                for chunk in presenter.present(event):
                    yield _sse(chunk)
    except (UnknownRunError, RunExpiredError) as exc:
        yield _sse({"type": "error", "errorText": str(exc)})
    yield ServerSentEvent(data="[DONE]")


def build_ai_sdk_router(api: Api) -> APIRouter:
    """POST /api/chat, GET and DELETE /api/chat/{id}/stream, bound to `api`."""
    router = APIRouter()

    def refused(exc: AccessError) -> Response:
        response = error_response(exc.status, exc.code, exc.message)
        response.headers.update(exc.headers)
        return response

    def too_many_streams(principal: str) -> Response | None:
        busy = api.slots.refusal(principal)
        return None if busy is None else error_response(429, "limit_exceeded", busy)

    async def active_run(principal: str, chat_id: str) -> str | None:
        run_id = await api.manager.log.pointed(chat_name(principal, chat_id))
        if run_id is None:
            return None
        try:
            record = await api.manager.log.get(run_id)
        except (UnknownRunError, RunExpiredError):
            return None
        return run_id if record.owner == principal and record.status == "running" else None

    @router.post("/api/chat")
    async def chat(request: Request) -> Response:
        try:
            principal = api.access.authorize(request.headers.get("authorization"))
            chat = parse_chat_request(await request.body(), api.turns.max_content_chars, api.limits)
            await api.turns.check_model(chat.model)
            if (busy := too_many_streams(principal)) is not None:
                return busy
            name = chat_name(principal, chat.chat_id)
            before = await api.manager.log.pointed(name)
            earlier = await active_run(principal, chat.chat_id)
            if earlier is not None:  # the user moved on (stop, then a new message): end the old reply
                await api.manager.cancel(earlier)
            # Claimed before the run starts: of two messages sent at once, one runs, the other
            # learns so (409) instead of leaving a second run nobody reads.
            fresh = new_run_id()
            if await api.manager.log.claim(name, fresh, NAME_SECONDS, replacing=before) != fresh:
                return error_response(409, "conflict", "another message of this chat is starting")
            try:
                record = await api.manager.start(
                    principal,
                    api.turns.stream(chat.messages, chat.model),
                    api.settings.api_max_runs,
                    model=chat.model,
                    run_id=fresh,
                )
            except BaseException:
                await api.manager.log.release(name, fresh)
                raise
        except AccessError as exc:
            return refused(exc)
        except RequestError as exc:
            return error_response(exc.status, "invalid_request", exc.message, field=exc.field)
        except RunLimitError as exc:
            return error_response(429, "limit_exceeded", str(exc))

        return _respond(api, record.id, principal, chat.cancel_on_disconnect)

    @router.get("/api/chat/{chat_id}/stream")
    async def resume(chat_id: str, request: Request) -> Response:
        try:
            principal = api.access.authorize(request.headers.get("authorization"))
        except AccessError as exc:
            return refused(exc)
        run_id = await active_run(principal, chat_id)
        if run_id is None:
            return Response(status_code=204)  # nothing to resume: useChat stops asking
        if (busy := too_many_streams(principal)) is not None:
            return busy
        return _respond(api, run_id, principal)

    @router.delete("/api/chat/{chat_id}/stream")
    async def stop(chat_id: str, request: Request) -> Response:
        try:
            principal = api.access.authorize(request.headers.get("authorization"))
        except AccessError as exc:
            return refused(exc)
        run_id = await active_run(principal, chat_id)
        if run_id is None:
            return Response(status_code=204)
        await api.manager.cancel(run_id)
        return JSONResponse({"id": run_id, "status": "cancelling"}, 202)

    return router
