"""The Team profile end to end on the real embedded model (structure only): a Team step with a
step per built-in member, each with notes, and an answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import clean_env, running_app
from tests.sio_client import ChatClient
from tests.test_team_app import step_text, steps

pytestmark = pytest.mark.e2e


async def test_team_when_on_embedded_model_then_members_take_turns_and_an_answer_follows(
    tmp_path: Path,
) -> None:
    with running_app("--profile", "team", env=clean_env(), log_dir=tmp_path, timeout=180) as (url, _):
        client = ChatClient(url)
        try:
            await client.connect()
            await client.send("Name three fruits.")
            await client.wait_task_ends(3, seconds=400)
        finally:
            await client.close()
    found = steps(client)
    (team,) = [s for s in found.values() if s["name"] == "Team"]
    members = [s for s in found.values() if s.get("parentId") == team["id"]]
    assert [s["name"] for s in members] == ["researcher", "critic", "planner"]
    for member in members:
        assert step_text(client, member["id"]).strip(), member["name"]
        assert not member.get("isError"), step_text(client, member["id"])
    assert client.reply().strip()
    assert "done" in step_text(client, team["id"])
