"""A page reloaded while its reply is generated: the thread, then the reply live to its exact end.

A reload is a new session resuming the thread (a second ChatClient with the thread id) while the old
one's socket is gone. The moment of the reload is swept across the reply.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from smart_agent.history.urls import HISTORY_FILE
from tests.harness import clean_env, running_app
from tests.redis_server import RedisServer
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens
from tests.sio_client import ChatClient
from tests.test_history_app import settled

SEGMENT_CHARS = 60  # a segment ends at the first paragraph end past 60 characters
Moment = Callable[[ChatClient], Awaitable[None]]


@dataclass(frozen=True)
class App:
    url: str
    database: Path


@pytest.fixture(scope="module")
def app(scripted: ScriptedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """One app with history on for the module (each case has a thread of its own)."""
    tmp = tmp_path_factory.mktemp("reload")
    env = clean_env(
        OPENAI_API_KEY="test-key",
        SMART_AGENT_HISTORY="1",
        SMART_AGENT_SEGMENT_CHARS=str(SEGMENT_CHARS),
        SMART_AGENT_SHOW_STATS="1",  # a stopped reply's footer says so (the stop test waits for it)
    )
    with running_app("--base-url", scripted.url, "--model", MODEL_ID, env=env, log_dir=tmp) as (url, _):
        yield App(url, tmp / "data" / HISTORY_FILE)


def thread_rows(rows: dict[str, list[dict[str, Any]]], thread_id: str) -> list[dict[str, Any]]:
    """The thread's steps, in the order the page shows them."""
    return [step for step in rows["steps"] if step["threadId"] == thread_id]


def stored_reply(rows: dict[str, list[dict[str, Any]]], thread_id: str) -> str:
    """The stored reply text of the thread (every segment, no stats, notes or stop marker)."""
    return "".join(
        step["output"] or ""
        for step in thread_rows(rows, thread_id)
        if step["type"] == "assistant_message"
        and step["name"] not in ("stats", "note")
        and step["output"] != "Task manually stopped."
    )


@dataclass
class Page(ChatClient):
    """A ChatClient that also keeps the tool steps it is shown (id -> output)."""

    tools: dict[str, str] = field(default_factory=dict)

    async def connect(
        self, seconds: float = 30, headers: dict[str, str] | None = None, task_ends: int = 2
    ) -> None:
        """Connect, then watch tool steps too."""
        await super().connect(seconds, headers, task_ends)
        watch_tools(self, self.tools)


def watch_tools(client: ChatClient, tools: dict[str, str]) -> None:
    """Keep `tools` (id -> output) up to date with the tool steps the client is shown."""
    handlers = client.sio.handlers["/"]
    for event in ("new_message", "update_message"):
        shown = handlers[event]

        async def watched(data: dict[str, Any], shown: Any = shown) -> None:
            if data.get("type") == "tool":
                tools[data["id"]] = data.get("output") or ""
                client._changed.set()
            await shown(data)

        handlers[event] = watched


async def reload_at(
    app: App, script: str, moment: Moment, again_at: str | None = None, earlier: str | None = None
) -> tuple[Page, str]:
    """Send `script` from one page (after a whole turn for `earlier`); at `moment` drop it and open the
    thread in a new session (at the instance `again_at`, default the same)."""
    first = Page(app.url)
    thread: list[str] = []

    @first.sio.on("first_interaction")  # type: ignore[untyped-decorator]
    async def first_interaction(data: dict[str, Any]) -> None:
        thread.append(data["thread_id"])

    await first.connect()
    try:
        if earlier is not None:
            await first.send(earlier)
            await first.wait_task_ends(3, 60)
        await first.send(script)
        await moment(first)
        # A reloaded page asks for a thread the sidebar listed: it is stored, with the user's message
        # of this turn (not only an earlier one: Chainlit stores it in a task of its own).
        await settled(
            app.database,
            lambda rows: (
                bool(thread)
                and any(
                    s["type"] == "user_message" and s.get("output") == script
                    for s in thread_rows(rows, thread[0])
                )
            ),
        )
    finally:
        await first.close()
    reloaded = Page(again_at or app.url, thread_id=thread[0])
    await reloaded.connect(task_ends=1)
    await reloaded.wait_resumed()
    return reloaded, thread[0]


