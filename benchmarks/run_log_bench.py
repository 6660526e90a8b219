"""The Redis run log under load: append -> live-read latency and CPU per event.

One process produces `--runs` runs through one RedisRunLog, each appending `--rate` token events per
second for `--seconds`; another process reads every run live through its own RedisRunLog (one reader
per run, all served by that process's single reader task). Both talk to a throw-away redis-server.

python -m benchmarks.run_log_bench [--runs 200] [--rate 20] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import time
from multiprocessing.synchronize import Event
from typing import Any

import psutil

from smart_agent.runs.events import DONE, TOKEN
from smart_agent.runs.log import ReaderTooSlowError
from smart_agent.runs.redis_log import RedisRunLog, RunKeys
from tests.redis_server import running_redis

PREFIX = "bench:"


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99), "max_ms": ordered[-1] * 1000}


async def _produce(
    url: str, runs: int, rate: float, seconds: float, created: Event, ready: Event
) -> dict[str, Any]:
    log = RedisRunLog(url, 60.0, prefix=PREFIX)
    round_trips: list[float] = []
    try:
        for i in range(runs):
            await log.create(f"run_{i}", f"key_{i % 10}", runs)
        created.set()
        await asyncio.get_running_loop().run_in_executor(None, ready.wait)
        cpu = time.process_time()
        start = time.monotonic()

        async def one(run_id: str) -> int:
            period = 1 / rate
            due = start + random.random() * period  # runs out of phase, as real ones are
            count = 0
            while due < start + seconds:
                await asyncio.sleep(max(0.0, due - time.monotonic()))  # the pace of a model
                sent = time.monotonic()
                await log.append(run_id, TOKEN, {"text": "word ", "t": sent})
                round_trips.append(time.monotonic() - sent)
                count += 1
                due += period
            await log.finish(run_id, DONE, {"finish_reason": "stop"})
            return count + 1

        events = sum(await asyncio.gather(*(one(f"run_{i}") for i in range(runs))))
        cpu = time.process_time() - cpu
        return {
            "events": events,
            "cpu_us_per_event": cpu / events * 1e6,
            "append_round_trip": _percentiles(round_trips),
        }
    finally:
        await log.aclose()


async def _read(url: str, runs: int, created: Event, ready: Event) -> dict[str, Any]:
    log = RedisRunLog(url, 60.0, prefix=PREFIX)
    latencies: list[float] = []
    drops: list[str] = []
    try:
        await asyncio.get_running_loop().run_in_executor(None, created.wait)
        live = 0

        async def one(run_id: str) -> int:
            nonlocal live
            reader = log.read(run_id)
            first = asyncio.ensure_future(anext(reader))
            key = RunKeys.of(PREFIX, run_id).events
            while key not in log._dispatcher.watched():  # noqa: ASYNC110 -- registration has no event
                await asyncio.sleep(0.01)
            live += 1
            if live == runs:
                ready.set()
            count = 0
            last: str | None = None
            pending: Any = first
            while True:
                try:
                    event = await pending
                except ReaderTooSlowError:  # dropped: resume from the last id, as a client does
                    drops.append(run_id)
                    reader = log.read(run_id, last)
                    pending = anext(reader)
                    continue
                count += 1
                last = event.id
                if event.kind == TOKEN:
                    latencies.append(time.monotonic() - event.data["t"])
                if event.kind == DONE:
                    return count
                pending = anext(reader)

        cpu = time.process_time()
        events = sum(await asyncio.gather(*(one(f"run_{i}") for i in range(runs))))
        cpu = time.process_time() - cpu
        return {
            "events": events,
            "cpu_us_per_event": cpu / events * 1e6,
            "latency": _percentiles(latencies),
            "readers_dropped": len(drops),
        }
    finally:
        await log.aclose()


def _producer_main(
    url: str, runs: int, rate: float, seconds: float, created: Event, ready: Event, out: Any
) -> None:
    out.put(("producer", asyncio.run(_produce(url, runs, rate, seconds, created, ready))))


def _reader_main(url: str, runs: int, created: Event, ready: Event, out: Any) -> None:
    out.put(("reader", asyncio.run(_read(url, runs, created, ready))))


def main() -> None:
    """Run the measurement and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second per run")
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    created, ready, out = context.Event(), context.Event(), context.Queue()
    with running_redis() as server:
        redis = psutil.Process(server.process.pid if server.process else 0)
        cpu_before = sum(redis.cpu_times()[:2])
        processes = [
            context.Process(
                target=_producer_main,
                args=(server.url, args.runs, args.rate, args.seconds, created, ready, out),
            ),
            context.Process(target=_reader_main, args=(server.url, args.runs, created, ready, out)),
        ]
        for process in processes:
            process.start()
        results = dict(out.get(timeout=args.seconds + 120) for _ in processes)
        for process in processes:
            process.join(timeout=30)
        redis_cpu = sum(redis.cpu_times()[:2]) - cpu_before
    events = results["producer"]["events"]
    results["redis_server_cpu_us_per_event"] = redis_cpu / events * 1e6
    results["load"] = {"runs": args.runs, "rate_per_run": args.rate, "seconds": args.seconds}
    print(json.dumps(results, indent=2))
    assert results["reader"]["events"] == events, "the readers did not get every event"


if __name__ == "__main__":
    main()
