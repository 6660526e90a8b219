"""What `POST /v1/chat/completions` accepts: OpenAI's request, checked by the runs API's own schema code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from smart_agent.api.schema import RequestError, parse_run_request
from smart_agent.attachments.files import Limits

ASSISTANT_MODEL = "smart-agent"
"""The model id of the assistant (one agent with its tools) on the server's default backend model."""
TEAM_MODEL = "smart-agent-team"
"""The model id of the Team profile (members, then a synthesis) on the server's default backend model."""
PROFILES = {ASSISTANT_MODEL: False, TEAM_MODEL: True}
"""Each profile's model id, and whether it is the Team's."""
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_CLIENT_TOOLS = ("tools", "functions")


@dataclass(frozen=True)
class ModelChoice:
    """What a `model` id asks for: the profile, and the backend model (None: the server's default)."""

    id: str
    team: bool
    backend: str | None


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat-completion request, its messages in the runs API's form."""

    messages: list[dict[str, Any]]
    model: ModelChoice
    stream: bool
    include_usage: bool


class UnknownModelError(LookupError):
    """A `model` id that names no profile (or names a backend model the server does not list)."""

    def __init__(self, model: str) -> None:
        super().__init__(model)
        self.model = model


def model_ids(backend_models: tuple[str, ...]) -> list[str]:
    """Every model id a client may ask for: each profile alone, then each on each backend model."""
    return [*PROFILES, *(f"{profile}/{model}" for profile in PROFILES for model in backend_models)]


def choose_model(model: str) -> ModelChoice:
    """The profile and backend model that `model` names, or UnknownModelError."""
    if model in PROFILES:
        return ModelChoice(model, PROFILES[model], None)
    profile, slash, backend = model.partition("/")
    if slash and profile in PROFILES and backend.strip():
        return ModelChoice(model, PROFILES[profile], backend)
    raise UnknownModelError(model)


def parse_chat_request(body: bytes, max_content_chars: int, limits: Limits | None) -> ChatRequest:
    """Validate a chat-completion body; RequestError names the first bad field, UnknownModelError
    an unknown model. Fields OpenAI defines that smart-agent has no use for (temperature, max_tokens,
    user, ...) are accepted and ignored."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise RequestError("body", "must be JSON, an object with model and messages") from None
    if not isinstance(data, dict):
        raise RequestError("body", "must be a JSON object with model and messages")
    model = data.get("model")
    if not isinstance(model, str) or not model.strip():
        raise RequestError(
            "model", f"must be a model id such as {ASSISTANT_MODEL!r} (GET /v1/models lists them)"
        )
    stream = data.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise RequestError("stream", "must be true or false")
    include_usage = _include_usage(data.get("stream_options"), bool(stream))
    if data.get("n") not in (None, 1):
        raise RequestError("n", "must be 1: smart-agent writes one answer per request")
    for name in _CLIENT_TOOLS:
        if data.get(name):
            raise RequestError(
                name, "client-side tools are not supported: smart-agent runs its own tools on the server"
            )
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages", 'must be a non-empty list of {"role", "content"} objects')
    converted = [_message(index, item) for index, item in enumerate(messages)]
    run = parse_run_request(json.dumps({"messages": converted}).encode(), max_content_chars, limits)
    return ChatRequest(run.messages, choose_model(model.strip()), bool(stream), include_usage)


def _include_usage(options: Any, stream: bool) -> bool:
    if options is None:
        return False
    if not isinstance(options, dict):
        raise RequestError("stream_options", 'must be an object such as {"include_usage": true}')
    if not stream:
        raise RequestError("stream_options", "is only allowed when stream is true")
    include = options.get("include_usage", False)
    if not isinstance(include, bool):
        raise RequestError("stream_options.include_usage", "must be true or false")
    return include


def _message(index: int, item: Any) -> Any:
    """One message in the runs API's form: OpenAI's extra fields dropped, a developer message a system
    one, text parts of a system or assistant message joined; the runs schema checks the rest."""
    where = f"messages[{index}]"
    if not isinstance(item, dict):
        return item  # the runs schema names what is wrong with it
    role = item.get("role")
    if role in ("tool", "function") or item.get("tool_calls"):
        raise RequestError(
            f"{where}.role" if role in ("tool", "function") else f"{where}.tool_calls",
            "client-side tool calls are not supported: smart-agent runs its own tools on the server",
        )
    if role not in _ROLES:
        raise RequestError(f"{where}.role", f"must be one of {', '.join(_ROLES)}")
    content = item.get("content")
    if isinstance(content, list) and role != "user":
        texts = [part.get("text") for part in content if isinstance(part, dict)]
        if len(texts) != len(content) or not all(isinstance(text, str) for text in texts):
            raise RequestError(f"{where}.content", "a non-user message may hold only text parts")
        content = "".join(str(text) for text in texts)
    return {"role": _ROLES[role], "content": content}
