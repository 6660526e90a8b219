"""The backend's models: `GET /v1/models`, bounded in time and cached, and the checks built on it."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import openai

from smart_agent.config import Settings
from smart_agent.errors import ModelError
from smart_agent.llm.client import OPENAI_DEFAULT_MODEL, describe_error, make_client, redact_url

log = logging.getLogger("smart_agent.models")
LIST_SECONDS = 5.0
"""The longest a model list may take: a chat must not wait on a slow `/v1/models`."""
CACHE_SECONDS = 60.0
"""How long a list is reused: every chat asks when it starts (Chainlit has no "settings opened")."""


@dataclass(frozen=True)
class ModelList:
    """The models a backend lists; `ids` is empty and `error` says why when the list is unknown."""

    ids: tuple[str, ...]
    error: str | None = None

    @property
    def known(self) -> bool:
        """Whether the server listed its models (a server without `/v1/models` did not)."""
        return self.error is None

    def allows(self, model: str) -> bool:
        """Whether `model` may be asked for: listed, or the list is unknown (the server decides)."""
        return not self.known or model in self.ids


_cache: dict[str, tuple[float, ModelList]] = {}


async def available_models(client: openai.AsyncOpenAI, settings: Settings) -> ModelList:
    """The backend's models, at most CACHE_SECONDS old; asking takes at most LIST_SECONDS."""
    key = str(client.base_url)
    now = time.monotonic()
    cached = _cache.get(key)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    try:
        async with asyncio.timeout(LIST_SECONDS):
            page = await client.models.list()
        found = ModelList(tuple(dict.fromkeys(model.id for model in page.data)))
    except TimeoutError:
        found = ModelList((), f"The model server at {_where(settings)} did not list its models in time.")
    except openai.APIConnectionError:
        found = ModelList((), f"Could not connect to the model server at {_where(settings)}: is it running?")
    except openai.NotFoundError:  # llama.cpp's older servers, some proxies
        found = ModelList(
            (), f"The model server at {_where(settings)} does not list its models (no /v1/models)."
        )
    except openai.OpenAIError as exc:
        found = ModelList((), str(describe_error(exc, settings)))
    _cache[key] = (now, found)
    return found


async def fetch_models(settings: Settings) -> ModelList:
    """The configured backend's models, with a client of its own (`smart-agent models`)."""
    client = make_client(settings)
    try:
        return await available_models(client, settings)
    finally:
        await client.close()


def forget_models() -> None:
    """Drop every cached list (tests; a backend whose models changed)."""
    _cache.clear()


async def resolve_model(client: openai.AsyncOpenAI, settings: Settings) -> str:
    """The model to ask: the configured one, else the server's first, else OpenAI's default."""
    if settings.model:
        return settings.model
    if settings.base_url is None:
        return OPENAI_DEFAULT_MODEL
    models = await available_models(client, settings)
    if models.error is not None:
        raise ModelError(f"{models.error} Name the model to use with --model.")
    if not models.ids:
        raise ModelError(
            f"The model server at {_where(settings)} offers no model to chat with; "
            "start smart-agent with the name of one (--model)."
        )
    return models.ids[0]


def unlisted(model: str, models: ModelList) -> str | None:
    """A warning when the server lists its models and `model` is not among them."""
    if not models.known or model in models.ids:
        return None
    shown = ", ".join(models.ids[:20]) + (" …" if len(models.ids) > 20 else "")
    return f"the model {model!r} is not among the models the server lists ({shown or 'none'})"


def _where(settings: Settings) -> str:
    return redact_url(settings.base_url) if settings.base_url else "the OpenAI API"
