"""OpenAI's chat completions as a presenter of the run log: `POST /v1/chat/completions`, `GET /v1/models`.

A request starts a run through the same manager and turns as `/api/v1/runs` (keys, limits, Redis,
metrics alike) and answers from the run's events: text as `content`, thinking as `reasoning_content`;
tool steps run on the server and are not shown. The stream is not resumable (OpenAI's protocol has no
resume), so a client that goes away cancels its run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from smart_agent.api.access import AccessError
from smart_agent.api.held import Outcome
from smart_agent.api.openai_schema import (
    ChatRequest,
    UnknownModelError,
    model_ids,
    parse_chat_request,
)
from smart_agent.api.routes import RETRY_AFTER_SECONDS, Api
from smart_agent.api.schema import RequestError
from smart_agent.runs.events import CANCELLED, DONE, ERROR, MODEL_ERROR, REASONING, TOKEN, RunEvent, fold
from smart_agent.runs.log import RunLimitError, RunLogError
from smart_agent.runs.reading import read_through

PREFIX = "/v1"
OWNER = "smart-agent"
RUN_ID_HEADER = "X-Smart-Agent-Run-Id"
"""The run behind a completion: `/api/v1/runs/{id}` reads or cancels it with the same key."""
_ERROR_STATUS = {MODEL_ERROR: 502, CANCELLED: 409}


def openai_error(
    status: int, message: str, *, param: str | None = None, code: str | None = None, kind: str | None = None
) -> JSONResponse:
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""
    kind = kind or ("invalid_request_error" if status < 500 else "server_error")
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 429 else None
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status, headers=headers)


def _unknown_model(model: str) -> JSONResponse:
    return openai_error(
        404,
        f"The model {model!r} does not exist: GET /v1/models lists the models smart-agent serves.",
        param="model",
        code="model_not_found",
    )


def _refused(exc: AccessError) -> JSONResponse:
    kind = "authentication_error" if exc.status == 401 else "permission_error"
    response = openai_error(exc.status, exc.message, code=exc.code, kind=kind)
    response.headers.update(exc.headers)
    return response


def _usage(done: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's usage from a `done` event: the server's counts, else the tokens smart-agent counted."""
    prompt = int(done.get("prompt_tokens", 0))
    completion = int(done.get("completion_tokens", done.get("tokens", 0)))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "completion_tokens_details": {"reasoning_tokens": int(done.get("reasoning_tokens", 0))},
    }


def _error_body(data: dict[str, Any]) -> dict[str, Any]:
    code = str(data.get("code", "internal_error"))
    kind = "invalid_request_error" if code == CANCELLED else "server_error"
    return {"error": {"message": str(data.get("message", "")), "type": kind, "param": None, "code": code}}


class _Completion:
    """One completion's fixed fields, shared by its chunks."""

    def __init__(self, run_id: str, model: str) -> None:
        self.id = f"chatcmpl-{run_id}"
        self.model = model
        self.created = int(time.time())

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> ServerSentEvent:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._event({"choices": [choice]})

    def usage_chunk(self, done: dict[str, Any]) -> ServerSentEvent:
        return self._event({"choices": [], "usage": _usage(done)})

    def _event(self, fields: dict[str, Any]) -> ServerSentEvent:
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            **fields,
        }
        return ServerSentEvent(data=json.dumps(body, ensure_ascii=False, separators=(",", ":")))


