"""What a chat's settings panel may change over the app's settings, validated like a flag."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smart_agent.config import ConfigError, Settings, text_parser

# What the per-session settings panel may change, with the label it shows.
SESSION_SETTINGS: dict[str, str] = {
    "stream_batching": "Batching",
    "batch_size": "Batch size",
    "flush_interval": "Flush interval (s)",
    "adaptive_batching": "Adaptive batching",
    "segment_chars": "Segment size (characters, 0 = off)",
    "team_stream_live": "Team: stream members live",
    "team_concurrency": "Team: members at once (empty = all, 1 for the embedded model)",
    "show_thinking": "Show thinking",
    "reasoning_effort": "Reasoning effort",
}

OPTIONAL_SESSION_SETTINGS = frozenset({"team_concurrency", "reasoning_effort"})
"""Panel settings whose empty value means the default."""

_WHOLE_NUMBERS = frozenset({"batch_size", "segment_chars", "team_concurrency"})
"""Panel settings a slider may send as a float (5.0)."""

SMOOTHNESS: dict[str, tuple[str, dict[str, bool]]] = {
    "smooth": ("Smooth (recommended)", {"stream_batching": True, "adaptive_batching": False}),
    "instant": (
        "Instant: every word as it arrives (heavier on the browser)",
        {"stream_batching": False, "adaptive_batching": False},
    ),
    "calm": (
        "Calm: fewer, larger updates (lighter on a slow device)",
        {"stream_batching": True, "adaptive_batching": True},
    ),
}
"""The panel's one plain control for stream pacing: its choices, their labels and the settings they set."""


def smoothness(settings: Settings) -> str:
    """The SMOOTHNESS choice these settings amount to."""
    if not settings.stream_batching:
        return "instant"
    return "calm" if settings.adaptive_batching else "smooth"


def apply_session_settings(base: Settings, values: Mapping[str, Any]) -> Settings:
    """`base` with the panel's values applied; a bad value raises ConfigError naming its label.

    A changed Smoothness sets batching and adaptive batching itself, over the Advanced switches.
    """
    changes: dict[str, Any] = {}
    chosen = values.get("smoothness")
    if chosen is not None and chosen != smoothness(base):
        if chosen not in SMOOTHNESS:
            raise ConfigError(
                f"Smoothness: {chosen!r} is not allowed, it must be one of {', '.join(SMOOTHNESS)}"
            )
        changes.update(SMOOTHNESS[chosen][1])
    for name, label in SESSION_SETTINGS.items():
        if name in changes:
            continue
        if name in OPTIONAL_SESSION_SETTINGS and name in values and values[name] in (None, ""):
            changes[name] = None  # emptied: back to the default (for the team: all members)
            continue
        if name not in values or values[name] is None:
            continue
        raw = values[name]
        if isinstance(raw, bool):
            raw = "1" if raw else "0"
        elif isinstance(raw, float) and raw.is_integer() and name in _WHOLE_NUMBERS:
            raw = str(int(raw))
        try:
            changes[name] = text_parser(name)(str(raw))
        except ValueError as exc:
            raise ConfigError(f"{label}: {raw!r} is not allowed, it {exc}") from None
    return base.model_copy(update=changes)
