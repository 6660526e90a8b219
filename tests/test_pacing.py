"""A page's render report as it arrives (a window message from the browser: untrusted input)."""

from __future__ import annotations

from typing import Any

import pytest

from smart_agent.streaming.render_control import RenderReport
from smart_agent.web.pacing import PING, REPORT_KEY, parse_report, parse_signal

GOOD = {"window": 0.25, "frames": 15, "busy": 0.05, "worst_frame": 0.033}


def test_report_when_well_formed_then_parsed() -> None:
    assert parse_report({REPORT_KEY: GOOD}) == RenderReport(0.25, 15, 0.05, 0.033)


def test_report_when_figures_exceed_the_window_then_clamped_to_it() -> None:
    report = parse_report({REPORT_KEY: {**GOOD, "busy": 99.0, "worst_frame": 50}})
    assert report == RenderReport(0.25, 15, 0.25, 0.25) and report.busy_share == 1.0


@pytest.mark.parametrize(
    "data",
    [
        None,
        "smartAgentRender",
        [GOOD],
        {"other": GOOD},
        {REPORT_KEY: "0.25"},
        {REPORT_KEY: {**GOOD, "window": "0.25"}},
        {REPORT_KEY: {**GOOD, "window": True}},
        {REPORT_KEY: {**GOOD, "frames": 1.5}},
        {REPORT_KEY: {**GOOD, "frames": False}},
        {REPORT_KEY: {**GOOD, "frames": -1}},
        {REPORT_KEY: {**GOOD, "frames": 10**9}},
        {REPORT_KEY: {**GOOD, "window": 0}},
        {REPORT_KEY: {**GOOD, "window": 3600}},
        {REPORT_KEY: {**GOOD, "busy": -0.1}},
        {REPORT_KEY: {**GOOD, "busy": float("nan")}},
        {REPORT_KEY: {**GOOD, "worst_frame": float("inf")}},
        {REPORT_KEY: {k: v for k, v in GOOD.items() if k != "busy"}},
        {REPORT_KEY: {**GOOD, "busy": 10**400}},
    ],
)
def test_report_when_malformed_or_hostile_then_ignored(data: Any) -> None:
    assert parse_report(data) is None


def test_signal_when_hello_or_started_then_recognised_and_anything_else_not() -> None:
    assert parse_signal({REPORT_KEY: {"hello": True}}) == "hello"
    assert parse_signal({REPORT_KEY: {"started": True}}) == "started"
    for data in (
        None,
        [REPORT_KEY],
        {"hello": True},
        {REPORT_KEY: PING},  # the server's own ping, which Chainlit's page forwards back
        {REPORT_KEY: GOOD},
        {REPORT_KEY: {"hello": "true"}},
        {REPORT_KEY: {"hello": True, "started": True}},
        {REPORT_KEY: ["hello"]},
    ):
        assert parse_signal(data) is None, data
