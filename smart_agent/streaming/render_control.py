"""Render-aware pacing: turns a page's render reports into its event spacing and segment size."""

from __future__ import annotations

import math
from dataclasses import dataclass

from smart_agent.streaming.batcher import BatchPolicy
from smart_agent.streaming.clock import Clock, MonotonicClock

DEFAULT_BUSY_BUDGET = 0.1
DEFAULT_CPU_BUDGET = 0.1
CPU_FLOOR_SHARE = 0.2  # the CPU budget alone never takes a page below this share of the cap
CPU_RECOVER = 0.75  # above the CPU floor, a page recovers only under this share of the CPU budget
DEFAULT_FLOOR_EVENTS_PER_SECOND = 1.0
DEFAULT_MAX_FRAME = 0.25
DEFAULT_MIN_DECISION_WINDOW = 0.5
DECISION_EVENTS = 2  # a decision window holds at least this many event spacings
OVERLOAD = 3.0  # a window this many times over budget is decided at once
DEFAULT_MEMORY = 300.0
DEFAULT_MIN_REPORT_GAP = 0.2
DEFAULT_RECOVER_STEP = 1.0
MIN_BACKOFF = 0.5
DEFAULT_MAX_HOLD = 30.0


@dataclass(frozen=True)
class RenderReport:
    """What rendering cost a page over the last `window` seconds, as measured in the page.

    The page (public/smart-agent.js) counts `requestAnimationFrame` callbacks (`frames`), sums the
    time each frame took beyond 1/60 s (`busy`: the frame time lost to work, so `busy / window` is
    the share of frames the page dropped) and keeps the longest frame (`worst_frame`); `idle` is
    the main thread's idle time as `requestIdleCallback` saw it. All in seconds; the server stamps
    the arrival time itself. The rule reads the busy share, the worst frame and the idle time.
    """

    window: float
    frames: int
    busy: float
    worst_frame: float
    idle: float | None = None

    @property
    def valid(self) -> bool:
        """Whether the figures make sense (a page's report is untrusted input)."""
        figures = (self.window, self.busy, self.worst_frame, 0.0 if self.idle is None else self.idle)
        return all(math.isfinite(x) and x >= 0 for x in figures) and self.window > 0 and self.frames >= 0

    @property
    def main_thread_share(self) -> float | None:
        """Share of the window the main thread was working (not idle), when the page measured it."""
        return None if self.idle is None else max(0.0, 1.0 - min(1.0, self.idle / self.window))

    @property
    def busy_share(self) -> float:
        """Share of the window the page's main thread was busy, between 0 and 1."""
        return min(1.0, self.busy / self.window)


