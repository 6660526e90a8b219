"""What the metrics cost per agent event: draining a turn directly against through `metered`.

python -m benchmarks.metered_bench [--events 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncGenerator

from smart_agent.agent.events import AgentEvent, ReplyDone, TextDelta
from smart_agent.metrics import metered


async def _turn(events: list[AgentEvent]) -> AsyncGenerator[AgentEvent, None]:
    for event in events:
        yield event


async def _drain(stream: AsyncGenerator[AgentEvent, None]) -> None:
    async for _ in stream:
        pass


async def ns_per_event(count: int, repeat: int) -> tuple[float, float]:
    """Best-of-`repeat` nanoseconds per event: (direct, metered)."""
    events: list[AgentEvent] = [TextDelta(f" w{i}") for i in range(count)]
    events.append(ReplyDone("", 0))
    direct, wrapped = [], []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        await _drain(_turn(events))
        direct.append((time.perf_counter_ns() - start) / len(events))
        start = time.perf_counter_ns()
        await _drain(metered(_turn(events), "bench"))
        wrapped.append((time.perf_counter_ns() - start) / len(events))
    return min(direct), min(wrapped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    direct, wrapped = asyncio.run(ns_per_event(args.events, args.repeat))
    print(f"direct  {direct:7.0f} ns/event")
    print(f"metered {wrapped:7.0f} ns/event  (+{wrapped - direct:.0f} ns)")


if __name__ == "__main__":
    main()
