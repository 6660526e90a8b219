"""Conversions between Chainlit's dicts and table rows, so every field round-trips with its type."""

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from chainlit.element import ElementDict
from chainlit.step import StepDict
from chainlit.types import FeedbackDict, ThreadDict

from smart_agent.history.schema import elements, steps, threads

logger = logging.getLogger(__name__)

STEP_FIELDS_NOT_STORED = frozenset({"feedback"})
"""StepDict keys with no steps column: feedback lives in its own table and is joined in."""

ELEMENT_FIELDS_NOT_STORED = frozenset({"path"})
"""ElementDict keys with no elements column: a server-local temporary file path is meaningless later."""

STEP_COLUMNS = frozenset(steps.c.keys())
ELEMENT_COLUMNS = frozenset(elements.c.keys())


def now() -> str:
    """The current UTC time in Chainlit's format (ISO 8601 with a Z)."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def step_values(step: Mapping[Any, Any]) -> dict[str, Any]:
    """The steps row for a StepDict: the keys it carries that have a column, showInput as text."""
    values = {key: value for key, value in step.items() if key in STEP_COLUMNS}
    ignored = set(step) - STEP_COLUMNS - STEP_FIELDS_NOT_STORED
    if ignored:
        logger.debug("history: step fields without a column ignored: %s", sorted(ignored))
    if "showInput" in values:
        values["showInput"] = _show_input_text(values["showInput"])
    return values


def step_dict(row: Mapping[Any, Any], feedback: FeedbackDict | None) -> StepDict:
    """The StepDict for a steps row, with its feedback if any."""
    step = {key: row[key] for key in STEP_COLUMNS}
    step["showInput"] = _show_input_value(step["showInput"])
    step["metadata"] = step["metadata"] or {}
    step["feedback"] = feedback
    return cast(StepDict, step)


def element_values(element: Mapping[Any, Any]) -> dict[str, Any]:
    """The elements row for an ElementDict: the keys it carries that have a column."""
    return {key: value for key, value in element.items() if key in ELEMENT_COLUMNS}


def element_dict(row: Mapping[Any, Any]) -> ElementDict:
    """The ElementDict for an elements row."""
    return cast(ElementDict, {key: row[key] for key in ELEMENT_COLUMNS})


def feedback_dict(row: Mapping[Any, Any]) -> FeedbackDict | None:
    """The FeedbackDict in a row of steps left-joined with feedbacks (labelled feedback_*), if any."""
    if row["feedback_id"] is None:
        return None
    return FeedbackDict(
        forId=row["id"], id=row["feedback_id"], value=row["feedback_value"], comment=row["feedback_comment"]
    )


def thread_dict(row: Mapping[Any, Any], steps: list[StepDict], elements: list[ElementDict]) -> ThreadDict:
    """The ThreadDict for a threads row with the given steps and elements."""
    return ThreadDict(
        id=row["id"],
        createdAt=row["createdAt"],
        name=row["name"],
        userId=row["userId"],
        userIdentifier=row["userIdentifier"],
        tags=row["tags"],
        metadata=row["metadata"] or {},
        steps=steps,
        elements=elements,
    )


THREAD_COLUMNS: tuple[sa.ColumnElement[Any], ...] = (
    threads.c.id,
    threads.c.createdAt,
    threads.c.name,
    threads.c.userId,
    threads.c.userIdentifier,
    threads.c.tags,
    threads.c.metadata,
)


def _show_input_text(value: object) -> str | None:
    # Chainlit's schema keeps showInput as TEXT: a bool or a language name such as "json".
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _show_input_value(text: str | None) -> bool | str | None:
    if text == "true":
        return True
    if text == "false":
        return False
    return text
