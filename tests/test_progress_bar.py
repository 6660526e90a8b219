"""The chat page's progress bar: when a reply counts as long, how the estimate is drawn, and that
a low confidence shows no percentage."""

from __future__ import annotations

from smart_agent.streaming.progress import ReplyProgress
from smart_agent.web.progress_bar import CELLS, EMPTY, FILLED, UNKNOWN, ReplyBar, ReplyHistory, draw


def progress(tokens: int, rate: float) -> ReplyProgress:
    return ReplyProgress(tokens, tokens / rate if rate else 0.0, 0.1, rate, 1)


def test_draw_when_confident_then_filled_cells_match_the_percentage() -> None:
    line = draw(50.0, 4.2, 0.8)
    assert line.text == f"{FILLED * (CELLS // 2)}{EMPTY * (CELLS // 2)}  50 % · about 4 s left"
    assert line.key == (True, CELLS // 2)
    assert draw(99.0, 0.4, 0.8).text.endswith("99 % · almost done")


def test_draw_when_confidence_low_or_no_rate_then_dashed_track_without_percentage() -> None:
    for line in (draw(50.0, 4.2, 0.2), draw(50.0, None, 0.9)):
        assert line.text.startswith(UNKNOWN * CELLS) and "%" not in line.text and "left" not in line.text
        assert line.key == (False, 0)


def test_reply_bar_when_estimate_short_then_none_when_long_then_kept_until_the_end() -> None:
    history = ReplyHistory()
    for _ in range(3):
        history.learn("m", progress(100, 100.0))
    bar = ReplyBar("m", history)
    assert bar.line(progress(10, 100.0)) is None  # 100 tokens at 100 tok/s: one second
    assert bar.line(progress(1, 0.0)) is None  # no rate yet: nothing to say
    line = bar.line(progress(10, 20.0))  # the model slowed down: five seconds
    assert line is not None and line.text.startswith(FILLED) and "10 %" in line.text
    assert bar.line(progress(50, 100.0)) is not None  # once shown, the bar stays while it runs


def test_history_when_model_replies_long_then_next_reply_expected_long() -> None:
    history = ReplyHistory()
    assert not history.expects_long("m")  # no rate known: no prediction
    history.learn("m", progress(200, 50.0))
    assert history.expects_long("m") and not history.expects_long("other")
    history.learn("fast", progress(200, 1000.0))
    assert not history.expects_long("fast")
    bar = ReplyBar("m", history)
    bar.ended(progress(0, 0.0))  # an empty reply teaches nothing
    assert history.lengths.expected("m")[0] == 200
