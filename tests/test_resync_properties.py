"""Property test: whenever the page's socket drops and comes back during a turn, the page ends
with exactly the turn it would show had nothing dropped.

The real pieces run: Chainlit 2.12's session, messages, steps, emitter and socket handlers
(wrapped by `chainlit_patches.install`, as web/app.py does), the app's `present_turn` with
SegmentedReply and the batching wrapper. Only the transport is a model: each socket delivers
the events emitted to it, in order, to a model of the page while it is up, and loses them once
it is down (the server may not know yet). The page model applies events as Chainlit 2.12's frontend does
(`chainlit/frontend/dist`: addMessage, updateMessageById, updateMessageContentById, deleteMessageById).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import chainlit as cl
from chainlit.context import init_ws_context
from chainlit.server import sio
from chainlit.session import WebsocketSession
from chainlit.user_session import user_sessions
from hypothesis import example, given, settings
from hypothesis import strategies as st

from smart_agent.agent.events import AgentEvent, ReplyFailed, TextDelta, ToolCallFinished, ToolCallStarted
from smart_agent.config import Settings
from smart_agent.web import chainlit_patches
from smart_agent.web.hooks import app_hooks
from smart_agent.web.ui import present_turn
from tests.fakes import FakeClock

USER_ID = "user-message"


@dataclass
class Page:
    """What the browser holds: a tree of messages, the elements, and whether a task runs."""

    messages: list[dict[str, Any]] = field(default_factory=lambda: [{"id": USER_ID, "type": "user_message"}])
    elements: dict[str, dict[str, Any]] = field(default_factory=dict)
    loading: bool = False

    def apply(self, event: str, data: Any) -> None:
        if event in {"new_message", "stream_start"}:
            if _find(self.messages, data["id"]) is not None:
                _merge(self.messages, data)
            elif data.get("parentId"):
                parent = _find(self.messages, data["parentId"])
                if parent is not None:  # a message whose parent the page lacks is dropped
                    parent.setdefault("steps", []).append(dict(data))
            else:
                self.messages.append(dict(data))
        elif event == "update_message":
            _merge(self.messages, data)  # an id the page lacks: ignored
        elif event == "stream_token":
            node = _find(self.messages, data["id"])
            if node is not None:
                key = "content" if "content" in node else "input" if data["isInput"] else "output"
                node[key] = data["token"] if data["isSequence"] else node.get(key, "") + data["token"]
        elif event == "delete_message":
            _delete(self.messages, data["id"])
        elif event == "element":
            self.elements[data["id"]] = dict(data)
        elif event == "remove_element":
            self.elements.pop(data["id"], None)
        elif event in {"task_start", "task_end"}:
            self.loading = event == "task_start"

    def rows(self) -> list[tuple[Any, ...]]:
        """The page as a reader sees it (ids replaced by position, so runs compare)."""
        rows: list[tuple[Any, ...]] = []
        position: dict[str, int] = {}

        def walk(nodes: list[dict[str, Any]], depth: int) -> None:
            for node in nodes:
                position[node["id"]] = len(rows)
                rows.append(
                    (
                        depth,
                        node.get("type"),
                        node.get("name"),
                        node.get("input"),
                        node.get("output"),
                        bool(node.get("isError")),
                        bool(node.get("streaming")),
                    )
                )
                walk(node.get("steps", []), depth + 1)

        walk(self.messages, 0)
        for element in self.elements.values():
            target = position.get(element["forId"])
            rows.append(("element", element["name"], target, element["props"].get("copyText")))
        rows.append(("loading", self.loading))
        return rows

    def reply_text(self) -> str:
        """The reply's segments joined, as the user reads them."""
        run = self.messages[0]["steps"][0]
        return "".join(
            n["output"]
            for n in run.get("steps", [])
            if n["type"] == "assistant_message" and n.get("name") != "stats" and not n.get("isError")
        )


def _find(nodes: list[dict[str, Any]], node_id: str) -> dict[str, Any] | None:
    for node in nodes:
        if node["id"] == node_id:
            return node
        found = _find(node.get("steps", []), node_id)
        if found is not None:
            return found
    return None


def _merge(nodes: list[dict[str, Any]], data: dict[str, Any]) -> None:
    node = _find(nodes, data["id"])
    if node is not None:
        node.update(data)


def _delete(nodes: list[dict[str, Any]], node_id: str) -> None:
    for node in list(nodes):
        if node["id"] == node_id:
            nodes.remove(node)
        else:
            _delete(node.get("steps", []), node_id)


@dataclass
class Socket:
    """One page socket: delivers in order while up; what is sent once it is down is lost."""

    page: Page
    rng: random.Random
    sid: str = field(default_factory=lambda: uuid.uuid4().hex)
    up: bool = True

    async def emit(self, event: str, data: Any) -> None:
        # like python-socketio: the event is encoded (a snapshot) and queued when emitted,
        # then the emit waits for the write
        if self.up:
            self.page.apply(event, _copy(data))
        for _ in range(self.rng.randint(0, 2)):
            await asyncio.sleep(0)


def _copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data


