"""The model's thinking through the SSE API end to end: the real app, the scripted model, httpx-sse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smart_agent.runs.events import fold
from tests.api_client import Event, events, get_run, read_all, start_run
from tests.harness import clean_env, running_app
from tests.scripted_server import MODEL_ID, Script, ScriptedServer, script_tokens, think_tokens, usage_of


@pytest.fixture(scope="module", params=["memory", "redis"])
def base(
    request: pytest.FixtureRequest, scripted: ScriptedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One app per run log (memory, Redis) asking the model for a reasoning effort."""
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_REASONING_EFFORT="low")
    if request.param == "redis":
        env["SMART_AGENT_REDIS_URL"] = request.getfixturevalue("redis_server").url
    log_dir: Path = tmp_path_factory.mktemp("api-thinking")
    with running_app("--base-url", scripted.url, "--model", MODEL_ID, env=env, log_dir=log_dir) as (url, _):
        yield url


def _client_side(received: list[Event]) -> tuple[str, str]:
    """(text, reasoning) as a client applying every event holds them."""
    text, reasoning = "", ""
    for event in received:
        text, reasoning = fold(text, reasoning, event.kind, event.data)
    return text, reasoning


def _joined(received: list[Event], kind: str) -> str:
    return "".join(event.data["text"] for event in received if event.kind == kind)


THINKING = "".join(think_tokens(40))


@pytest.mark.parametrize("style", ["content", "reasoning", "tags", "split"])
def test_thinking_when_sent_in_each_style_then_reasoning_events_apart_from_the_exact_answer(
    base: str, style: str
) -> None:
    run = start_run(base, f"#script think=40 think_style={style} tokens=20 rate=600")
    received = [event for event in read_all(base, run["id"]) if event.kind != "heartbeat"]
    answer = "".join(script_tokens(20))
    if style in ("tags", "split"):  # blanks after `</think>` are not the answer's
        answer = answer.lstrip()

    assert _joined(received, "reasoning") == THINKING
    assert _joined(received, "token") == answer
    kinds = [event.kind for event in received if event.kind in ("reasoning", "token")]
    assert kinds == sorted(kinds), "all the thinking, then the answer"
    assert "reasoning_moved" not in {event.kind for event in received}
    state = get_run(base, run["id"]).json()
    assert state["text"] == answer


def test_thinking_when_only_its_end_is_tagged_then_moved_and_the_client_ends_with_both_exact(
    base: str,
) -> None:
    run = start_run(base, "#script think=40 think_style=close tokens=20 rate=600")
    received = [event for event in read_all(base, run["id"]) if event.kind != "heartbeat"]
    answer = "".join(script_tokens(20)).lstrip()

    (moved,) = [event for event in received if event.kind == "reasoning_moved"]
    assert moved.data == {"chars": len(THINKING)}
    before = received[: received.index(moved)]
    assert _joined(before, "token") == THINKING, "streamed as text until `</think>` came"
    # The blank before `</think>` comes as thinking after the move.
    assert _client_side(received) == (answer, THINKING + "\n")
    assert get_run(base, run["id"]).json()["text"] == answer


def test_resume_when_last_event_id_is_mid_thinking_then_nothing_lost_or_repeated(base: str) -> None:
    run = start_run(base, "#script think=300 tokens=30 rate=300")
    first: list[Event] = []
    for event in events(base, run["id"]):
        if event.kind != "heartbeat":
            first.append(event)
        if sum(event.kind == "reasoning" for event in first) == 3:
            break  # a client dropped mid-thinking
    assert not any(event.kind == "token" for event in first)

    rest = [event for event in read_all(base, run["id"], after=first[-1].id) if event.kind != "heartbeat"]
    whole = [event for event in read_all(base, run["id"]) if event.kind != "heartbeat"]

    assert [*first, *rest] == whole
    assert _client_side([*first, *rest]) == ("".join(script_tokens(30)), "".join(think_tokens(300)))


def test_usage_when_the_server_counts_thinking_then_the_run_and_done_carry_its_counts(base: str) -> None:
    run = start_run(base, "#script think=12 tokens=7")
    received = read_all(base, run["id"])
    served = usage_of(Script(think=12), 7)
    expected = {
        "prompt_tokens": served["prompt_tokens"],
        "completion_tokens": served["completion_tokens"],
        "reasoning_tokens": 12,
    }

    done = received[-1]
    assert done.kind == "done" and done.data.items() >= expected.items()
    assert get_run(base, run["id"]).json()["usage"].items() >= expected.items()
    progress = [event.data for event in received if event.kind == "progress"]
    assert progress and progress[0]["reasoning_tokens"] >= 1


def test_notice_when_the_server_refuses_the_reasoning_effort_then_a_notice_event_before_the_answer(
    base: str,
) -> None:
    run = start_run(base, "#script tokens=3 effort_refused=1")
    received = [event for event in read_all(base, run["id"]) if event.kind != "heartbeat"]

    notices = [event for event in received if event.kind == "notice"]
    assert len(notices) == 1 and "reasoning effort" in notices[0].data["message"]
    assert received.index(notices[0]) < next(i for i, event in enumerate(received) if event.kind == "token")
    assert _joined(received, "token") == "".join(script_tokens(3))
