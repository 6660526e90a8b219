"""How far a reply has got and how long it has left: its measured rate over the length that this
model's recent replies had (seed 004's "historical learning"), with a confidence."""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass
from typing import Any

HISTORY = 20
"""Replies remembered per model: recent enough to follow a change of prompt or model, enough for a median."""
DEFAULT_REPLY_TOKENS = 400
"""The expected length of a model's reply before any of its replies ended."""
NO_HISTORY_CONFIDENCE = 0.1
OVERRUN = 1.1
"""A reply longer than expected is assumed to have a tenth of its length still to come."""
MAX_RUNNING_PERCENT = 99.0
"""A running reply never reads 100 %: only its end says it is complete."""


@dataclass(frozen=True)
class Estimate:
    """One progress estimate of a running reply."""

    percent_complete: float
    tokens_per_second: float
    seconds_remaining: float | None  # None until a rate is measured
    confidence: float  # 0 (a guess) to 1 (recent replies all had this length)
    expected_tokens: int

    def figures(self) -> dict[str, Any]:
        """The fields the run log's `progress` event gains (snake case, like the runs API)."""
        return {
            "percent_complete": self.percent_complete,
            "estimated_seconds_remaining": self.seconds_remaining,
            "confidence": self.confidence,
        }


class ReplyLengths:
    """The lengths (in tokens) of each model's last replies, in this process."""

    def __init__(self, keep: int = HISTORY, default: int = DEFAULT_REPLY_TOKENS) -> None:
        if keep < 1 or default < 1:
            raise ValueError("keep and default must be at least 1")
        self._keep = keep
        self._default = default
        self._lengths: dict[str, deque[int]] = {}

    def record(self, model: str, tokens: int) -> None:
        """Remember that a reply of `model` ended after `tokens` tokens (empty replies teach nothing)."""
        if tokens > 0:
            self._lengths.setdefault(model, deque(maxlen=self._keep)).append(tokens)

    def expected(self, model: str) -> tuple[int, float]:
        """The expected length of `model`'s next reply and how sure that is."""
        lengths = sorted(self._lengths.get(model, ()))
        if not lengths:
            return self._default, NO_HISTORY_CONFIDENCE
        median = statistics.median(lengths)
        if len(lengths) >= 2:
            low, _, high = statistics.quantiles(lengths, n=4, method="inclusive")
            spread = (high - low) / median
        else:
            spread = 0.5  # one reply says little about the next
        # More replies and a narrower spread of their lengths: more confidence.
        confidence = len(lengths) / (len(lengths) + 2) / (1 + spread)
        return max(1, round(median)), max(NO_HISTORY_CONFIDENCE, round(confidence, 2))

    def estimate(self, model: str, tokens: int, tokens_per_second: float) -> Estimate:
        """Where a reply of `model` that has `tokens` tokens so far, at this rate, stands."""
        expected, confidence = self.expected(model)
        total = expected
        if tokens >= expected:
            total = max(tokens + 1, math.ceil(tokens * OVERRUN))
            confidence = round(confidence / 2, 2)  # the history was wrong about this reply
        percent = min(MAX_RUNNING_PERCENT, round(100.0 * tokens / total, 1))
        remaining = round((total - tokens) / tokens_per_second, 1) if tokens_per_second > 0 else None
        return Estimate(percent, round(tokens_per_second, 2), remaining, confidence, total)