def shown_tools(client: ChatClient) -> list[str]:
    """The outputs of the tool steps the client was shown."""
    assert isinstance(client, Page)
    return list(client.tools.values())


async def tool_step_shown(client: ChatClient) -> None:
    """The tool has returned; the model's answer is still delayed."""
    await client.wait_text(lambda _text: shown_tools(client) == ["14"], 60)


def shown_after_resume(client: ChatClient) -> str:
    """What the reloaded page shows of the turn: its stored part, then what followed live."""
    assert client.resumed is not None
    steps = client.resumed["steps"]
    last_user = max(i for i, step in enumerate(steps) if step["type"] == "user_message")
    stored = "".join(
        step["output"] or ""
        for step in steps[last_user + 1 :]
        if step["type"] == "assistant_message" and step["name"] not in ("stats", "note")
    )
    return stored + client.reply()


async def text_reaches(fraction: float, expected: str) -> Moment:
    """The moment the first page shows `fraction` of the reply."""

    async def moment(client: ChatClient) -> None:
        await client.wait_text(lambda text: len(text) >= fraction * len(expected), 60)

    return moment


def markdown(count: int) -> str:
    """The text of `#script tokens=count kind=markdown`: paragraphs, so the reply comes in segments."""
    return "".join(script_tokens(count, "markdown"))


async def at_once(_client: ChatClient) -> None:
    """Right after sending: the model has not answered yet (the script delays its first token)."""


async def third_segment(client: ChatClient) -> None:
    """The moment a new segment opens (the third message of the reply)."""
    await client.wait_text(lambda _text: len(client.order) >= 3, 60)


async def turn_ended(client: ChatClient) -> None:
    """Right after the turn's end reached the first page (its last rows may not be stored yet)."""
    await client.wait_task_ends(3, 60)


async def all_but_last(client: ChatClient) -> None:
    """The whole reply but its last token is on the page (the model stalls before sending it)."""
    await client.wait_text(lambda text: text == markdown(TOKENS).removesuffix(" END."), 60)


TOKENS = 120
REPLY = f"#script tokens={TOKENS} kind=markdown"
CASES: dict[str, tuple[str, Moment | float]] = {
    "before_first_token": (f"{REPLY} rate=60 first_delay=2", at_once),
    "early": (f"{REPLY} rate=60", 0.2),
    "midway": (f"{REPLY} rate=60", 0.55),
    "segment_boundary": (f"{REPLY} rate=60", third_segment),
    "before_last_token": (f"{REPLY} rate=120 stall_at={TOKENS - 1} stall=2", all_but_last),
    "just_ended": (REPLY, turn_ended),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_reload_when_reply_is_generating_then_page_shows_the_exact_reply_and_chat_goes_on(
    case: str, app: App, scripted: ScriptedServer
) -> None:
    script, when = CASES[case]
    expected = markdown(TOKENS)
    moment = await text_reaches(when, expected) if isinstance(when, float) else when
    reloaded, thread_id = await reload_at(app, script, moment)
    try:
        # Followed live, or (the turn ended and its rows are stored) reopened whole: the exact reply.
        await reloaded.wait_text(lambda _text: shown_after_resume(reloaded) == expected, 60)
        # The session that started the turn stores it; the replay stores nothing: one copy.
        rows = await settled(app.database, lambda r: stored_reply(r, thread_id) == expected)
        await reloaded.send("#script text=and_then")
        await reloaded.wait_text(lambda text: text.endswith("and_then"), 60)
    finally:
        await reloaded.close()
    assert scripted.requests[-1]["messages"][-3:] == [
        {"role": "user", "content": script},
        {"role": "assistant", "content": expected},
        {"role": "user", "content": "#script text=and_then"},
    ]
    rows = await settled(app.database, lambda r: stored_reply(r, thread_id) == expected + "and_then")
    assert [s["output"] for s in thread_rows(rows, thread_id) if s["type"] == "user_message"] == [
        script,
        "#script text=and_then",
    ]


async def test_reload_when_tool_has_run_then_page_shows_the_step_and_model_keeps_the_call(
    app: App, scripted: ScriptedServer
) -> None:
    script = "#script tool=calculator expr=2+3*4 first_delay=2"
    reloaded, thread_id = await reload_at(app, script, tool_step_shown)
    try:
        await reloaded.wait_task_ends(3, 60)
        assert shown_after_resume(reloaded) == "Result: 14"
        assert shown_tools(reloaded) == ["14"]
        await reloaded.send("#script text=more")
        await reloaded.wait_text(lambda text: text.endswith("more"), 60)
    finally:
        await reloaded.close()
    user, call, result, answer, again = scripted.requests[-1]["messages"][-5:]
    assert (user, answer, again) == (
        {"role": "user", "content": script},
        {"role": "assistant", "content": "Result: 14"},
        {"role": "user", "content": "#script text=more"},
    )
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in call["tool_calls"]] == [
        ("calculator", {"expression": "2+3*4"})
    ]
    assert result == {"role": "tool", "tool_call_id": call["tool_calls"][0]["id"], "content": "14"}
    rows = await settled(app.database, lambda r: stored_reply(r, thread_id) == "Result: 14more")
    assert [s["output"] for s in thread_rows(rows, thread_id) if s["type"] == "tool"] == ["14"]


