"""The hub and the page-wide pacer together on the fake clock: scripted members stream at once,
each member's text reaches its own stream exactly and in order, the page's event rate stays under
the budget for 2, 4 and 8 members, status snapshots keep their interval, the answer comes last."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncGenerator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from smart_agent.agent.events import AgentEvent, ReplyDone, TextDelta
from smart_agent.agent.tools import ToolRegistry
from smart_agent.config import Settings
from smart_agent.streaming import BatchPolicy, Pacer, TokenBatcher
from smart_agent.team.events import MemberFailed, MemberFinished, MemberText, TeamEvent, TeamStatus
from smart_agent.team.hub import TeamHub
from smart_agent.team.members import Member, TeamDefinition
from tests.fakes import FakeClock


class ScriptedAgent:
    """Answers with `count` words of its own at `rate` words per second on the fake clock."""

    def __init__(self, clock: FakeClock, name: str, count: int, rate: float) -> None:
        self.clock, self.name, self.count, self.rate = clock, name, count, rate

    async def stream(self, messages: list[dict[str, Any]]) -> AsyncGenerator[AgentEvent, None]:
        words = [f" {self.name}{i}" for i in range(self.count)]
        for word in words:
            await self.clock.sleep(1 / self.rate)
            yield TextDelta(word)
        messages.append({"role": "assistant", "content": "".join(words)})
        yield ReplyDone("".join(words), 0)


async def _run(members: int, count: int, rate: float, budget: float) -> None:
    clock = FakeClock()
    names = [f"m{i}x" for i in range(members)]
    team = TeamDefinition(tuple(Member(n, n) for n in names), "synth")
    agents = iter(
        [*(ScriptedAgent(clock, n, count, rate) for n in names), ScriptedAgent(clock, "s", 5, rate)]
    )
    hub = TeamHub(
        team,
        None,  # type: ignore[arg-type]  # the agents are scripted: no client
        "model",
        Settings(),
        ToolRegistry(),
        concurrency=members,
        clock=clock,
        agent_for=lambda model, tools: next(agents),
    )
    pacer = Pacer(budget, clock)
    page: list[tuple[float, str, str, bool]] = []  # time, member, text, exempt (first or last)
    closing: set[str] = set()
    batchers: dict[str, TokenBatcher] = {}
    statuses: list[float] = []
    answer: list[tuple[float, str]] = []
    ended: dict[str, float] = {}

    def sink(name: str) -> Any:
        async def emit(text: str, is_sequence: bool) -> None:
            first = not any(n == name for _, n, _, _ in page)
            page.append((clock.now(), name, text, first or name in closing))

        return emit

    async def consume() -> None:
        conversation: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]
        async for event in hub.stream(conversation):
            await present(event)
        assert conversation[-1] == {"role": "assistant", "content": "".join(f" s{i}" for i in range(5))}

    async def present(event: TeamEvent) -> None:
        if isinstance(event, MemberText):
            if event.member not in batchers:
                batchers[event.member] = TokenBatcher(
                    sink(event.member), BatchPolicy(max_events_per_second=budget), clock, pacer
                )
            await batchers[event.member].push(event.text)
        elif isinstance(event, MemberFinished | MemberFailed):
            closing.add(event.member)
            await batchers[event.member].aclose()
            ended[event.member] = clock.now()
        elif isinstance(event, TeamStatus):
            statuses.append(clock.now())
        elif isinstance(event, TextDelta):
            answer.append((clock.now(), event.text))

    task = asyncio.create_task(consume())
    for _ in range(200_000):
        if task.done():
            break
        await clock.advance(0.005)
    task.result()
    pacer.close()
    for name in names:
        assert "".join(text for _, n, text, _ in page if n == name) == "".join(
            f" {name}{i}" for i in range(count)
        )
    times = [t for t, _, _, _ in page]
    worst = max(sum(1 for u in times[i:] if u < t + 1 - 1e-9) for i, t in enumerate(times))
    assert worst <= budget + 2 * members  # each stream's first and last event go at once, counted
    paced = [t for t, _, _, exempt in page if not exempt]
    if paced:
        busiest = max(sum(1 for u in paced[i:] if u < t + 1 - 1e-9) for i, t in enumerate(paced))
        assert busiest <= math.ceil(budget)
    assert all(b - a >= 0.5 - 1e-9 for a, b in itertools.pairwise(statuses))
    assert answer and min(t for t, _ in answer) >= max(ended.values())


@settings(max_examples=25, deadline=None)
@given(
    members=st.sampled_from([2, 4, 8]),
    count=st.integers(min_value=1, max_value=60),
    rate=st.floats(min_value=20, max_value=500),
    budget=st.floats(min_value=5, max_value=40),
)
def test_team_when_members_stream_at_once_then_texts_exact_rate_under_budget_and_answer_last(
    members: int, count: int, rate: float, budget: float
) -> None:
    asyncio.run(_run(members, count, rate, budget))
