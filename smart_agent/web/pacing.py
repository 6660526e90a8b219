"""A page's render-aware pacing: its render reports (window messages) steer the pacer of its turns."""

from __future__ import annotations

import logging
import math
from typing import Any

import chainlit as cl

from smart_agent.config import Settings
from smart_agent.streaming.batcher import policy_for
from smart_agent.streaming.clock import Clock
from smart_agent.streaming.pacer import Pacer
from smart_agent.streaming.render_control import RenderControl, RenderReport

log = logging.getLogger("smart_agent.pacing")

REPORT_KEY = "smartAgentRender"
"""The key of a render report in a window message (public/smart-agent.js posts it)."""
PING = {"ping": True}
"""What the server sends the page under `REPORT_KEY` when a session opens (`greet`)."""
HELLO = {"hello": True}
"""The page's answer to `PING`: its script runs there and will report."""
STARTED = {"started": True}
"""What the page posts under `REPORT_KEY` when it sees a reply start streaming."""
_SESSION_KEY = "render_control"
_MAX_WINDOW = 10.0  # seconds: a page reports every 250 ms; a longer window is not a report
_MAX_FRAMES = 10_000


def parse_report(data: Any) -> RenderReport | None:
    """The render report in a window message; None for anything else (the page's input is untrusted)."""
    if not isinstance(data, dict):
        return None
    body = data.get(REPORT_KEY)
    if not isinstance(body, dict):
        return None
    figures = [body.get(key) for key in ("window", "busy", "worst_frame")]
    frames = body.get("frames")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in figures):
        return None
    if not isinstance(frames, int) or isinstance(frames, bool) or not 0 <= frames <= _MAX_FRAMES:
        return None
    try:
        window, busy, worst = (float(x) for x in figures)  # type: ignore[arg-type]
    except OverflowError:  # an integer too large for a float
        return None
    if not all(math.isfinite(x) for x in (window, busy, worst)) or not 0 < window <= _MAX_WINDOW:
        return None
    idle = _figure(body.get("idle"))
    report = RenderReport(window, frames, min(busy, window), min(worst, window), idle)
    return report if report.valid else None


def parse_signal(data: Any) -> str | None:
    """The page's signal in a window message ("hello" or "started"), else None."""
    body = data.get(REPORT_KEY) if isinstance(data, dict) else None
    return "hello" if body == HELLO else "started" if body == STARTED else None


def _figure(value: Any) -> float | None:
    """An optional figure of a report: a finite number >= 0, else None."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def control(settings: Settings, clock: Clock | None = None) -> RenderControl | None:
    """This session's controller for these settings (made anew when the panel changed its bounds);
    None when render-aware pacing is off or batching is (every token then goes at once)."""
    if not settings.render_pacing or not settings.stream_batching:
        return None
    policy = policy_for(settings)
    current: RenderControl | None = cl.user_session.get(_SESSION_KEY)
    if current is None or current.policy != policy or current.segment_setting != settings.segment_chars:
        current = RenderControl(policy, settings.segment_chars, clock, hold_after=settings.page_hold or None)
        cl.user_session.set(_SESSION_KEY, current)
    return current


def turn_pacer(settings: Settings, render: RenderControl | None, clock: Clock | None = None) -> Pacer:
    """The one budget every stream of a turn shares; its spacing follows the page's reports, if any."""
    if render is not None:
        render.turn_started()  # a page that has no reports yet starts gently
    if render is None:
        return Pacer(settings.max_events_per_second, clock)
    return Pacer(settings.max_events_per_second, clock, render.spacing, render.held)


def end_turn(pacer: Pacer, render: RenderControl | None) -> None:
    """The turn is over: no stream of it waits any more, and the page's silence is no longer held for."""
    pacer.close()
    if render is not None:
        render.turn_ended()


async def greet(settings: Settings) -> None:
    """Ask the page whether its script runs (it answers hello), so its first reply starts gently."""
    if control(settings) is not None:
        await cl.send_window_message({REPORT_KEY: PING})


async def on_report(data: Any) -> None:
    """A window message from the page: if it is a render report, steer this session's pace with it."""
    settings: Settings | None = cl.user_session.get("settings")
    if not isinstance(data, dict) or not isinstance(data.get(REPORT_KEY), dict) or settings is None:
        return
    render = control(settings)
    if render is None:
        return
    if render.held() and settings.debug:
        log.debug("page heard from again: the events held for it go out")
    report = parse_report(data)
    if report is None:  # `report()` hears the page itself; a refused report (a page back from 10 s
        render.heard()  # frozen reports a window too long) and a signal say it is there all the same
    signal = parse_signal(data) if report is None else None
    if report is None and signal is None:
        return
    if report is None:
        render.page_seen()
        if signal == "started":  # a first reply began before the page's hello arrived
            render.turn_started()
        return
    before = render.events_per_second()
    if render.report(report) and settings.debug and render.events_per_second() != before:
        log.debug(
            "pacing %.1f -> %.1f events/s (frames lost %.0f%%, main thread %s of %.2f s, "
            "worst frame %.0f ms, %d frames)",
            before,
            render.events_per_second(),
            report.busy_share * 100,
            "?" if report.main_thread_share is None else f"{report.main_thread_share:.0%}",
            report.window,
            report.worst_frame * 1000,
            report.frames,
        )