async def test_message_when_sent_while_following_then_it_waits_for_the_followed_reply(
    app: App, scripted: ScriptedServer
) -> None:
    script, expected = f"{REPLY} rate=60", markdown(TOKENS)
    reloaded, _ = await reload_at(app, script, await text_reaches(0.3, expected))
    try:
        await reloaded.send("#script text=queued")
        await reloaded.wait_text(lambda text: text.endswith("queued"), 60)
    finally:
        await reloaded.close()
    assert shown_after_resume(reloaded) == expected + "queued"
    assert scripted.requests[-1]["messages"][-3:] == [
        {"role": "user", "content": script},
        {"role": "assistant", "content": expected},
        {"role": "user", "content": "#script text=queued"},
    ]


async def test_stop_when_pressed_on_reloaded_page_then_turn_stops_and_model_keeps_the_stored_part(
    app: App, scripted: ScriptedServer
) -> None:
    tokens = 3000  # about 30 s: the stop lands well before the end
    script, expected = (
        f"#script tokens={tokens} kind=markdown rate=100",
        "".join(script_tokens(tokens, "markdown")),
    )
    reloaded, thread_id = await reload_at(app, script, await text_reaches(0.02, expected))
    try:
        await reloaded.wait_text(lambda text: len(text) > 0.05 * len(expected), 60)
        await reloaded.stop()
        await reloaded.wait_task_ends(3, 60)
        shown = reloaded.reply()
        # The turn's own session ends it with the reply's last update and its footer, which Chainlit
        # writes in tasks of their own: either may land first (a CI-like run read the footer beside
        # an earlier, shorter reply). Wait for both; a reply never stored whole fails here.
        rows = await settled(
            app.database,
            lambda r: (
                any(e["threadId"] == thread_id for e in r["elements"])
                and stored_reply(r, thread_id).startswith(shown)
            ),
            60,
        )
        stored = stored_reply(rows, thread_id)
        await reloaded.send("#script text=after_stop")
        await reloaded.wait_text(lambda text: text.endswith("after_stop"), 60)
    finally:
        await reloaded.close()
    assert 0 < len(stored) < len(expected) and expected.startswith(stored)
    assert stored.startswith(reloaded.reply().removesuffix("after_stop"))
    assert scripted.requests[-1]["messages"][-3:] == [
        {"role": "user", "content": script},
        {"role": "assistant", "content": stored},
        {"role": "user", "content": "#script text=after_stop"},
    ]


