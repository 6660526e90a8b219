"""The `<think>` splitter over every split point, and what thinking may never become."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from smart_agent.llm.think import (
    THINK_AUTO,
    THINK_NONE,
    THINK_PREFILLED,
    Moved,
    Part,
    Reasoning,
    Text,
    ThinkSplitter,
    _partial_suffix,
)


def _run(chunks: list[str], mode: str = THINK_AUTO) -> tuple[str, str]:
    """(thinking, answer) as a presenter ends with them: moved text leaves the answer for the thinking."""
    splitter = ThinkSplitter(mode)
    parts: list[Part] = []
    for chunk in chunks:
        parts.extend(splitter.feed(chunk))
    parts.extend(splitter.end())
    thinking, answer = "", ""
    for part in parts:
        if isinstance(part, Reasoning):
            thinking += part.text
        elif isinstance(part, Text):
            answer += part.text
        elif isinstance(part, Moved):
            assert 0 < part.chars <= len(answer)
            thinking, answer = (
                thinking + answer[len(answer) - part.chars :],
                answer[: len(answer) - part.chars],
            )
    return thinking, answer


def _splits(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(cut, len(text)) for cut in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]


CASES = [
    ("<think>Let me add: 2+2.</think>\n\nIt is **4**.", THINK_AUTO, ("Let me add: 2+2.", "It is **4**.")),
    ("\n <think>a</think>b", THINK_AUTO, ("a", "b")),
    ("Okay, the user asks.\n</think>\n\nHello!", THINK_AUTO, ("Okay, the user asks.\n", "Hello!")),
    ("<think>cut before the end", THINK_AUTO, ("cut before the end", "")),
    ("No thinking at all.", THINK_AUTO, ("", "No thinking at all.")),
    (
        "Answer first.\n<think>not thinking</think>",
        THINK_AUTO,
        ("", "Answer first.\n<think>not thinking</think>"),
    ),
    ("```html\n<think>x</think>\n```", THINK_AUTO, ("", "```html\n<think>x</think>\n```")),
    ("See ```code``` then </think> stays", THINK_AUTO, ("", "See ```code``` then </think> stays")),
    ("Write `</think>` to close.", THINK_AUTO, ("", "Write `</think>` to close.")),
    ("pondering</think>answer", THINK_PREFILLED, ("pondering", "answer")),
    ("<think>pondering</think>answer", THINK_PREFILLED, ("pondering", "answer")),
    ("still thinking when cut", THINK_PREFILLED, ("still thinking when cut", "")),
    ("<think>a</think>b", THINK_NONE, ("", "<think>a</think>b")),
    ("<think></think>Only the answer", THINK_AUTO, ("", "Only the answer")),
    ("<thinking>is not the tag</thinking>", THINK_AUTO, ("", "<thinking>is not the tag</thinking>")),
]


def test_each_case_when_whole_then_split_as_expected() -> None:
    for text, mode, expected in CASES:
        assert _run([text], mode) == expected, text


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from(CASES), cuts=st.lists(st.integers(0, 80), max_size=12))
def test_any_split_point_when_fed_in_pieces_then_same_as_whole(
    case: tuple[str, str, tuple[str, str]], cuts: list[int]
) -> None:
    text, mode, expected = case
    assert _run(_splits(text, cuts), mode) == expected


def test_every_single_character_split_when_tags_cut_anywhere_then_same() -> None:
    text = "<think>step one</think>The answer"
    for cut in range(len(text) + 1):
        assert _run([text[:cut], text[cut:]]) == ("step one", "The answer"), cut
    assert _run(list(text)) == ("step one", "The answer")


_WORDS = st.text(alphabet="ab <>/thinkc`\n", max_size=40)


@settings(max_examples=400, deadline=None)
@given(
    thinking=_WORDS, answer=_WORDS, cuts=st.lists(st.integers(0, 120), max_size=10), prefilled=st.booleans()
)
def test_thinking_when_tagged_then_never_in_the_answer(
    thinking: str, answer: str, cuts: list[int], prefilled: bool
) -> None:
    thinking = thinking.replace("</think>", "")
    mark = "THOUGHT"
    body = f"{mark}{thinking}</think>{answer}"
    text = body if prefilled else f"<think>{body}"
    got_thinking, got_answer = _run(_splits(text, cuts), THINK_PREFILLED if prefilled else THINK_AUTO)
    assert mark not in got_answer
    assert got_thinking == mark + thinking
    assert got_answer == answer.lstrip()


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60), cuts=st.lists(st.integers(0, 80), max_size=10))
def test_any_text_when_split_then_nothing_lost_or_added(text: str, cuts: list[int]) -> None:
    thinking, answer = _run(_splits(text, cuts))
    whole_thinking, whole_answer = _run([text])
    assert (thinking, answer) == (whole_thinking, whole_answer)
    # Only tags and the blanks around them are dropped.
    assert len(thinking) + len(answer) <= len(text)


def _partial_suffix_by_every_length(data: str, *marks: str) -> int:
    """The definition, tried at every length: the longest end of `data` that is a mark's proper start."""
    return max(
        (
            size
            for mark in marks
            for size in range(1, min(len(mark), len(data) + 1))
            if data.endswith(mark[:size])
        ),
        default=0,
    )


@settings(max_examples=500)
@given(st.text(alphabet="<>/thinkg` a", max_size=20))
def test_partial_suffix_when_any_text_then_same_as_trying_every_length(data: str) -> None:
    marks = ("</think>", "```", "<think>")
    assert _partial_suffix(data, *marks) == _partial_suffix_by_every_length(data, *marks)
