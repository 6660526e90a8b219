"""The SSE API under load: many clients each reading their own run, in memory or through Redis.

python -m benchmarks.sse_bench [--clients 200] [--tokens 1000] [--rate 50] [--redis] [--out bench-results]

The model (the scripted server), the app and these clients run in three processes. Every token
carries its index and the time the model sent it, so each client checks that it got every token
once and in order, and how long each took to arrive.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from httpx_sse import aconnect_sse

from smart_agent.llm.local_server import free_port
from tests.harness import ROOT, clean_env, running_app

RESULTS = Path("bench-results")


@dataclass
class ClientResult:
    """What one client saw."""

    exact: bool = False
    tokens: int = 0
    events: int = 0
    newest_ms: list[float] = field(default_factory=list)  # the newest token of each event
    oldest_ms: list[float] = field(default_factory=list)  # the oldest (includes batching)
    error: str | None = None


async def _client(base: str, tokens: int, rate: float) -> ClientResult:
    # A client of its own per reader, as separate programs have: sharing one pool would hand a
    # connection the server is just closing (keep-alive timeout) from one reader to the next.
    async with httpx.AsyncClient(timeout=httpx.Timeout(120, connect=30)) as client:
        return await _read(client, base, tokens, rate)


async def _read(client: httpx.AsyncClient, base: str, tokens: int, rate: float) -> ClientResult:
    result = ClientResult()
    content = f"bench #script tokens={tokens} rate={rate:g} kind=clock"
    try:
        created = await client.post(
            f"{base}/api/v1/runs", json={"messages": [{"role": "user", "content": content}]}
        )
        created.raise_for_status()
        run_id = created.json()["id"]
        seen: list[int] = []
        ended = None
        async with aconnect_sse(client, "GET", f"{base}/api/v1/runs/{run_id}/events") as source:
            async for sse in source.aiter_sse():
                arrived = time.time()
                if sse.event == "token":
                    result.events += 1
                    stamps = []
                    for piece in sse.data and json.loads(sse.data)["text"].split():
                        index, _, sent = piece[1:].partition("@")
                        seen.append(int(index))
                        stamps.append(float(sent))
                    result.newest_ms.append((arrived - max(stamps)) * 1000)
                    result.oldest_ms.append((arrived - min(stamps)) * 1000)
                elif sse.event in ("done", "error"):
                    ended = sse.event
                    break
        result.tokens = len(seen)
        result.exact = ended == "done" and seen == list(range(tokens))
        if ended != "done":
            result.error = f"ended with {ended}"
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        stage = "starting the run" if result.events == 0 else f"after {result.events} events"
        result.error = f"{type(exc).__name__} {stage}: {exc!r} {exc.__cause__!r}"
    return result


async def _load(base: str, clients: int, tokens: int, rate: float) -> list[ClientResult]:
    return await asyncio.gather(*(_client(base, tokens, rate) for _ in range(clients)))


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@contextlib.contextmanager
def _scripted_process() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.scripted_server", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def _redis() -> Iterator[str]:
    from tests.redis_server import running_redis

    with running_redis() as server:
        yield server.url


def measure(clients: int, tokens: int, rate: float, use_redis: bool) -> dict[str, Any]:
    """Run the load once and return its figures."""
    with contextlib.ExitStack() as stack:
        model_url = stack.enter_context(_scripted_process())
        env = clean_env(
            OPENAI_API_KEY="bench",
            SMART_AGENT_API_MAX_RUNS=str(clients * 2),
            SMART_AGENT_API_MAX_STREAMS=str(clients * 2),
        )
        if use_redis:
            env["SMART_AGENT_REDIS_URL"] = stack.enter_context(_redis())
        log_dir = Path(tempfile.mkdtemp(prefix="sse-bench-"))
        print(f"app log in {log_dir}", file=sys.stderr)
        base, process = stack.enter_context(
            running_app("--base-url", model_url, "--model", "scripted-model", env=env, log_dir=log_dir)
        )
        app = psutil.Process(process.pid)
        cpu_before = app.cpu_times()
        rss_before = app.memory_info().rss
        peak = [rss_before]

        async def sample() -> None:
            while True:
                peak.append(app.memory_info().rss)
                await asyncio.sleep(0.5)

        async def run() -> list[ClientResult]:
            sampler = asyncio.create_task(sample())
            try:
                return await _load(base, clients, tokens, rate)
            finally:
                sampler.cancel()

        started = time.monotonic()
        results = asyncio.run(run())
        wall = time.monotonic() - started
        cpu_after = app.cpu_times()
    cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    received = sum(result.tokens for result in results)
    newest = [value for result in results for value in result.newest_ms]
    oldest = [value for result in results for value in result.oldest_ms]
    return {
        "log": "redis" if use_redis else "memory",
        "clients": clients,
        "tokens_per_run": tokens,
        "rate": rate,
        "exact": sum(result.exact for result in results),
        "errors": sorted({result.error for result in results if result.error})[:8],
        "wall_s": round(wall, 1),
        "events_per_client": round(statistics.mean(result.events for result in results), 1),
        "latency_newest_ms_p50": round(_percentile(newest, 0.5), 1),
        "latency_newest_ms_p99": round(_percentile(newest, 0.99), 1),
        "latency_oldest_ms_p50": round(_percentile(oldest, 0.5), 1),
        "latency_oldest_ms_p99": round(_percentile(oldest, 0.99), 1),
        "app_cpu_us_per_token": round(cpu / max(1, received) * 1e6, 1),
        "app_cpu_share_of_a_core": round(cpu / wall, 2),
        "app_rss_mb_before": round(rss_before / 2**20, 1),
        "app_rss_mb_peak": round(max(peak) / 2**20, 1),
    }


def main() -> None:
    """Measure and print the figures as JSON lines; write them to --out."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--redis", action="store_true", help="only the Redis run log")
    parser.add_argument("--memory", action="store_true", help="only the in-memory run log")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logs = [False] if args.memory else [True] if args.redis else [False, True]
    args.out.mkdir(parents=True, exist_ok=True)
    figures = []
    for use_redis in logs:
        result = measure(args.clients, args.tokens, args.rate, use_redis)
        print(json.dumps(result), flush=True)
        figures.append(result)
    (args.out / "sse_bench.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