async def test_reload_when_it_lands_on_another_instance_then_the_turn_is_followed_through_redis(
    scripted: ScriptedServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = clean_env(
        OPENAI_API_KEY="test-key",
        SMART_AGENT_HISTORY="1",
        SMART_AGENT_REDIS_URL=redis_server.url,
        SMART_AGENT_DATA_DIR=str(tmp_path / "shared"),  # one database and login secret for both
    )
    flags = ("--base-url", scripted.url, "--model", MODEL_ID)
    script, expected = f"{REPLY} rate=60", markdown(TOKENS)
    with (
        running_app(*flags, env=env, log_dir=tmp_path) as (first_url, _),
        running_app(*flags, env=env, log_dir=tmp_path) as (second_url, _),
    ):
        database = tmp_path / "shared" / HISTORY_FILE
        moment = await text_reaches(0.3, expected)
        reloaded, thread_id = await reload_at(App(first_url, database), script, moment, second_url)
        try:
            await reloaded.wait_task_ends(3, 60)
            assert shown_after_resume(reloaded) == expected
            await settled(database, lambda r: stored_reply(r, thread_id) == expected)
        finally:
            await reloaded.close()


async def test_reload_when_the_producing_instance_dies_then_the_follower_stores_what_it_showed(
    scripted: ScriptedServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    # Only the session that starts a turn stores it: when its instance dies mid-reply, the page
    # following the turn on another instance is the only one left that saw it.
    env = clean_env(
        OPENAI_API_KEY="test-key",
        SMART_AGENT_REDIS_URL=redis_server.url,
        SMART_AGENT_DATA_DIR=str(tmp_path / "shared"),
    )
    flags = ("--base-url", scripted.url, "--model", MODEL_ID)
    script, expected = f"{REPLY} rate=20", markdown(TOKENS)
    with (
        running_app(*flags, env=env, log_dir=tmp_path) as (first_url, first),
        running_app(*flags, env=env, log_dir=tmp_path) as (second_url, _),
    ):
        database = tmp_path / "shared" / HISTORY_FILE
        reloaded, thread_id = await reload_at(
            App(first_url, database), script, await text_reaches(0.2, expected), second_url
        )
        try:
            await reloaded.wait_text(
                lambda _text: len(shown_after_resume(reloaded)) > 0.3 * len(expected), 60
            )
            first.kill()  # mid-reply: the producer's lease runs out, the follower learns it
            await reloaded.wait_task_ends(3, 60)
            # The page shows the reply so far, then the error saying its instance stopped.
            shown = shown_after_resume(reloaded).removesuffix(PRODUCER_STOPPED)
            assert reloaded.messages[reloaded.order[-1]] == PRODUCER_STOPPED
            rows = await settled(database, lambda r: reply_without_errors(r, thread_id) == shown)
            await reloaded.send("#script text=after_the_kill")
            await reloaded.wait_text(lambda text: text.endswith("after_the_kill"), 60)
        finally:
            await reloaded.close()
    assert 0.3 * len(expected) < len(shown) < len(expected)
    assert expected.startswith(shown)
    assert [s["type"] for s in thread_rows(rows, thread_id)].count("user_message") == 1
    assert scripted.requests[-1]["messages"][-3:] == [
        {"role": "user", "content": script},
        {"role": "assistant", "content": shown},
        {"role": "user", "content": "#script text=after_the_kill"},
    ]


PRODUCER_STOPPED = "The instance producing this run stopped; the text so far is kept."


def reply_without_errors(rows: dict[str, list[dict[str, Any]]], thread_id: str) -> str:
    """The stored reply text without error messages."""
    return "".join(
        step["output"] or ""
        for step in thread_rows(rows, thread_id)
        if step["type"] == "assistant_message"
        and not step["isError"]
        and step["name"] not in ("stats", "note")
    )


async def test_reload_when_an_earlier_reply_was_segmented_then_model_sees_each_reply_once(
    app: App, scripted: ScriptedServer
) -> None:
    earlier, script, expected = REPLY, "#script tokens=40 kind=markdown rate=40", markdown(40)
    reloaded, _ = await reload_at(app, script, await text_reaches(0.3, expected), earlier=earlier)
    try:
        assert reloaded.resumed is not None
        shown = [s for s in reloaded.resumed["steps"] if s["type"] == "assistant_message"]
        assert [s["output"] for s in shown] == [markdown(TOKENS)]  # the earlier reply, joined
        await reloaded.wait_task_ends(3, 60)
        await reloaded.send("#script text=next")
        await reloaded.wait_text(lambda text: text.endswith("next"), 60)
    finally:
        await reloaded.close()
    assert scripted.requests[-1]["messages"][-5:] == [
        {"role": "user", "content": earlier},
        {"role": "assistant", "content": markdown(TOKENS)},
        {"role": "user", "content": script},
        {"role": "assistant", "content": expected},
        {"role": "user", "content": "#script text=next"},
    ]