async def _pause(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


TOKENS = ["ab", " cd", "e\n", "\n\n", "```\n", "x y", "\n", " f."]
turn_op = st.one_of(
    st.tuples(st.just("text"), st.sampled_from(TOKENS), st.integers(0, 4)),
    st.tuples(st.just("tool"), st.sampled_from(["4", "boom"]), st.integers(0, 6)),
)
net_op = st.one_of(
    st.tuples(st.just("drop"), st.integers(0, 12), st.just(0)),
    st.tuples(st.just("reconnect"), st.integers(0, 12), st.integers(0, 6)),  # gap before the handshake
    st.tuples(st.just("advance"), st.integers(0, 12), st.sampled_from([0.05, 0.2, 0.6])),
)


@dataclass
class Scenario:
    """One turn and what the network does meanwhile."""

    ops: list[tuple[str, str, int]]
    fails: bool
    network: list[tuple[str, int, Any]]
    segment_chars: int
    batch_size: int
    show_stats: bool
    seed: int


scenarios = st.builds(
    Scenario,
    ops=st.lists(turn_op, min_size=1, max_size=30),
    fails=st.booleans(),
    network=st.lists(net_op, max_size=10),
    segment_chars=st.sampled_from([0, 6, 20]),
    batch_size=st.integers(1, 4),
    show_stats=st.booleans(),
    seed=st.integers(0, 2**16),
)


async def _agent_events(scenario: Scenario) -> AsyncIterator[AgentEvent]:
    for i, (kind, value, pause) in enumerate(scenario.ops):
        await _pause(pause)
        if kind == "text":
            yield TextDelta(value)
        else:
            arguments = '{"expression": "2+2"}'
            yield ToolCallStarted(f"call-{i}", "calculator", arguments)
            await _pause(pause)  # the tool runs
            yield ToolCallFinished(f"call-{i}", "calculator", arguments, value, value == "boom")
    if scenario.fails:
        yield ReplyFailed("The model server failed.")


async def _run(scenario: Scenario, with_network: bool) -> Page:
    """Play the turn (and, if asked, the network's drops and reconnects); the page at the end."""
    chainlit_patches.install(app_hooks())
    handlers = sio.handlers["/"]
    rng = random.Random(scenario.seed)
    page = Page()
    socket = Socket(page, rng)
    session = WebsocketSession(
        id=uuid.uuid4().hex,
        socket_id=socket.sid,
        emit=socket.emit,
        emit_call=lambda *_: None,
        user_env={},
        client_type="webapp",
    )
    session.has_first_interaction = True  # the user's message started the thread
    clock = FakeClock()
    app_settings = Settings(
        segment_chars=scenario.segment_chars, batch_size=scenario.batch_size, show_stats=scenario.show_stats
    )

    async def process_message() -> None:  # what chainlit.socket.process_message and on_message do
        context = init_ws_context(session)
        await context.emitter.task_start()
        try:
            async with cl.Step(name="on_message", type="run", parent_id=USER_ID):
                await present_turn(_agent_events(scenario), app_settings, clock, model="scripted")
        finally:
            await context.emitter.task_end()

    handshakes: list[asyncio.Task[None]] = []

    async def handshake(socket: Socket, gap: int) -> None:
        await _pause(gap)  # the page hears CONNECT and answers
        if socket.up:
            await handlers["connection_successful"](socket.sid)

    async def reconnect(gap: int) -> None:
        nonlocal socket
        socket.up = False
        socket = Socket(page, rng)
        auth = {"sessionId": session.id, "clientType": "webapp", "threadId": "", "userEnv": "{}"}
        assert await handlers["connect"](socket.sid, {}, auth)
        session.emit = socket.emit  # Chainlit bound the new socket's emit to its server; the model's here
        handshakes.append(asyncio.create_task(handshake(socket, gap)))

    async def network() -> None:
        for kind, pause, value in scenario.network:
            await _pause(pause)
            if kind == "drop":
                socket.up = False
            elif kind == "reconnect":
                await reconnect(value)
            else:
                await clock.advance(value)

    async def time_passes() -> None:  # without the network's ops, only its clock advances
        for kind, pause, value in scenario.network:
            await _pause(pause)
            if kind == "advance":
                await clock.advance(value)

    try:
        init_ws_context(session)
        turn = asyncio.create_task(process_message())
        await (network() if with_network else time_passes())
        await turn
        await asyncio.gather(*handshakes)
        if not socket.up:
            await reconnect(0)  # the page comes back for good
            await asyncio.gather(*handshakes)
        return page
    finally:
        user_sessions.pop(session.id, None)
        await session.delete()


def _example(ops: list[tuple[str, str, int]], network: list[tuple[str, int, Any]]) -> Scenario:
    return Scenario(ops, False, network, segment_chars=0, batch_size=1, show_stats=False, seed=0)


@settings(max_examples=400, deadline=None)
@given(scenario=scenarios)
# the page missed the run step, so every message below it (the whole reply) would be dropped
@example(_example([("text", "ab", 0)], [("drop", 0, 0)]))
# the reply ends while the snapshot goes out: a snapshot sent late would say it still streams
@example(_example([("text", "ab", 0)], [("reconnect", 0, 1)]))
# a tool step created between the reconnect and the handshake would land above the reply it follows
@example(_example([("text", "ab", 1), ("tool", "4", 0)], [("drop", 0, 0), ("reconnect", 2, 0)]))
def test_socket_drops_and_reconnects_anywhere_in_a_turn_then_page_shows_exactly_the_turn(
    scenario: Scenario,
) -> None:
    page = asyncio.run(_run(scenario, with_network=True))
    reference = asyncio.run(_run(scenario, with_network=False))
    text = "".join(value for kind, value, _ in scenario.ops if kind == "text")
    assert reference.reply_text() == text
    assert page.rows() == reference.rows()
    assert page.reply_text() == text
    assert not page.loading
