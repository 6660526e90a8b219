"""A plain Chainlit app streaming OpenAI replies as Chainlit's cookbook does, made smooth by smart-agent.

Run it against any OpenAI-compatible server:

    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 OPENAI_API_KEY=... OPENAI_MODEL=... chainlit run app.py

The whole change from the cookbook's app is one line in `on_message` (and its import):

    -    msg = cl.Message(content="")
    +    msg = smooth(cl.Message(content=""))
"""

import os

import chainlit as cl
from openai import AsyncOpenAI

from smart_agent import smooth

client = AsyncOpenAI()  # reads OPENAI_API_KEY and OPENAI_BASE_URL
settings = {"model": os.environ.get("OPENAI_MODEL", "gpt-4o-mini"), "temperature": 0}


@cl.on_chat_start
async def start_chat() -> None:
    cl.user_session.set("message_history", [{"role": "system", "content": "You are a helpful assistant."}])


@cl.on_message
async def on_message(message: cl.Message) -> None:
    message_history = cl.user_session.get("message_history")
    message_history.append({"role": "user", "content": message.content})

    msg = smooth(cl.Message(content=""))

    stream = await client.chat.completions.create(messages=message_history, stream=True, **settings)
    async for part in stream:
        if token := part.choices[0].delta.content or "":
            await msg.stream_token(token)

    message_history.append({"role": "assistant", "content": msg.content})
    await msg.send()