def build_openai_router(api: Api) -> APIRouter:
    """`/v1/models` and `/v1/chat/completions`, bound to `api`."""
    router = APIRouter(prefix=PREFIX)

    @router.get("/models")
    async def list_models(request: Request) -> Response:
        try:
            api.access.authorize(request.headers.get("authorization"))
        except AccessError as exc:
            return _refused(exc)
        backend = await api.turns.backend_models()
        data = [{"id": m, "object": "model", "created": 0, "owned_by": OWNER} for m in model_ids(backend.ids)]
        return JSONResponse({"object": "list", "data": data})

    @router.get("/models/{model:path}")
    async def get_model(model: str, request: Request) -> Response:
        try:
            api.access.authorize(request.headers.get("authorization"))
        except AccessError as exc:
            return _refused(exc)
        if model not in model_ids((await api.turns.backend_models()).ids):
            return _unknown_model(model)
        return JSONResponse({"id": model, "object": "model", "created": 0, "owned_by": OWNER})

    @router.post("/chat/completions")
    async def chat_completions(request: Request) -> Response:
        try:
            principal = api.access.authorize(request.headers.get("authorization"))
            chat = parse_chat_request(await request.body(), api.turns.max_content_chars, api.limits)
            backend = chat.model.backend
            if backend is not None and not (await api.turns.backend_models()).allows(backend):
                raise UnknownModelError(chat.model.id)
            if chat.stream and (busy := api.slots.refusal(principal)) is not None:
                return openai_error(429, busy, code="limit_exceeded", kind="rate_limit_error")
            turn = api.turns.stream(chat.messages, backend, team=chat.model.team)
            record = await api.manager.start(principal, turn, api.settings.api_max_runs)
        except AccessError as exc:
            return _refused(exc)
        except RequestError as exc:
            return openai_error(
                exc.status, f"{exc.field}: {exc.message}", param=exc.field, code="invalid_value"
            )
        except UnknownModelError as exc:
            return _unknown_model(exc.model)
        except RunLimitError as exc:
            return openai_error(429, str(exc), code="limit_exceeded", kind="rate_limit_error")
        completion = _Completion(record.id, chat.model.id)
        if chat.stream:
            return _streamed(api, principal, record.id, completion, chat)
        return await _whole(api, request, record.id, completion)

    return router


def _streamed(api: Api, principal: str, run_id: str, completion: _Completion, chat: ChatRequest) -> Response:
    """The run as chat-completion chunks; the client going away cancels the run."""

    async def chunks(outcome: Outcome) -> AsyncGenerator[ServerSentEvent, None]:
        try:
            yield completion.chunk({"role": "assistant", "content": ""})
            async with aclosing(read_through(api.manager.log, run_id)) as events:
                async for event in events:
                    if event.kind == TOKEN:
                        yield completion.chunk({"content": event.data["text"]})
                    elif event.kind == REASONING:
                        yield completion.chunk({"reasoning_content": event.data["text"]})
                    elif event.kind == DONE:
                        yield completion.chunk({}, event.data.get("finish_reason", "stop"))
                        if chat.include_usage:
                            yield completion.usage_chunk(event.data)
                    elif event.kind == ERROR:
                        yield ServerSentEvent(data=json.dumps(_error_body(event.data)))
            outcome.reason = "ended"
            yield ServerSentEvent(data="[DONE]")
        except RunLogError as exc:  # the log failed or lost the run: OpenAI's stream cannot resume
            yield ServerSentEvent(data=json.dumps(_error_body({"code": "stream_lost", "message": str(exc)})))

    return EventSourceResponse(
        api.slots.held(principal, chunks, partial(api.manager.cancel_soon, run_id), cancel_when_lost=True),
        sep="\n",
        send_timeout=api.settings.sse_send_timeout,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no", RUN_ID_HEADER: run_id},
    )


async def _whole(api: Api, request: Request, run_id: str, completion: _Completion) -> Response:
    """The run's whole answer as one `chat.completion`; the client going away first cancels the run."""
    reading = asyncio.ensure_future(_read_to_end(api, run_id))
    leaving = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({reading, leaving}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        leaving.cancel()
        if not reading.done():
            reading.cancel()
            await api.manager.cancel(run_id)
    with contextlib.suppress(asyncio.CancelledError):
        await leaving
    if reading.cancelled():
        return Response(status_code=499)  # nobody is left to read it
    text, reasoning, end = reading.result()
    if end.kind == ERROR:
        status = _ERROR_STATUS.get(str(end.data.get("code")), 500)
        return JSONResponse(_error_body(end.data), status, headers={RUN_ID_HEADER: run_id})
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if reasoning:
        message["reasoning_content"] = reasoning
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": end.data.get("finish_reason", "stop"),
    }
    body = {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [choice],
        "usage": _usage(end.data),
    }
    return JSONResponse(body, headers={RUN_ID_HEADER: run_id})


async def _read_to_end(api: Api, run_id: str) -> tuple[str, str, RunEvent]:
    """The run's final text and reasoning, and its terminal event."""
    text = reasoning = ""
    async with aclosing(read_through(api.manager.log, run_id)) as events:
        async for event in events:
            if event.kind in (DONE, ERROR):
                return text, reasoning, event
            text, reasoning = fold(text, reasoning, event.kind, event.data)
    raise RunLogError(f"run {run_id} ended without a terminal event")


async def _disconnected(request: Request) -> None:
    """Return when the client closes its connection (the body is read: only a disconnect can come)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