class RenderControl:
    """One page's pacing, steered by its render reports: AIMD on the events per second.

    Reports (every 250 ms) are summed into a decision window of at least `min_decision_window`
    seconds and `DECISION_EVENTS` event spacings, so a window holds some events however slow the
    pace (a 250 ms report either holds an update or not: deciding on each would swing between
    backing off and recovering); a window `OVERLOAD` times over budget is decided at once. A
    window whose busy share is over `busy_budget` (10 %: about 54 fps) or whose worst frame is over
    `max_frame` (a freeze) multiplies the rate by
    `max(0.5, busy_budget / busy_share)`: the page's render work per second is about rate * cost
    per event, so this lands near the budget in one step when the overshoot is small and halves it
    when large. A window under half the budget adds `recover_step` events/s; in between the rate
    holds (a dead band, so a page just under the budget does not oscillate). A page that keeps up
    may still spend more CPU than it needs: a window whose main thread was busy (not idle) over
    `cpu_budget` of the time backs off the same way, but never below `CPU_FLOOR_SHARE` of the cap
    (4 of 20 events/s), and the page recovers past that floor only while its main thread stays
    under `CPU_RECOVER` of the budget. Measured at 200 tok/s in headless Chromium: 10 events/s cost
    the browser 32-40 % of a core, 5 events/s 22-26 %, 2 events/s 15-22 %, all at 60 fps. The
    rate stays within [`floor_events_per_second`, `policy.max_events_per_second`]. A page that
    never reported (an old page, an API client) gets the policy unchanged. A page reports only
    while a turn runs and it is visible: between turns the rate it earned holds, so its next reply
    starts at the pace the device needs; after `memory` seconds without a report the policy
    applies again. A page whose script said it runs there (`page_seen`) but that has no reports
    in memory starts a reply (`turn_started`) at the CPU floor rather than the cap, and its
    reports move it from there: a page's first reply is also when Chainlit does its heaviest work
    (a new chat moves to its own address and reloads the sidebar), and the first decision comes
    half a second later. With
    `min_segment_chars` the segment size shrinks with the rate, never under it (a shorter message
    costs less per update); by default it does not: measured, 1,000-2,000-character segments made
    a 100,000-token reply end 8.6 s behind at 23 fps, since every update re-renders something for
    each message on the page (Chainlit's button bars) and there were hundreds of messages.

    With `hold_after`, a page that was heard from in this turn and then falls silent that long (a
    hidden, frozen or cut-off page: it cannot render what it is sent) is `held`: its timed events
    wait, and the first word from it again releases them as one event, so it does not work
    through a queue of stale updates on its return. A hold lasts at most `max_hold` seconds; a
    page still silent after that gets the floor rate, so one whose reports broke is not starved.
    """

    def __init__(
        self,
        policy: BatchPolicy,
        segment_chars: int = 0,
        clock: Clock | None = None,
        *,
        busy_budget: float = DEFAULT_BUSY_BUDGET,
        cpu_budget: float | None = DEFAULT_CPU_BUDGET,
        floor_events_per_second: float = DEFAULT_FLOOR_EVENTS_PER_SECOND,
        min_segment_chars: int | None = None,
        max_frame: float = DEFAULT_MAX_FRAME,
        memory: float = DEFAULT_MEMORY,
        min_report_gap: float = DEFAULT_MIN_REPORT_GAP,
        recover_step: float = DEFAULT_RECOVER_STEP,
        min_decision_window: float = DEFAULT_MIN_DECISION_WINDOW,
        hold_after: float | None = None,
        max_hold: float = DEFAULT_MAX_HOLD,
    ) -> None:
        if not 0 < busy_budget < 1:
            raise ValueError("busy_budget must be between 0 and 1")
        if cpu_budget is not None and not 0 < cpu_budget < 1:
            raise ValueError("cpu_budget must be between 0 and 1")
        if min(recover_step, memory, max_frame, hold_after or 1.0) <= 0 or max_hold < 0:
            raise ValueError("recover_step, memory, max_frame and hold_after must be > 0, max_hold >= 0")
        self.policy = policy
        self.ceiling = policy.max_events_per_second
        self.floor = min(floor_events_per_second, self.ceiling)
        self._segment_chars = segment_chars
        shrunk = segment_chars if min_segment_chars is None else min_segment_chars
        self._min_segment = min(shrunk, segment_chars)
        self._clock = clock or MonotonicClock()
        self.busy_budget = busy_budget
        self.cpu_budget = cpu_budget
        self.cpu_floor = max(self.floor, CPU_FLOOR_SHARE * self.ceiling)
        self.max_frame = max_frame
        self.memory = memory
        self.min_report_gap = min_report_gap
        self.recover_step = recover_step
        self.min_decision_window = min_decision_window
        self.hold_after = hold_after
        self.max_hold = max_hold
        self._turn_start: float | None = None
        self._heard: float | None = None  # the page's last word: a report or a signal, valid or not
        self._window = 0.0  # the decision window so far: seconds, busy seconds, worst frame
        self._busy = 0.0
        self._worst = 0.0
        self._timed = 0.0  # seconds of the window whose idle time the page measured, and the busy part
        self._working = 0.0
        self._rate = self.ceiling
        self._why = "frames"  # why the page is paced down: "frames", "cpu" or "start"
        self._expects_reports = False
        self._last_report: float | None = None
        self._last_step: float | None = None
        self.decisions = Decisions(self.ceiling)

    def report(self, report: RenderReport) -> bool:
        """Take one report from the page; False when it is ignored (invalid, or too soon after the last)."""
        self.heard()
        if not report.valid:
            return False
        now = self._clock.now()
        if not self._fresh(now):
            self._restart(self.ceiling)  # a page back after `memory`: start again from the policy
        self._last_report = now
        if self._last_step is not None and now - self._last_step < self.min_report_gap:
            return False  # a page reporting too often must not drive the rate down faster
        self._last_step = now
        self._window += report.window
        self._busy += min(report.busy, report.window)
        self._worst = max(self._worst, report.worst_frame)
        if report.main_thread_share is not None:
            self._timed += report.window
            self._working += report.main_thread_share * report.window
        share = self._busy / self._window
        overloaded = share > OVERLOAD * self.busy_budget  # no need to wait to see that
        if overloaded or self._window >= max(self.min_decision_window, DECISION_EVENTS / self._rate):
            working = self._working / self._timed if self._timed > 0 else None
            self._decide(min(1.0, share), self._worst, working)
            self._clear()
        return True

    def page_seen(self) -> None:
        """The page's script said it runs there: it will report while a reply streams."""
        self._expects_reports = True

    def heard(self) -> None:
        """The page said something (a report, even one ignored, or a signal): it runs and is shown."""
        self._heard = self._clock.now()

    def held(self) -> bool:
        """Whether the page fell silent mid-turn, so its timed events should wait for it."""
        return self._hold() == "held"

    def turn_ended(self) -> None:
        """The turn is over: the page stops reporting now, which is no silence to hold for."""
        self._turn_start = None

    def turn_started(self) -> None:
        """A reply starts: a page expected to report, with no reports in memory, begins at the CPU floor."""
        now = self._clock.now()
        self._turn_start = now
        if not self._expects_reports or self._fresh(now):
            return  # an old page or an API client gets the policy; a page's earned pace holds
        self._restart(self.cpu_floor)
        self._last_report = now
        self._why = "start"
        self.decisions.started(self._rate)

    def _restart(self, rate: float) -> None:
        self._rate = rate
        self._last_step = None
        self._clear()

    def _clear(self) -> None:
        self._window = self._busy = self._worst = self._timed = self._working = 0.0

    def _decide(self, share: float, worst: float, working: float | None) -> None:
        cpu = self.cpu_budget
        if share > self.busy_budget or worst > self.max_frame:
            self._back_off(self.busy_budget, share, self.floor, why="frames")
        elif cpu is not None and working is not None and working > cpu and self._rate > self.cpu_floor:
            self._back_off(cpu, working, self.cpu_floor, why="cpu")
        elif share < self.busy_budget / 2 and self._rate < self.ceiling and self._may_rise(working):
            self._rate = min(self.ceiling, self._rate + self.recover_step)
            self.decisions.recovered(self._rate)
        else:
            self.decisions.held()

    def _back_off(self, budget: float, load: float, floor: float, *, why: str) -> None:
        factor = max(MIN_BACKOFF, budget / load) if load > budget else MIN_BACKOFF  # else: a long frame
        self._rate = max(floor, self._rate * factor)
        self._why = why
        self.decisions.backed_off(self._rate)

    def _may_rise(self, working: float | None) -> bool:
        if self.cpu_budget is None or working is None or self._rate < self.cpu_floor:
            return True
        return working < CPU_RECOVER * self.cpu_budget

    def events_per_second(self) -> float:
        """The most stream events per second this page gets now."""
        return self._rate if self._fresh(self._clock.now()) else self.ceiling

    def spacing(self) -> float:
        """Shortest time between two stream events to this page now, in seconds (a Pacer's budget)."""
        if self._hold() == "expired":
            return 1.0 / self.floor  # held too long: its reports may have broken, so trickle
        return 1.0 / self.events_per_second()

    def _hold(self) -> str:
        # "held", "expired" (silent past `max_hold`) or "" for a page heard from in the turn running
        # now (its "started" signal can arrive just before the server starts the turn's pacing).
        start, heard, after = self._turn_start, self._heard, self.hold_after
        if after is None or start is None or heard is None or heard < start - after:
            return ""
        silent = self._clock.now() - heard
        return "" if silent <= after else "held" if silent <= after + self.max_hold else "expired"

    def segment_chars(self) -> int:
        """Segment size for the next segment now: `segment_chars` scaled by the rate, 0 when off."""
        if self._segment_chars <= 0:
            return self._segment_chars
        scaled = round(self._segment_chars * self.events_per_second() / self.ceiling)
        return max(self._min_segment, min(self._segment_chars, scaled))

    @property
    def segment_setting(self) -> int:
        """The segment size the flags set (the most `segment_chars()` returns)."""
        return self._segment_chars

    @property
    def paced_down(self) -> bool:
        """Whether the page gets fewer events per second than the policy allows."""
        return self.events_per_second() < self.ceiling

    @property
    def reporting(self) -> bool:
        """Whether the page's reports set its pace now (it reported within `memory` seconds)."""
        return self._fresh(self._clock.now())

    def describe(self) -> str:
        """One line for the settings panel: the page's pace now."""
        if not self.reporting:
            return f"Full speed: up to {self.ceiling:g} updates/s (no render reports from this page yet)"
        rate = self.events_per_second()
        if rate < self.ceiling:
            return f"Paced down to {rate:.0f} of {self.ceiling:g} updates/s: {_WHY[self._why]}"
        return f"Full speed: {self.ceiling:g} updates/s, this page keeps up"

    def _fresh(self, now: float) -> bool:
        return self._last_report is not None and now - self._last_report <= self.memory


