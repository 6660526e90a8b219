"""A stored thread as the page shows it on reopening: each reply's segments read as one message."""

from chainlit.step import StepDict
from chainlit.types import ThreadDict

from smart_agent.history.conversation import SKIPPED_AUTHORS


def join_segments(thread: ThreadDict) -> None:
    """Merge consecutive reply segments of one run into the first, in place; the footer follows.

    Chainlit 2.12 emits the very dict `on_chat_resume` received (socket.py `connection_successful`),
    so changing it here changes what the page shows, and nothing stored.
    """
    kept: list[StepDict] = []
    moved: dict[str, str] = {}  # merged segment id -> the id of the step it joined
    for step in thread["steps"]:
        previous = kept[-1] if kept else None
        if previous is not None and _segment(step) and _segment(previous):
            if step.get("parentId") == previous.get("parentId"):
                previous["output"] = (previous.get("output") or "") + (step.get("output") or "")
                previous["end"] = step.get("end") or previous.get("end")
                moved[step["id"]] = previous["id"]
                continue
        kept.append(step)
    thread["steps"] = kept
    for element in thread.get("elements") or []:
        target = element.get("forId")
        if target in moved:
            element["forId"] = moved[target]


def _segment(step: StepDict) -> bool:
    return (
        step["type"] == "assistant_message"
        and step.get("name") not in SKIPPED_AUTHORS
        and not step.get("isError")
        and bool(step.get("parentId"))
    )
