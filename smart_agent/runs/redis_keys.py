"""A run's keys in Redis, its event ids, and how the text and reasoning they hold are decoded."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from smart_agent.runs.log import InvalidEventIdError

_MAX_ID_PART = 2**64 - 1
_SPAN = re.compile(rb"(\d+):(\d+):(\d+)")


@dataclass(frozen=True)
class RunKeys:
    """The Redis keys of one run (see smart_agent/runs/redis_scripts.py)."""

    meta: str
    events: str
    text: str
    lease: str
    known: str
    reasoning: str

    @classmethod
    def of(cls, prefix: str, run_id: str) -> RunKeys:
        """The keys of `run_id` under `prefix`."""
        base = f"{prefix}run:{run_id}"
        return cls(
            base, f"{base}:events", f"{base}:text", f"{base}:lease", f"{base}:known", f"{base}:reasoning"
        )

    def all_with(self, running: str) -> list[str]:
        """Every key of the run and its owner's `running` set, in the order the finish and
        refresh scripts take them (smart_agent/runs/redis_scripts.py)."""
        return [self.meta, self.events, self.text, self.lease, self.known, running, self.reasoning]


def parse_id(after: str | None) -> str:
    """A resume id as Redis writes it (`ms-seq`, no leading zeros); InvalidEventIdError otherwise."""
    if after is None:
        return "0-0"
    ms, dash, seq = after.strip().partition("-")
    if not (dash and ms.isascii() and ms.isdigit() and seq.isascii() and seq.isdigit()):
        raise InvalidEventIdError(f"{after!r} is not an event id of this run")
    if int(ms) > _MAX_ID_PART or int(seq) > _MAX_ID_PART:
        raise InvalidEventIdError(f"{after!r} is not an event id of this run")
    return f"{int(ms)}-{int(seq)}"


def as_str(value: Any) -> str:
    """A Redis reply (bytes) as str."""
    return value.decode() if isinstance(value, bytes) else str(value)


def encode(value: str) -> bytes:
    """Text as the run's keys store it."""
    # surrogatepass: a lone surrogate the model sent round-trips instead of failing the run.
    return value.encode("utf-8", "surrogatepass")


def decode(raw: bytes | None) -> str:
    """What `encode` stored, as text."""
    return (raw or b"").decode("utf-8", "surrogatepass")


def visible_text(raw: bytes | None, moved: bytes | None) -> str:
    """The run's text: its `text` key without the spans `meta.moved` says went to the reasoning."""
    raw = raw or b""
    spans = sorted((int(start), int(stop)) for _, start, stop in _SPAN.findall(moved or b""))
    kept: list[bytes] = []
    pos = 0
    for start, stop in spans:
        if start > pos:
            kept.append(raw[pos:start])
        pos = max(pos, stop)
    kept.append(raw[pos:])
    return decode(b"".join(kept))
