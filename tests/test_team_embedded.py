"""The Team profile end to end on the real embedded model: the app knows it runs on it (the launcher
hands it over as a URL and key), so members take turns; the page says at once who works and who
waits; a Team step with a step per built-in member, each with notes, and an answer."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.chat_page import ChatPage
from tests.conftest import AppFactory
from tests.harness import clean_env, running_app
from tests.sio_client import ChatClient
from tests.test_team_app import step_text, steps

pytestmark = pytest.mark.e2e

MEMBERS = ["researcher", "critic", "planner"]


def states(status: str) -> dict[str, str]:
    """`researcher: writing 12 · critic: waiting` as {member: state}."""
    return dict(re.findall(r"(\w+): (\w+)", status))


async def test_team_when_on_embedded_model_then_members_take_turns_and_an_answer_follows(
    tmp_path: Path,
) -> None:
    # no OPENAI_API_KEY / OPENAI_BASE_URL and no --team-concurrency: only the embedded fact,
    # carried from the launcher to the app, makes the members take turns
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
    assert [s["name"] for s in members] == MEMBERS
    for member in members:
        assert step_text(client, member["id"]).strip(), member["name"]
        assert not member.get("isError"), step_text(client, member["id"])
    assert client.reply().strip()
    assert "done" in step_text(client, team["id"])
    statuses = [
        states(data["output"])
        for _, kind, data in client.log
        if data.get("id") == team["id"] and kind == "update_message" and ":" in (data.get("output") or "")
    ]
    assert statuses, "no status line"
    for status in statuses:
        assert list(status.values()).count("writing") <= 1, statuses
    # each in its turn, the others waiting before it and done after
    for number, name in enumerate(MEMBERS):
        writing = [s for s in statuses if s[name] == "writing"]
        assert writing, (name, statuses)
        assert all(s[other] == "done" for s in writing for other in MEMBERS[:number]), statuses
        assert all(s[other] == "waiting" for s in writing for other in MEMBERS[number + 1 :]), statuses


@pytest.mark.timing
def test_team_when_on_embedded_model_in_a_browser_then_within_a_second_it_shows_who_works_and_who_waits(
    browser: Browser, start_app: AppFactory
) -> None:
    url = start_app("--profile", "team", env=clean_env(), timeout=180)
    chat = ChatPage.open(browser, url)
    try:
        sent = time.monotonic()
        chat.send("Name three fruits.")
        chat.page.wait_for_function(
            "() => /researcher: writing.*critic: waiting.*planner: waiting/.test(document.body.innerText)",
            timeout=30_000,
        )
        shown = time.monotonic() - sent
        assert shown < 1.0, f"the page showed the team at work {shown:.2f} s after the message"
        # the next member's turn: the first is done, the last still waits
        chat.page.wait_for_function(
            "() => /researcher: done.*critic: writing.*planner: waiting/.test(document.body.innerText)",
            timeout=120_000,
        )
        chat.page.click("#stop-button")
        chat.wait_turns(1, timeout=30)
    finally:
        chat.close()
