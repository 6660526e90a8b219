"""Server-side costs: the wrapper's CPU per token, many concurrent sessions, memory per reply.

python -m benchmarks.server_bench [--sessions 100] [--history] [--out bench-results] [--segments-only]
    [--sessions-only]

The Socket.IO clients of the many-sessions figure run in a process of their own (`--clients URL`), so
the app's event-loop lag is the app's, not the clients' (issue 14); the scripted model server stays a
thread of the benchmark's process, which has nothing else to do while the sessions run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from smart_agent.config import DEFAULT_SEGMENT_CHARS
from smart_agent.streaming import BatchPolicy, SegmentedReply, SmoothStreamWrapper
from tests.fakes import NoOpMessage
from tests.harness import clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens, serve
from tests.sio_client import ChatClient

CLIENTS_NICENESS = 10


class _NullMessage(NoOpMessage):
    """A message whose emit costs nothing, to isolate the wrapper's own cost; unlike NoOpMessage it
    keeps its content, since Chainlit's `content += token` is part of a direct emit's cost."""

    def __init__(self) -> None:
        self.content = ""

    async def stream_token(self, token: str, is_sequence: bool = False) -> None:
        self.content = token if is_sequence else self.content + token


async def wrapper_cost(tokens: int = 200_000) -> dict[str, float]:
    """CPU microseconds per token: direct stream_token against the batching wrapper."""
    pieces = [f" w{i}" for i in range(tokens)]
    direct = _NullMessage()
    start = time.process_time()
    for piece in pieces:
        await direct.stream_token(piece)
    direct_us = (time.process_time() - start) / tokens * 1e6
    wrapped = SmoothStreamWrapper(_NullMessage(), BatchPolicy())
    start = time.process_time()
    for piece in pieces:
        await wrapped.stream_token(piece)
    await wrapped.close()
    wrapper_us = (time.process_time() - start) / tokens * 1e6
    return {"direct_us_per_token": direct_us, "wrapper_us_per_token": wrapper_us}


SEGMENT_SIZES = (10_000, 100_000, 1_000_000)
SEGMENT_SHAPES = {
    # one code fence opened at the start and never closed: no cut anywhere, lines of 16 chars
    "fence": ("```python\n", ("x = 1", " + 2", "  # w", "\n")),
    # no newline at all: one line as long as the reply
    "one_line": ("", (" w", "ord", "s")),
}


async def segment_cost(chars: int, shape: str) -> float:
    """CPU microseconds per token for a `chars`-character reply through SegmentedReply."""
    head, cycle = SEGMENT_SHAPES[shape]
    tokens = [head]
    length = len(head)
    while length < chars:
        token = cycle[len(tokens) % len(cycle)]
        tokens.append(token)
        length += len(token)
    reply = SegmentedReply(NoOpMessage, BatchPolicy(), DEFAULT_SEGMENT_CHARS)
    start = time.process_time()
    for token in tokens:
        await reply.stream_token(token)
    await reply.finish()
    return (time.process_time() - start) / len(tokens) * 1e6


async def segment_costs() -> dict[str, dict[str, float]]:
    """CPU per token at each reply size, for each shape: flat when the cost is per token."""
    return {
        shape: {str(chars): await segment_cost(chars, shape) for chars in SEGMENT_SIZES}
        for shape in SEGMENT_SHAPES
    }


def segment_table(costs: dict[str, dict[str, float]]) -> str:
    """The per-token CPU of segmenting, as markdown rows."""
    rows = ""
    for shape, label in (("fence", "inside one code fence"), ("one_line", "one line, no newline")):
        figures = " / ".join(f"{costs[shape][str(chars)]:.2f}" for chars in SEGMENT_SIZES)
        rows += f"| CPU per token through SegmentedReply, {label}, 10k / 100k / 1M chars | {figures} µs |\n"
    return rows


async def sessions(url: str, count: int, tokens: int, rate: float) -> dict[str, Any]:
    """`count` Socket.IO sessions each receiving a `tokens`-token reply at `rate` tok/s."""
    expected = "".join(script_tokens(tokens))
    clients = [ChatClient(url) for _ in range(count)]
    try:
        await asyncio.gather(*(c.connect(seconds=120) for c in clients))
        start = time.monotonic()
        await asyncio.gather(*(c.send(f"#script tokens={tokens} rate={rate:g}") for c in clients))
        await asyncio.gather(*(c.wait_task_ends(3, seconds=tokens / rate + 120) for c in clients))
        wall = time.monotonic() - start
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    exact = sum(c.reply() == expected for c in clients)
    return {
        "sessions": count,
        "exact": exact,
        "wall_s": wall,
        "events": sum(c.stream_tokens for c in clients),
    }


async def one_reply(url: str, tokens: int) -> None:
    """One session, one reply of `tokens` tokens, as fast as the server sends."""
    client = ChatClient(url)
    try:
        await client.connect()
        await client.send(f"#script tokens={tokens}")
        await client.wait_task_ends(3, seconds=120)
    finally:
        await client.close()


def sessions_in_own_process(url: str, count: int, tokens: int, rate: float) -> dict[str, Any]:
    """`sessions(...)` run by a child process, so the clients' CPU is neither the app's nor the model's."""
    command = [sys.executable, "-m", "benchmarks.server_bench", "--clients", url, "--sessions", str(count)]
    command += ["--tokens", str(tokens), "--rate", f"{rate:g}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=tokens / rate + 600,
        check=False,
        # below the app's priority: on 2 shared cores, a client's turn must not count as the app's lag
        preexec_fn=lambda: os.nice(CLIENTS_NICENESS),
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"clients exited with {done.returncode}:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    result["clients_cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return result


def _percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1]