_WHY = {
    "frames": "this page renders slowly",
    "cpu": "to save this page's CPU",
    "start": "a page starts gently, its reports raise the pace",
}


@dataclass
class Decisions:
    """What the controller decided since the last `take()`, for the debug log."""

    rate: float
    reports: int = 0
    backoffs: int = 0
    recoveries: int = 0
    lowest: float = math.inf

    def backed_off(self, rate: float) -> None:
        """A report over budget lowered the rate to `rate`."""
        self._step(rate)
        self.backoffs += 1

    def recovered(self, rate: float) -> None:
        """A report well under budget raised the rate to `rate`."""
        self._step(rate)
        self.recoveries += 1

    def started(self, rate: float) -> None:
        """A page with no reports yet started a reply at `rate`."""
        self.rate = rate
        self.lowest = min(self.lowest, rate)

    def held(self) -> None:
        """A report in the dead band (or at the ceiling) left the rate alone."""
        self._step(self.rate)

    def take(self) -> str:
        """One log line of the decisions so far; starts counting again."""
        lowest = "-" if self.lowest == math.inf else f"{self.lowest:.1f}"
        line = (
            f"reports={self.reports} backoffs={self.backoffs} recoveries={self.recoveries} "
            f"lowest_events_per_s={lowest} events_per_s={self.rate:.1f}"
        )
        self.reports = self.backoffs = self.recoveries = 0
        self.lowest = math.inf
        return line

    def _step(self, rate: float) -> None:
        self.rate = rate
        self.reports += 1
        self.lowest = min(self.lowest, rate)
