"""Benchmarks only: sample the event loop's lag and append the samples (ms) to a file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

PERIOD = 0.05


async def sample_lag(path: Path) -> None:
    """Every PERIOD seconds, write how late the loop woke us, in milliseconds."""
    with path.open("a", buffering=1) as out:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(PERIOD)
            out.write(f"{(time.perf_counter() - asked - PERIOD) * 1000:.3f}\n")


_started: set[Path] = set()


def start(path: Path) -> None:
    """Start sampling once per process."""
    if path in _started:
        return
    _started.add(path)
    asyncio.get_running_loop().create_task(sample_lag(path), name="smart-agent-lag-probe")
