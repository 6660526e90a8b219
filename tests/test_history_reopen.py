"""Reopening a thread: a reply stored in segments is shown as one message with its footer."""

from typing import Any

from chainlit.types import ThreadDict

from smart_agent.history.reopen import join_segments


def step(step_id: str, kind: str = "assistant_message", **fields: Any) -> dict[str, Any]:
    """A stored step with the keys the join reads."""
    return {"id": step_id, "type": kind, "name": "smart-agent", "output": "", "parentId": "run", **fields}


def test_join_segments_when_reply_has_segments_around_a_tool_then_each_round_is_one_message() -> None:
    thread = ThreadDict(
        id="t",
        createdAt="",
        name="chat",
        userId="u",
        userIdentifier="local",
        tags=None,
        metadata={},
        steps=[  # type: ignore[typeddict-item]
            step("u1", "user_message", parentId=None, output="hi"),
            step("a1", output="Let "),
            step("a2", output="me see."),
            step("t1", "tool", output="14"),
            step("a3", output="It is "),
            step("n1", name="note", output="_note_"),
            step("a4", output="14."),
            step("a5", output="!"),
            step("e1", isError=True, output="Model failed"),
        ],
        elements=[{"id": "f", "name": "ReplyFooter", "forId": "a5"}],  # type: ignore[typeddict-item]
    )
    join_segments(thread)
    assert [(s["id"], s["output"]) for s in thread["steps"]] == [
        ("u1", "hi"),
        ("a1", "Let me see."),
        ("t1", "14"),
        ("a3", "It is "),
        ("n1", "_note_"),
        ("a4", "14.!"),
        ("e1", "Model failed"),
    ]
    assert thread["elements"][0]["forId"] == "a4"
