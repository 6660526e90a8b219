"""Long conversations over real Socket.IO against a scripted server with a context limit: the
oldest turns are left out, an oversized paste is refused, and every other turn is answered."""

from __future__ import annotations

import json

import pytest

from tests.conftest import AppFactory
from tests.harness import clean_env
from tests.scripted_server import MODEL_ID, ScriptedServer, request_tokens, script_tokens
from tests.sio_client import connected

TURNS = 20
PASTE_AT = 10
# The server counts 2 characters a token, stricter than smart-agent's estimate, so some
# requests that smart-agent fitted to 4,096 tokens are refused and retried with less.
SCRIPT = "#script tokens=150 kind=markdown ctx=3000"


@pytest.mark.parametrize("max_input_chars", ["", "100000"])
async def test_twenty_turns_with_oversized_paste_when_context_limited_then_every_other_turn_answered(
    start_app: AppFactory, scripted: ScriptedServer, max_input_chars: str
) -> None:
    env = clean_env(
        OPENAI_API_KEY="k",
        SMART_AGENT_CONTEXT_TOKENS="4096",
        SMART_AGENT_SYSTEM_PROMPT="Be brief.",
        SMART_AGENT_MAX_INPUT_CHARS=max_input_chars,
    )
    url = start_app("--base-url", scripted.url, "--model", MODEL_ID, env=env)
    expected = "".join(script_tokens(150, "markdown"))
    first_request = len(scripted.requests)
    answered: list[int] = []
    async with connected(url) as client:
        for number in range(TURNS):
            shown = len(client.order)
            if number == PASTE_AT:
                await client.send(f"{SCRIPT}\n" + "pasted text " * 3400)  # 40,800 characters
            else:
                await client.send(f"{SCRIPT}\nturn {number}")
            await client.wait_task_ends(3 + number)
            new = client.reply(since=shown)
            if number == PASTE_AT:
                assert "limit is" in new or "too long for the model's context" in new, new
            elif new == expected:
                answered.append(number)
    assert answered == [n for n in range(TURNS) if n != PASTE_AT]
    requests = scripted.requests[first_request:]
    assert all(r["messages"][0] == {"role": "system", "content": "Be brief."} for r in requests)
    assert not any("pasted text pasted text" in json.dumps(r) for r in requests)
    served = [r for r in requests if request_tokens(r["messages"]) <= 3000]
    assert len(served) >= TURNS - 1
    assert len(served) < len(requests)  # some were refused for their length and retried
    assert len(client.notes) == 1  # said once, quietly
    assert "left out" in next(iter(client.notes.values()))
