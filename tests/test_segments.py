"""Segment boundaries: exact joins, never inside a fence, never before an indented line."""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smart_agent.streaming.segments import CutFinder, split_segments

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def ends_inside_fence(segment: str) -> bool:
    """An independent reading of CommonMark fences: is a fence still open at the end?"""
    open_fence = ""
    for line in segment.split("\n"):
        match = FENCE.match(line.rstrip("\r"))
        if not match:
            continue
        marker, rest = match.groups()
        if not open_fence:
            if not (marker[0] == "`" and "`" in rest):
                open_fence = marker
        elif marker[0] == open_fence[0] and len(marker) >= len(open_fence) and not rest.strip():
            open_fence = ""
    return bool(open_fence)


def check(segments: list[str], text: str) -> None:
    assert "".join(segments) == text
    for segment in segments[:-1]:
        assert not ends_inside_fence(segment), segment  # never cut inside a code block
        assert re.search(r"\n[ \t]*\r?\n$", segment) or segment.endswith("\n\n"), segment
    for segment in segments[1:]:
        assert segment[:1] not in {" ", "\t"}, segment  # never before an indented continuation


def test_short_text_when_below_threshold_then_one_segment() -> None:
    assert split_segments(["Hello ", "world"], 100) == ["Hello world"]


def test_threshold_zero_when_long_then_never_cut() -> None:
    text = "para\n\n" * 1000
    assert split_segments([text], 0) == [text]


def test_blank_line_after_threshold_when_next_line_arrives_then_cut_there() -> None:
    tokens = ["aaaa", "\n", "\n", "bbbb", "\n\n", "cccc"]
    assert split_segments(tokens, 3) == ["aaaa\n\n", "bbbb\n\n", "cccc"]


def test_blank_lines_when_nothing_before_them_then_no_cut() -> None:
    # found by the property test: cutting there would leave a message that shows nothing
    assert split_segments(["   \n", "Some prose.\n\n"], 1) == ["   \nSome prose.\n\n"]
    assert split_segments(["\n\n\n", "abc\n\n", "def"], 1) == ["\n\n\nabc\n\n", "def"]


def test_cut_when_decided_then_only_once_next_line_first_char_seen() -> None:
    finder = CutFinder(3)
    assert finder.add("abcd\n\n") is None
    assert finder.add("  ") is None  # could still be indentation
    finder2 = CutFinder(3)
    assert finder2.add("abcd\n\n") is None
    assert finder2.add("x") == 6


def test_code_fence_when_blank_lines_inside_then_not_cut_inside() -> None:
    text = "intro\n\n```python\nx = 1\n\n\ny = 2\n```\n\nafter\n\nend"
    segments = split_segments(list(text), 5)
    check(segments, text)
    assert segments[0] == "intro\n\n"
    assert segments[1] == "```python\nx = 1\n\n\ny = 2\n```\n\n"


def test_tilde_fence_and_longer_closing_fence_then_handled() -> None:
    text = "a\n\n~~~~\n\nin\n~~~\n\nstill in\n~~~~~\n\nout"
    check(split_segments(list(text), 1), text)
    assert split_segments(list(text), 1)[-1] == "out"


def test_list_with_indented_continuation_when_blank_line_then_not_split() -> None:
    text = "- item one\n\n  continued\n\n  - nested\n\n- item two\n\nend"
    segments = split_segments(list(text), 1)
    check(segments, text)
    assert segments[0] == "- item one\n\n  continued\n\n  - nested\n\n"


def test_table_when_long_then_kept_whole() -> None:
    table = "| a | b |\n|---|---|\n" + "".join(f"| {i} | {i * i} |\n" for i in range(50))
    text = "before\n\n" + table + "\nafter"
    segments = split_segments(list(text), 10)
    check(segments, text)
    assert any(table in segment for segment in segments)
    assert len(segments) == 2


