"""Chainlit handlers: glue between the browser session and the streaming reply."""

from __future__ import annotations

import logging
from typing import Any

import chainlit as cl

from smart_agent.config import Settings, load_settings
from smart_agent.errors import ModelError
from smart_agent.llm.chat import stream_text
from smart_agent.llm.client import make_client, resolve_model
from smart_agent.streaming import BatchPolicy, SmoothStreamWrapper
from smart_agent.web.reply import deliver

SETTINGS: Settings = load_settings()
if SETTINGS.debug:
    logging.basicConfig(format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("smart_agent").setLevel(logging.DEBUG)


def _policy(settings: Settings) -> BatchPolicy:
    return BatchPolicy(
        enabled=settings.stream_batching,
        batch_size=settings.batch_size,
        flush_interval=settings.flush_interval,
        max_events_per_second=settings.max_events_per_second,
    )


@cl.on_chat_start
async def on_chat_start() -> None:
    """Give the session its own client and an empty history."""
    history: list[dict[str, Any]] = []
    if SETTINGS.system_prompt:
        history.append({"role": "system", "content": SETTINGS.system_prompt})
    cl.user_session.set("history", history)
    cl.user_session.set("client", make_client(SETTINGS))


@cl.on_message
async def on_message(message: cl.Message) -> None:
    """Stream the model's reply to the user's message through the batching wrapper."""
    history: list[dict[str, Any]] = cl.user_session.get("history")
    client = cl.user_session.get("client")
    history.append({"role": "user", "content": message.content})
    try:
        model = cl.user_session.get("model") or await resolve_model(client, SETTINGS)
    except ModelError as exc:
        await cl.ErrorMessage(content=str(exc)).send()
        return
    cl.user_session.set("model", model)
    reply = SmoothStreamWrapper(cl.Message(content=""), _policy(SETTINGS))
    try:
        outcome = await deliver(stream_text(client, SETTINGS, model, history), reply)
    finally:
        # Runs on stop (cancellation) too, so the next turn sees what the user saw.
        if reply.content:
            history.append({"role": "assistant", "content": reply.content})
    if outcome.error is not None:
        await cl.ErrorMessage(content=str(outcome.error)).send()
