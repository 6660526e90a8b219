"""AG-UI over HTTP: POST /api/ag-ui runs the agent for a RunAgentInput and streams AG-UI events.

Our extension (docs/protocol-ag-ui.md): every event carries an SSE `id:`, and
GET /api/ag-ui/runs/{runId}/events?threadId=… resumes a run after `Last-Event-ID`, on any instance.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import AsyncGenerator, Sequence
from functools import partial
from typing import Any

from ag_ui.core import (
    AssistantMessage,
    DeveloperMessage,
    ImagePart,
    Message,
    RunAgentInput,
    SystemMessage,
    TextPart,
    UrlSource,
    UserMessage,
)
from ag_ui.core import ContentPart as AgUiPart
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sse_starlette import EventSourceResponse

from smart_agent.api.access import AccessError
from smart_agent.api.ag_ui_events import Position, Presenter, stream
from smart_agent.api.held import Outcome
from smart_agent.api.routes import Api, error_response
from smart_agent.api.schema import RequestError, RunRequest, parse_run_request
from smart_agent.attachments.files import Limits
from smart_agent.runs.log import (
    InvalidEventIdError,
    RunExpiredError,
    RunLimitError,
    RunLogError,
    UnknownRunError,
)

log = logging.getLogger("smart_agent.api")
PATH = "/api/ag-ui"
MAX_ID_CHARS = 200
RUN_ID_HEADER = "X-Smart-Agent-Run-Id"
# The members' tags pydantic puts in an error's location after a list index (messages[0].user.content).
_TAGS = frozenset(
    {"developer", "system", "assistant", "user", "tool", "activity", "reasoning"}
    | {"text", "image", "audio", "video", "document", "data", "url", "file"}
)
_INDEX = re.compile(r"^messages\[(\d+)\]")


def field_of(loc: Sequence[int | str]) -> str:
    """A pydantic error location as the field path a client wrote (`messages[0].content`)."""
    path, previous = "", None
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "str" or "[" in part or (isinstance(previous, int) and part in _TAGS):
            pass  # a union member's name, not a field of the body
        else:
            path += f".{part}" if path else part
        previous = part
    return path or "body"


def parse_input(body: bytes) -> RunAgentInput:
    """The body as AG-UI's own RunAgentInput; RequestError names the first bad field."""
    try:
        agent_input = RunAgentInput.model_validate_json(body)
    except ValidationError as exc:
        # The deepest error: of a union (a string or a list of parts), the member the body meant.
        first = max(exc.errors(), key=lambda error: len(error["loc"]))
        if first["type"] == "json_invalid":
            raise RequestError("body", f"must be a JSON RunAgentInput: {first['msg']}") from None
        raise RequestError(field_of(first["loc"]), first["msg"], 422) from None
    for name, value in (("threadId", agent_input.thread_id), ("runId", agent_input.run_id)):
        if not value.strip() or len(value) > MAX_ID_CHARS:
            raise RequestError(name, f"must be a non-empty string of at most {MAX_ID_CHARS} characters", 422)
    return agent_input


def run_request(agent_input: RunAgentInput, max_content_chars: int, limits: Limits) -> RunRequest:
    """The run the input asks for, validated by the runs API's own schema code; fields named as
    the client wrote them. Tool results, activity and reasoning messages are not replayed: our
    tools run on the server, within the turn."""
    messages: list[dict[str, Any]] = []
    where: list[int] = []  # the input's index of each message kept
    for index, message in enumerate(agent_input.messages):
        converted = _message(index, message)
        if converted is not None:
            messages.append(converted)
            where.append(index)
    props = agent_input.forwarded_props
    body: dict[str, Any] = {"messages": messages}
    if isinstance(props, dict) and "model" in props:
        body["model"] = props["model"]
    try:
        return parse_run_request(json.dumps(body).encode(), max_content_chars, limits)
    except RequestError as exc:
        named = _INDEX.sub(lambda m: f"messages[{where[int(m.group(1))]}]", exc.field)
        raise RequestError(
            "forwardedProps.model" if named == "model" else named, exc.message, exc.status
        ) from None


def _message(index: int, message: Message) -> dict[str, Any] | None:
    if isinstance(message, UserMessage):
        if isinstance(message.content, str):
            return {"role": "user", "content": message.content}
        parts = [_part(f"messages[{index}].content[{at}]", part) for at, part in enumerate(message.content)]
        return {"role": "user", "content": parts}
    if isinstance(message, SystemMessage | DeveloperMessage):
        return {"role": "system", "content": message.content}
    if isinstance(message, AssistantMessage) and message.content:
        return {"role": "assistant", "content": message.content}
    return None