def run(
    server: ScriptedServer, count: int, log_dir: Path, history: bool = False, micro: bool = True
) -> dict[str, Any]:
    """All server-side figures (without `micro`, only the app's: no in-process wrapper costs)."""
    results: dict[str, Any] = {}
    if micro:
        results["wrapper"] = asyncio.run(wrapper_cost())
        results["segments"] = asyncio.run(segment_costs())
    lag_file = log_dir / "lag.txt"
    env = clean_env(
        OPENAI_API_KEY="bench", SMART_AGENT_LAG_PROBE=str(lag_file), SMART_AGENT_HISTORY=str(int(history))
    )
    with running_app("--base-url", server.url, "--model", MODEL_ID, env=env, log_dir=log_dir) as (url, app):
        process = psutil.Process(app.pid)
        asyncio.run(one_reply(url, 200))  # warm up imports and caches
        rss_before = process.memory_info().rss
        asyncio.run(one_reply(url, 10_000))
        results["memory"] = {
            "rss_growth_mb_10k_token_reply": (process.memory_info().rss - rss_before) / 2**20
        }
        lag_file.write_text("")
        cpu_before = process.cpu_times()
        load_before = os.getloadavg()[0]
        results["sessions"] = sessions_in_own_process(url, count, 1000, 50)
        cpu_after = process.cpu_times()
        lags = [float(line) for line in lag_file.read_text().split()]
        results["sessions"] |= {
            "app_cpu_s": (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system),
            "loop_lag_p50_ms": _percentile(lags, 50),
            "loop_lag_p99_ms": _percentile(lags, 99),
            "loop_lag_max_ms": max(lags, default=float("nan")),
            "load_before": load_before,
            "load_after": os.getloadavg()[0],
        }
    return results


def main() -> None:
    """Run and print the server-side benchmark; write JSON and markdown into --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--out", default="bench-results")
    parser.add_argument("--segments-only", action="store_true", help="only the segmenting cost")
    parser.add_argument("--history", action="store_true", help="chat history on (turns stored, logged)")
    parser.add_argument("--sessions-only", action="store_true", help="only the app's figures")
    parser.add_argument("--clients", metavar="URL", help=argparse.SUPPRESS)  # the child: run the clients
    parser.add_argument("--tokens", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=50, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.clients:
        print(json.dumps(asyncio.run(sessions(args.clients, args.sessions, args.tokens, args.rate))))
        return
    if args.segments_only:
        print("| measure | value |\n|---|---|\n" + segment_table(asyncio.run(segment_costs())))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with serve() as server, tempfile.TemporaryDirectory() as logs:
        results = run(server, args.sessions, Path(logs), args.history, not args.sessions_only)
    (out / "server.json").write_text(json.dumps(results, indent=2))
    s, m = results["sessions"], results["memory"]
    table = "| measure | value |\n|---|---|\n"
    if "wrapper" in results:
        w = results["wrapper"]
        table += (
            f"| CPU per token, direct `stream_token` (no emit) | {w['direct_us_per_token']:.2f} µs |\n"
            f"| CPU per token, through SmoothStreamWrapper | {w['wrapper_us_per_token']:.2f} µs |\n"
            + segment_table(results["segments"])
        )
    history = "on" if args.history else "off"
    table += (
        f"| {s['sessions']} sessions, 1,000 tokens @ 50 tok/s each, history {history}:"
        f" exact replies | {s['exact']} / {s['sessions']} |\n"
        f"| … wall time | {s['wall_s']:.1f} s |\n"
        f"| … stream_token events received (all sessions) | {s['events']:,} |\n"
        f"| … app CPU / clients' CPU | {s['app_cpu_s']:.1f} s / {s['clients_cpu_s']:.1f} s |\n"
        f"| … event-loop lag p50 / p99 / max | {s['loop_lag_p50_ms']:.1f} / {s['loop_lag_p99_ms']:.1f} / "
        f"{s['loop_lag_max_ms']:.1f} ms |\n"
        f"| … load average (1 min) before / after | {s['load_before']:.2f} / {s['load_after']:.2f} |\n"
        f"| RSS growth for one 10,000-token reply | {m['rss_growth_mb_10k_token_reply']:.1f} MiB |\n"
    )
    (out / "server.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
