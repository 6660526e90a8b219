"""The Team profile in the real app over Socket.IO: the Team step, a step per member under it in
order, each with its own text, a page-wide event rate under the cap, then the answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smart_agent.history.urls import HISTORY_FILE
from tests.harness import clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, member_tokens
from tests.sio_client import ChatClient, connected
from tests.test_history_app import reply_text, settled

NAMES = ("alpha", "beta", "gamma")
CAP = 20


def team_file(tmp_path: Path, **directives: str) -> str:
    members = "".join(
        f'[[members]]\nname = "{n}"\nprompt = "You are {n}.\\n#member {n} {directives.get(n, "")}"\n\n'
        for n in NAMES
    )
    path = tmp_path / "team.toml"
    path.write_text(members + '[synthesiser]\nprompt = "Answer.\\n#member synth"\n')
    return str(path)


def step_text(client: ChatClient, step_id: str) -> str:
    """The step's output as the page shows it after every event, in order (like the page, an
    update or a token for a step it was never sent is ignored)."""
    text = ""
    created = False
    for _, kind, data in client.log:
        if data.get("id") != step_id:
            continue
        created = created or kind in {"new_message", "stream_start"}
        if not created:
            continue
        if kind == "stream_token" and not data.get("isInput"):
            text = data["token"] if data.get("isSequence") else text + data["token"]
        elif kind in {"new_message", "stream_start", "update_message"}:
            text = data.get("output") or ""
    return text


def steps(client: ChatClient) -> dict[str, dict[str, Any]]:
    """The latest dict of every step the page was sent (type tool), by id, in first-seen order."""
    seen: dict[str, dict[str, Any]] = {}
    for _, kind, data in client.log:
        if kind == "update_message" and data.get("id") not in seen:
            continue  # the page ignores an update of a step it does not have
        if kind != "stream_token" and data.get("type") == "tool":
            seen[data["id"]] = {**seen.get(data["id"], {}), **data}
    return seen


async def test_team_turn_when_members_stream_then_steps_nest_in_order_under_the_cap_and_answer_follows(
    scripted_app: Callable[..., str], scripted: ScriptedServer, tmp_path: Path
) -> None:
    url = scripted_app(
        "--profile", "team", "--team-config", team_file(tmp_path), "--max-events-per-second", str(CAP)
    )
    async with connected(url) as client:
        before = len(client.log)
        await client.send("#script tokens=1500 rate=1000")
        await client.wait_task_ends(3, 60)
        log = client.log[before:]
        client.log = log
        found = steps(client)
        team = [s for s in found.values() if s["name"] == "Team"]
        assert len(team) == 1
        team_id = team[0]["id"]
        members = {s["name"]: s for s in found.values() if s.get("parentId") == team_id}
        assert set(members) == set(NAMES)
        first_seen = {data["id"]: i for i, (_, _, data) in reversed(list(enumerate(log)))}
        for name, step in members.items():
            # the parent went out before the child, or the page would drop it
            assert first_seen[team_id] < first_seen[step["id"]]
            assert step_text(client, step["id"]) == "".join(member_tokens(name, 1500))
            assert step.get("start") and step.get("end")  # collapsed once the answer started
        answer = "".join(member_tokens("synth", 1500))
        assert client.reply().endswith(answer)
        # The answer started after every member's step was folded.
        answer_start = min(
            i
            for i, (_, k, d) in enumerate(log)
            if d.get("type") == "assistant_message"
            and k in {"stream_start", "new_message"}
            and d.get("name") != "stats"
        )
        folded = [
            i
            for i, (_, k, d) in enumerate(log)
            if k == "update_message" and d.get("id") == team_id and d.get("end")
        ]
        assert folded and folded[0] < answer_start
        # Page-wide: the members' stream events share one budget.
        member_ids = {s["id"] for s in members.values()}
        times = [t for t, k, d in log if k in {"stream_start", "stream_token"} and d.get("id") in member_ids]
        # Counted over 2 s as received (a pause in this process bunches a second's events); each
        # stream's first and last event go at once. Capped per stream instead: about 63 a second.
        worst = max(sum(1 for u in times[i:] if u < t + 2.0) for i, t in enumerate(times))
        assert worst <= 2 * CAP + 2 * len(NAMES) + 2
        assert len(times) >= 3 * 3
        duration = times[-1] - times[0]
        assert len(times) / max(duration, 1.0) <= 25


async def test_team_turn_when_one_member_fails_then_its_step_says_so_and_others_answer(
    scripted_app: Callable[..., str], tmp_path: Path
) -> None:
    url = scripted_app("--profile", "team", "--team-config", team_file(tmp_path, beta="status=503"))
    async with connected(url) as client:
        await client.send("#script tokens=20 rate=200")
        await client.wait_task_ends(3, 60)
        found = steps(client)
        by_name = {s["name"]: s for s in found.values()}
        assert by_name["beta"].get("isError") is True
        assert "503" in step_text(client, by_name["beta"]["id"])
        assert step_text(client, by_name["alpha"]["id"]) == "".join(member_tokens("alpha", 20))
        assert client.reply().endswith("".join(member_tokens("synth", 20)))
        # the chat keeps working
        shown = len(client.order)
        await client.send("#script tokens=5")
        await client.wait_task_ends(4, 60)
        assert client.reply(since=shown).endswith("".join(member_tokens("synth", 5)))


async def test_team_turn_when_stopped_then_every_member_step_says_stopped_and_nothing_follows(
    scripted_app: Callable[..., str], scripted: ScriptedServer, tmp_path: Path
) -> None:
    url = scripted_app("--profile", "team", "--team-config", team_file(tmp_path))
    async with connected(url) as client:
        first_span = len(scripted.spans)
        await client.send("#script tokens=600 rate=40")

        def writing() -> bool:
            found = steps(client)
            return sum(1 for s in found.values() if s["name"] in NAMES and step_text(client, s["id"])) == 3

        await client.wait_until(writing, 30)
        await client.stop()
        await client.wait_task_ends(3, 30)
        spans = scripted.spans[first_span:]
        assert await asyncio.to_thread(scripted.wait_ended, spans, 5.0)
        assert not any(s.complete for s in spans) and "synth" not in {s.member for s in spans}
        count = len(client.log)
        stopped = set(steps(client))
        # The sentinel: a whole next turn. Anything the stopped turn still had going would have
        # reached the page while this one ran; none of it may come after the stop's task_end.
        await client.send("#script tokens=5 rate=400")
        await client.wait_task_ends(4, 60)
        assert [data.get("id") for _, _, data in client.log[count:] if data.get("id") in stopped] == []
        found = steps(client)
        members = [s for s in found.values() if s["name"] in NAMES and s["id"] in stopped]
        assert len(members) == 3
        for step in members:
            assert step_text(client, step["id"]).endswith("_Stopped._")


async def test_team_turn_when_members_not_streamed_live_then_each_step_gets_its_notes_whole(
    start_app: Callable[..., str], scripted: ScriptedServer, tmp_path: Path
) -> None:
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_TEAM_STREAM_LIVE="0")
    flags = ("--base-url", scripted.url, "--model", MODEL_ID, "--profile", "team")
    url = start_app(*flags, "--team-config", team_file(tmp_path), env=env)
    async with connected(url) as client:
        await client.send("#script tokens=200 rate=400")
        await client.wait_task_ends(3, 60)
        found = steps(client)
        members = {s["name"]: s["id"] for s in found.values() if s["name"] in NAMES}
        assert set(members) == set(NAMES)
        for name, step_id in members.items():
            assert step_text(client, step_id) == "".join(member_tokens(name, 200))
            assert not [k for _, k, d in client.log if d.get("id") == step_id and k == "stream_token"]
        assert client.reply().endswith("".join(member_tokens("synth", 200)))


async def test_team_turn_when_page_reconnects_mid_members_then_every_step_and_the_answer_are_whole(
    scripted_app: Callable[..., str], tmp_path: Path
) -> None:
    url = scripted_app("--profile", "team", "--team-config", team_file(tmp_path))
    first = ChatClient(url)
    await first.connect()
    await first.send("#script tokens=300 rate=100")

    def writing() -> bool:
        found = steps(first)
        texts = [step_text(first, s["id"]) for s in found.values() if s["name"] in NAMES]
        return len(texts) == 3 and all(len(t.split()) >= 20 for t in texts)

    await first.wait_until(writing, 30)
    await first.close()  # a drop while the members write; the turn goes on
    again = ChatClient(url, session_id=first.session_id)
    await again.connect(headers=dict(first.login), task_ends=1)
    try:
        await again.wait_task_ends(2, 60)  # the reconnect's own, then the turn's
    finally:
        await again.close()
    found = steps(again)
    (team,) = [s for s in found.values() if s["name"] == "Team"]
    members = {s["name"]: s for s in found.values() if s.get("parentId") == team["id"]}
    assert set(members) == set(NAMES)
    for name, step in members.items():
        assert step_text(again, step["id"]) == "".join(member_tokens(name, 300))
        assert step.get("end")
    assert again.reply().endswith("".join(member_tokens("synth", 300)))


async def test_team_chat_when_reopened_after_a_restart_then_members_see_only_the_answer_and_it_goes_on(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    env = clean_env(OPENAI_API_KEY="test-key")
    flags = (
        "--base-url",
        scripted.url,
        "--model",
        MODEL_ID,
        "--profile",
        "team",
        "--team-config",
        team_file(tmp_path),
    )
    thread: list[str] = []
    with running_app(*flags, env=env, log_dir=tmp_path) as (url, _):
        client = ChatClient(url)

        @client.sio.on("first_interaction")  # type: ignore[untyped-decorator]
        async def first_interaction(data: dict[str, Any]) -> None:
            thread.append(data["thread_id"])

        await client.connect()
        try:
            await client.send("#script tokens=30")
            await client.wait_task_ends(3, 60)
        finally:
            await client.close()
        answer = "".join(member_tokens("synth", 30))
        await settled(tmp_path / "data" / HISTORY_FILE, lambda r: reply_text(r).endswith(answer))
    with running_app(*flags, env=env, log_dir=tmp_path) as (url, _):
        client = ChatClient(url, thread_id=thread[0])
        await client.connect(task_ends=1)
        try:
            await client.wait_resumed()
            seen = len(scripted.requests)
            await client.send("#script tokens=5")
            await client.wait_text(lambda text: text.endswith("".join(member_tokens("synth", 5))), 60)
        finally:
            await client.close()
    turn = scripted.requests[seen:]
    alpha = next(r for r in turn if "#member alpha" in r["messages"][0]["content"])
    assert alpha["messages"][1:] == [
        {"role": "user", "content": "#script tokens=30"},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "#script tokens=5"},
    ]