def _part(where: str, part: AgUiPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        source = part.source
        if isinstance(source, UrlSource):
            url = source.value  # the schema refuses links by name
        elif source.type == "data":
            url = f"data:{source.mime_type};base64,{source.value}"
        else:
            raise RequestError(f"{where}.source", "must be a data source (base64) or a URL")
        return {"type": "image_url", "image_url": {"url": url}}
    raise RequestError(f"{where}.type", "must be text or image")


def our_run_id(owner: str, thread_id: str, run_id: str) -> str:
    """Our run's id for a client's (thread, run): derived, so every instance finds the same run."""
    digest = hashlib.sha256("\0".join((owner, thread_id, run_id)).encode()).digest()
    return "agui_" + base64.urlsafe_b64encode(digest[:18]).decode()


def build_ag_ui_router(api: Api) -> APIRouter:
    """The AG-UI routes, bound to `api`."""
    router = APIRouter(prefix=PATH)

    @router.post("")
    async def run_agent(request: Request) -> Response:
        try:
            principal = api.access.authorize(request.headers.get("authorization"))
            agent_input = parse_input(await request.body())
            run = run_request(agent_input, api.turns.max_content_chars, api.limits)
            await _check_model(api, run.model)
            ours = our_run_id(principal, agent_input.thread_id, agent_input.run_id)
            record = await api.manager.start(
                principal,
                api.turns.stream(run.messages, run.model),
                api.settings.api_max_runs,
                model=run.model,
                run_id=ours,
            )
        except AccessError as exc:
            return _refused(exc)
        except RequestError as exc:
            return error_response(exc.status, "invalid_request", exc.message, field=exc.field)
        except RunLimitError as exc:
            return error_response(429, "limit_exceeded", str(exc))
        except ValueError:  # the log has this run already: a runId is one run
            return error_response(
                409, "conflict", f"run {agent_input.run_id} of this thread was started before", field="runId"
            )
        props = agent_input.forwarded_props
        cancel = isinstance(props, dict) and props.get("cancelOnDisconnect") is True
        presenter = Presenter(agent_input.thread_id, agent_input.run_id)
        return _respond(api, principal, record.id, presenter, None, cancel)

    @router.get("/runs/{run_id}/events")
    async def resume(run_id: str, request: Request) -> Response:
        thread_id = request.query_params.get("threadId", "")
        raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        try:
            principal = api.access.authorize(request.headers.get("authorization"))
            if not thread_id:
                raise RequestError(
                    "threadId", "is required: the thread of the run, as sent in its RunAgentInput"
                )
            ours = our_run_id(principal, thread_id, run_id)
            try:
                owner = (await api.manager.log.get(ours)).owner
            except RunExpiredError:
                return error_response(
                    410, "replay_window_exceeded", f"run {run_id} ended too long ago; its events are gone"
                )
            except UnknownRunError:
                owner = None
            if owner != principal:  # derived from the key, so another key's run is never found
                return error_response(404, "not_found", f"no run {run_id} in thread {thread_id}")
            after = Position.parse(raw) if raw else None
            if after is not None and after.log_id is not None:
                await api.manager.log.check_id(ours, after.log_id)
        except AccessError as exc:
            return _refused(exc)
        except RequestError as exc:
            return error_response(exc.status, "invalid_request", exc.message, field=exc.field)
        except InvalidEventIdError as exc:
            return error_response(400, "invalid_request", str(exc), field="Last-Event-ID")
        return _respond(api, principal, ours, Presenter(thread_id, run_id), after, False)

    return router


def _refused(exc: AccessError) -> Response:
    response = error_response(exc.status, exc.code, exc.message)
    response.headers.update(exc.headers)
    return response


async def _check_model(api: Api, model: str | None) -> None:
    try:
        await api.turns.check_model(model)
    except RequestError as exc:  # named where AG-UI carries it
        raise RequestError("forwardedProps.model", exc.message, exc.status) from None


def _respond(
    api: Api, principal: str, ours: str, presenter: Presenter, after: Position | None, cancel: bool
) -> Response:
    """The event stream of run `ours`, counted against the key's open streams."""
    if (busy := api.slots.refusal(principal)) is not None:
        return error_response(429, "limit_exceeded", busy)

    async def events(outcome: Outcome) -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in stream(api.manager.log, ours, presenter, after):
                yield chunk
            outcome.reason = "ended"
        except RunLogError as exc:  # a disconnect: the client resumes from its last id
            log.info("AG-UI stream of %s closed: %s", ours, exc)

    return EventSourceResponse(
        api.slots.held(principal, events, partial(api.manager.cancel_soon, ours) if cancel else None),
        ping=api.settings.sse_heartbeat,  # comment lines, which AG-UI's parser skips
        sep="\n",  # @ag-ui/client splits events on "\n\n" only
        send_timeout=api.settings.sse_send_timeout,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no", RUN_ID_HEADER: ours},
    )
