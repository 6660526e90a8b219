"""Rebuilding the model's conversation from a stored thread, on thread dicts as get_thread returns them."""

import itertools
from typing import Any

from chainlit.types import ThreadDict

from smart_agent.history.conversation import MODEL_TEXT_KEY, model_messages

_IDS = itertools.count()


def step(kind: str, output: str = "", name: str = "smart-agent", **extra: Any) -> dict[str, Any]:
    """A stored step as get_thread returns it (only the keys the rebuild reads, plus an id)."""
    return {"id": f"s{next(_IDS)}", "type": kind, "name": name, "output": output, "metadata": {}, **extra}


def thread(*steps: dict[str, Any]) -> ThreadDict:
    return ThreadDict(
        id="t",
        createdAt="",
        name="chat",
        userId="u",
        userIdentifier="local",
        tags=None,
        metadata={},
        steps=list(steps),  # type: ignore[typeddict-item]
        elements=[],
    )


def test_model_messages_when_reply_has_segments_then_one_assistant_message_without_page_decoration() -> None:
    stored = thread(
        step("run", name="on_chat_start"),
        step("user_message", "hello", name="User"),
        step("run", name="on_message"),
        step("assistant_message", "Waiting…", name="stats"),
        step("assistant_message", "_Earlier messages were left out_", name="note"),
        {**step("assistant_message", "Hel"), "id": "a1"},
        {**step("assistant_message", "lo there"), "id": "a2"},
    )
    assert model_messages(stored, "be brief") == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hello there"},
    ]


def test_model_messages_when_tools_were_called_then_calls_carry_exact_arguments_and_results() -> None:
    stored = thread(
        step("user_message", "compute", name="User"),
        {**step("assistant_message", "Let me see. "), "id": "a0"},
        {
            **step("tool", "14", name="calculator", metadata={"arguments": '{"expression":"2+3*4"}'}),
            "id": "t1",
        },
        {
            **step("tool", "2.5", name="calculator", metadata={"arguments": '{"expression": "10/4"}'}),
            "id": "t2",
        },
        {**step("assistant_message", "14 and 2.5"), "id": "a1"},
    )
    call = {"type": "function"}
    assert model_messages(stored) == [
        {"role": "user", "content": "compute"},
        {
            "role": "assistant",
            "content": "Let me see. ",
            "tool_calls": [
                {
                    **call,
                    "id": "call_t1",
                    "function": {"name": "calculator", "arguments": '{"expression":"2+3*4"}'},
                },
                {
                    **call,
                    "id": "call_t2",
                    "function": {"name": "calculator", "arguments": '{"expression": "10/4"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_t1", "content": "14"},
        {"role": "tool", "tool_call_id": "call_t2", "content": "2.5"},
        {"role": "assistant", "content": "14 and 2.5"},
    ]


def test_model_messages_when_arguments_are_refused_or_missing_then_kept_as_empty_object() -> None:
    stored = thread(
        step("user_message", "go", name="User"),
        {
            **step("tool", "Error: invalid JSON", name="calculator", metadata={"arguments": "{bad"}),
            "id": "t1",
        },
        {**step("tool", "Error", name="calculator"), "id": "t2"},
    )
    calls = model_messages(stored)[1]["tool_calls"]
    assert [c["function"]["arguments"] for c in calls] == ["{}", "{}"]


def test_model_messages_when_a_turn_failed_before_any_answer_then_its_user_message_is_left_out() -> None:
    stored = thread(
        step("user_message", "too long", name="User"),
        step("assistant_message", "The message is too long", name="Error", isError=True),
        step("user_message", "half done", name="User"),
        {**step("assistant_message", "Partial"), "id": "a1"},
        step("assistant_message", "Model failed", name="Error", isError=True),
        step("user_message", "again", name="User"),
    )
    assert model_messages(stored) == [
        {"role": "user", "content": "half done"},
        {"role": "assistant", "content": "Partial"},
        {"role": "user", "content": "again"},
    ]


def test_model_messages_when_a_turn_was_stopped_then_partial_reply_kept_and_stop_marker_left_out() -> None:
    stored = thread(
        step("user_message", "long story", name="User"),
        step("assistant_message", "Once upon", parentId="run1"),
        step("assistant_message", "Task manually stopped.", name="Assistant", parentId=None),
        step("user_message", "shorter", name="User"),
    )
    assert model_messages(stored) == [
        {"role": "user", "content": "long story"},
        {"role": "assistant", "content": "Once upon"},
        {"role": "user", "content": "shorter"},
    ]


def test_model_messages_when_team_turn_stored_then_only_the_answer_not_the_members_notes() -> None:
    team = {"team": True}
    stored = thread(
        step("user_message", "plan a trip", name="User"),
        step("run", name="on_message"),
        step("tool", "researcher: done 40 · critic: done 30", name="Team", metadata=team),
        step("tool", "notes of the researcher", name="researcher", metadata=team),
        step("tool", "42", name="calculator", metadata=team),
        step("tool", "notes of the critic", name="critic", metadata=team),
        step("assistant_message", "Here is the plan."),
    )
    assert model_messages(stored) == [
        {"role": "user", "content": "plan a trip"},
        {"role": "assistant", "content": "Here is the plan."},
    ]


def test_model_messages_when_message_had_attachments_then_same_text_and_stored_images_as_parts() -> None:
    sent = "look\n\nAttached file notes.md:\n```\n- apples\n```"
    user = step("user_message", "look", name="User", metadata={MODEL_TEXT_KEY: sent})
    stored = thread(user, step("assistant_message", "seen"))
    stored["elements"] = [
        {"id": "e1", "type": "image", "name": "red.png", "forId": user["id"]},  # type: ignore[typeddict-item]
        {"id": "e2", "type": "file", "name": "notes.md", "forId": user["id"]},  # type: ignore[typeddict-item]
        {"id": "e3", "type": "image", "name": "old.png", "forId": user["id"]},  # type: ignore[typeddict-item]
    ]
    image = "data:image/png;base64,iVBORw0KGgo="
    assert model_messages(stored, None, {"e1": image}) == [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": sent + "\n\n[Images attached earlier, no longer available: old.png]",
                },
                {"type": "image_url", "image_url": {"url": image}},
            ],
        },
        {"role": "assistant", "content": "seen"},
    ]