def test_no_blank_line_at_all_when_long_then_single_segment() -> None:
    text = "word " * 5000
    assert split_segments([text[i : i + 7] for i in range(0, len(text), 7)], 100) == [text]


def test_crlf_when_blank_lines_then_cut_after_them() -> None:
    text = "one\r\n\r\ntwo\r\n\r\nthree"
    segments = split_segments(list(text), 2)
    assert segments == ["one\r\n\r\n", "two\r\n\r\n", "three"]


def test_unicode_when_split_then_exact() -> None:
    cyrillic = "\u0420\u0443\u0441\u0441\u043a\u0438\u0439"
    text = f"Ünïcödé 😀 text\n\n日本語の段落\n\n{cyrillic} paragraph"
    check(split_segments(list(text), 3), text)


def test_one_huge_token_when_many_boundaries_then_many_segments() -> None:
    text = "".join(f"paragraph {i}\n\n" for i in range(100)) + "end"
    segments = split_segments([text], 50)
    check(segments, text)
    assert len(segments) > 10


# A reply of 1,000,000 characters that never offers a cut: inside one code fence, or one line.
HUGE_REPLIES = {
    "one code fence": "```python\n" + "x = 1 + 2  # w\n" * 66_666,
    "no newline at all": "word " * 200_000,
}


def allocated_by(action: Callable[[], object]) -> int:
    """The most memory `action` held at once beyond what was allocated before it, in bytes."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


@pytest.mark.parametrize("shape", list(HUGE_REPLIES))
def test_huge_reply_when_one_more_token_arrives_then_work_independent_of_its_length(shape: str) -> None:
    # A copy or slice of the reply (or of its current line) per token is what made 800,000
    # characters inside a fence cost 26 s of CPU: one more token must allocate per token only.
    text = HUGE_REPLIES[shape]
    finder = CutFinder(6000)
    for i in range(0, len(text), 1000):
        assert finder.add(text[i : i + 1000]) is None
    assert allocated_by(lambda: finder.add(" w") or finder.add("ord")) < 20_000
    assert finder.length == len(text) + 5


markdown_block = st.sampled_from(
    [
        "Some prose with **bold** and `code`.",
        "- a\n- b\n  - nested\n",
        "1. one\n\n   more\n2. two",
        "```python\ndef f():\n\n    return 1\n```",
        "~~~\n\n\n~~~",
        "| x | y |\n|---|---|\n| 1 | 2 |",
        "    indented code\n\n    more code",
        "> quote\n>\n> more",
        "Ünïcödé 😀",
        "",
        "\r\n",
        "   ",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    blocks=st.lists(markdown_block, max_size=30),
    separators=st.lists(st.sampled_from(["\n\n", "\n", "\n\n\n", "\r\n\r\n", " "]), min_size=30, max_size=30),
    cuts=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=50),
    threshold=st.integers(min_value=0, max_value=120),
)
def test_generated_markdown_when_streamed_in_any_pieces_then_segments_join_exactly(
    blocks: list[str], separators: list[str], cuts: list[int], threshold: int
) -> None:
    text = "".join(block + separators[i] for i, block in enumerate(blocks))
    tokens, position, i = [], 0, 0
    while position < len(text):
        size = cuts[i % len(cuts)]
        tokens.append(text[position : position + size])
        position += size
        i += 1
    segments = split_segments(tokens, threshold)
    check(segments, text)
    # the same text in one piece is cut the same way or later, never inside a fence
    check(split_segments([text], threshold), text)


@pytest.mark.parametrize("threshold", [1, 50, 6000])
def test_segments_when_threshold_then_each_but_last_reaches_it(threshold: int) -> None:
    text = "".join(f"para {i} " + "x" * (i % 40) + "\n\n" for i in range(2000))
    segments = split_segments([text[i : i + 5] for i in range(0, len(text), 5)], threshold)
    check(segments, text)
    assert all(len(s) >= threshold for s in segments[:-1])
