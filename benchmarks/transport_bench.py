"""Reading the model's stream: the app's CPU per token with each HTTP transport of the `openai` client.

python -m benchmarks.transport_bench [--streams 50] [--tokens 1000] [--rate 200] [--rounds 3]

The scripted model server runs in a process of its own; this process does only what the app does with
a streamed reply: the SDK's request and SSE decoding (each chunk left a JSON dict, as `agent/loop.py`
asks) and `normalize_chunk`. It measures this process's CPU seconds per token and its event loop's lag
(a sampler every 10 ms) for httpx (openai's default), aiohttp (openai's own adapter) reading each
chunk as it comes, and aiohttp reading a flowing stream once per tick as the app's `llm/transport.py`
does, in alternating rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import openai

from smart_agent.llm.chunks import normalize_chunk
from smart_agent.llm.transport import ModelTransport
from tests.harness import free_port, wait_http
from tests.scripted_server import MODEL_ID

TRANSPORTS: dict[str, Callable[[], httpx2.AsyncClient]] = {
    "httpx": lambda: openai.DefaultAsyncHttpxClient(),  # openai's default: httpx over anyio
    "aiohttp": lambda: openai.DefaultAsyncHttpxClient(transport=ModelTransport(ticks=False)),
    # the app's: aiohttp, a flowing stream read once per tick (`llm/read_ticks.py`)
    "aiohttp, ticks": lambda: openai.DefaultAsyncHttpxClient(transport=ModelTransport()),
}


async def read_reply(client: openai.AsyncOpenAI, prompt: str) -> list[str]:
    """Read one streamed reply as the app does (`agent/loop.py`): its text pieces, in order."""
    stream = await client.post(
        "/chat/completions",
        body={"model": MODEL_ID, "messages": [{"role": "user", "content": prompt}], "stream": True},
        cast_to=object,
        stream=True,
        stream_cls=openai.AsyncStream[object],
    )
    pieces = []
    try:
        async for chunk in stream:
            if text := normalize_chunk(chunk).text:
                pieces.append(text)
    finally:
        await stream.close()
    return pieces


async def _one(client: openai.AsyncOpenAI, tokens: int, rate: float) -> int:
    """One reply of `tokens` tokens at `rate` tok/s: the number of text pieces read."""
    return len(await read_reply(client, f"#script tokens={tokens} rate={rate:g}"))


async def _lag_sampler(lags: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        start = loop.time()
        await asyncio.sleep(0.01)
        lags.append((loop.time() - start - 0.01) * 1000)


async def one_round(url: str, transport: str, streams: int, tokens: int, rate: float) -> dict[str, Any]:
    """`streams` concurrent replies through one client of `transport`: CPU per token, loop lag."""
    client = openai.AsyncOpenAI(
        api_key="not-needed", base_url=url, max_retries=0, http_client=TRANSPORTS[transport]()
    )
    lags: list[float] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(_lag_sampler(lags, stop))
    try:
        await _one(client, 5, 0)  # a warm connection pool and imports, outside the figure
        cpu, wall = time.process_time(), time.perf_counter()
        counts = await asyncio.gather(*(_one(client, tokens, rate) for _ in range(streams)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        stop.set()
        await sampler
        await client.close()
    read = sum(counts)
    lags.sort()
    return {
        "transport": transport,
        "tokens": read,
        "exact": read == streams * tokens,
        "cpu_s": cpu,
        "us_per_token": cpu / read * 1e6,
        "wall_s": wall,
        "lag_p50_ms": lags[int(0.5 * (len(lags) - 1))],
        "lag_p99_ms": lags[int(0.99 * (len(lags) - 1))],
    }


def main() -> None:
    """Alternate the transports for `--rounds` rounds and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="tokens per second per stream; 0: at once")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args()
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="scripted-", suffix=".log")[1])
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.scripted_server", str(port)], stdout=sink, stderr=sink
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_http(f"{url}/models", server, log, 30)
        results = []
        for n in range(args.rounds):
            order = list(TRANSPORTS) if n % 2 == 0 else list(reversed(TRANSPORTS))
            for transport in order:
                result = asyncio.run(one_round(url, transport, args.streams, args.tokens, args.rate))
                print(json.dumps(result), flush=True)
                results.append(result)
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.unlink()
    lines = [
        f"{args.streams} streams of {args.tokens} tokens at {args.rate:g} tok/s each, "
        f"medians of {args.rounds} rounds",
        "",
        "| transport | exact | CPU µs per token (spread) | loop lag p50 / p99 ms |",
        "|---|---|---|---|",
    ]
    for transport in TRANSPORTS:
        mine = [r for r in results if r["transport"] == transport]
        per = sorted(r["us_per_token"] for r in mine)
        lines.append(
            f"| {transport} | {sum(r['exact'] for r in mine)}/{len(mine)} | "
            f"{statistics.median(per):.1f} ({per[0]:.1f} to {per[-1]:.1f}) | "
            f"{statistics.median(r['lag_p50_ms'] for r in mine):.1f} / "
            f"{statistics.median(r['lag_p99_ms'] for r in mine):.1f} |"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "transport_bench.json").write_text(json.dumps(results, indent=2))
    (out / "transport_bench.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
