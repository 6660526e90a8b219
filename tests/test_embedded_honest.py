"""The built-in SmolLM2 is said to be what it is: a new chat opens with one line on what it can and
cannot do, and neither the chat nor the API offers it tools (it cannot call them; offered, it
answers wrongly). The real app on the real embedded model."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.harness import clean_env, running_app
from tests.sio_client import ChatClient

pytestmark = pytest.mark.e2e


async def test_embedded_model_when_chat_opens_then_note_says_its_limits_and_no_tool_is_offered(
    tmp_path: Path,
) -> None:
    with running_app(env=clean_env(), log_dir=tmp_path, timeout=180) as (url, _):
        client = ChatClient(url)
        try:
            await client.connect(seconds=60)
            (note,) = client.notes.values()
            assert "built-in SmolLM2-135M" in note and "cannot use tools" in note and "--base-url" in note
            await client.send("What is 6*7? Use the calculator.")
            await client.wait_task_ends(3, seconds=180)
        finally:
            await client.close()
        tool_steps = [data for _, _, data in client.log if data.get("type") == "tool"]
        assert tool_steps == [] and client.reply().strip()
        async with httpx.AsyncClient(base_url=url, timeout=180, headers={"Origin": url}) as http:
            run = (
                await http.post("/api/v1/runs", json={"messages": [{"role": "user", "content": "Hi"}]})
            ).json()
            async with http.stream("GET", run["events_url"]) as events:
                kinds = [line[7:] async for line in events.aiter_lines() if line.startswith("event: ")]
    assert "tool_call" not in kinds and kinds[-1] == "done", kinds
