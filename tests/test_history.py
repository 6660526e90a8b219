"""The history data layer's contract, on a real SQLite file and a real PostgreSQL server alike."""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from chainlit.context import init_ws_context
from chainlit.element import Text
from chainlit.session import WebsocketSession
from chainlit.types import Feedback, Pagination, ThreadFilter
from chainlit.user import PersistedUser

from smart_agent.errors import HistoryAccessError, HistoryError
from smart_agent.history.actor import acting_user
from smart_agent.history.data_layer import HistoryDataLayer
from tests.history_fixtures import BACKENDS, make_user, open_store, step

CRAFTED_ID = "x' OR '1'='1"


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HistoryDataLayer]:
    async for layer in open_store(request, tmp_path):
        yield layer


@pytest.fixture
async def alice(store: HistoryDataLayer) -> PersistedUser:
    return await make_user(store, "alice")


@pytest.fixture
async def bob(store: HistoryDataLayer) -> PersistedUser:
    return await make_user(store, "bob")


async def new_thread(store: HistoryDataLayer, user: PersistedUser, name: str = "chat") -> str:
    thread_id = str(uuid.uuid4())
    with acting_user(user.identifier):
        await store.update_thread(thread_id, name=name, user_id=user.id)
    return thread_id


def websocket_session(user: PersistedUser, thread_id: str) -> WebsocketSession:
    return WebsocketSession(
        id=str(uuid.uuid4()),
        socket_id=str(uuid.uuid4()),
        emit=lambda *_: None,
        emit_call=lambda *_: None,
        user_env={},
        client_type="webapp",
        thread_id=thread_id,
        user=user,
    )


async def test_settle_when_a_write_starts_another_as_it_ends_then_waits_for_both(
    store: HistoryDataLayer, alice: PersistedUser
) -> None:
    """Chainlit's first message: its thread write, then an unawaited task that writes the queued steps."""
    thread_id, queued = str(uuid.uuid4()), str(uuid.uuid4())
    tasks: list[asyncio.Task[None]] = []

    async def flush_queue() -> None:
        with acting_user(alice.identifier):
            await store.create_step(step(thread_id, queued))

    async def first_interaction() -> None:
        with acting_user(alice.identifier):
            await store.update_thread(thread_id, name="chat", user_id=alice.id)
        tasks.append(asyncio.create_task(flush_queue()))

    tasks.append(asyncio.create_task(first_interaction()))
    await store.settle()
    assert all(task.done() for task in tasks) and len(tasks) == 2
    with acting_user(alice.identifier):
        thread = await store.get_thread(thread_id)
    assert thread is not None and [s["id"] for s in thread["steps"]] == [queued]


# Users and threads


async def test_create_user_when_called_again_then_metadata_updated_and_id_kept(
    store: HistoryDataLayer,
) -> None:
    first = await make_user(store, "carol")
    again = await store.create_user(
        PersistedUser(id="ignored", identifier="carol", createdAt="", metadata={"n": 2})
    )
    assert again is not None and again.id == first.id and again.metadata == {"n": 2}
    assert await store.get_user("nobody") is None


async def test_thread_when_created_renamed_and_tagged_then_read_back_with_dict_metadata(
    store: HistoryDataLayer, alice: PersistedUser
) -> None:
    thread_id = await new_thread(store, alice, "first name")
    with acting_user("alice"):
        await store.update_thread(thread_id, metadata={"chat_profile": "fast", "drop": 1}, tags=["a", "b"])
        await store.update_thread(thread_id, metadata={"drop": None, "env": {"k": "v"}})
        await store.update_thread(thread_id, name="renamed")
        thread = await store.get_thread(thread_id)
    assert thread is not None
    assert thread["name"] == "renamed"
    assert thread["userId"] == alice.id and thread["userIdentifier"] == "alice"
    assert thread["tags"] == ["a", "b"]
    assert thread["metadata"] == {"chat_profile": "fast", "env": {"k": "v"}}
    assert await store.get_thread_author(thread_id) == "alice"


async def test_step_with_every_field_when_stored_then_round_trips_typed(
    store: HistoryDataLayer, alice: PersistedUser
) -> None:
    thread_id = await new_thread(store, alice)
    full = step(
        thread_id,
        "step-1",
        name="calculator",
        type="tool",
        parentId="parent-1",
        command="search",
        modes={"model": "fast"},
        streaming=True,
        waitForAnswer=False,
        isError=True,
        metadata={"nested": {"list": [1, 2.5, None, "x"]}, "favorite": False},
        tags=["tool", "math"],
        input='{"expr": "1+1"}',
        output="2",
        createdAt="2026-11-24T10:00:00.000001Z",
        start="2026-11-24T10:00:00.000001Z",
        end="2026-11-24T10:00:01.000001Z",
        generation={"provider": "openai", "settings": {"temperature": 0.2}},
        showInput="json",
        defaultOpen=True,
        autoCollapse=True,
        language="python",
        icon="calculator",
    )
    with acting_user("alice"):
        await store.create_step(full)  # type: ignore[arg-type]
        thread = await store.get_thread(thread_id)
    assert thread is not None
    stored = dict(thread["steps"][0])
    assert stored.pop("feedback") is None
    assert stored == full


async def test_show_input_when_bool_then_comes_back_bool(
    store: HistoryDataLayer, alice: PersistedUser
) -> None:
    thread_id = await new_thread(store, alice)
    with acting_user("alice"):
        await store.create_step(step(thread_id, "yes", showInput=True))  # type: ignore[arg-type]
        await store.create_step(step(thread_id, "no", showInput=False))  # type: ignore[arg-type]
        thread = await store.get_thread(thread_id)
    assert thread is not None
    assert {s["id"]: s["showInput"] for s in thread["steps"]} == {"yes": True, "no": False}


async def test_steps_when_read_then_in_creation_order_and_update_after_create_wins(
    store: HistoryDataLayer, alice: PersistedUser
) -> None:
    thread_id = await new_thread(store, alice)
    with acting_user("alice"):
        for index in (3, 1, 2):
            await store.create_step(  # type: ignore[arg-type]
                step(
                    thread_id,
                    f"s{index}",
                    output=f"draft {index}",
                    createdAt=f"2026-11-24T10:00:0{index}.000000Z",
                )
            )
        await store.update_step(
            step(thread_id, "s2", output="final 2", createdAt="2026-11-24T10:00:02.000000Z")
        )  # type: ignore[arg-type]
        # Chainlit fires create and update as concurrent tasks: a creation landing late keeps the update.
        await store.create_step(
            step(thread_id, "s2", output="draft 2", createdAt="2026-11-24T10:00:02.000000Z")
        )  # type: ignore[arg-type]
        thread = await store.get_thread(thread_id)
    assert thread is not None
    assert [(s["id"], s["output"]) for s in thread["steps"]] == [
        ("s1", "draft 1"),
        ("s2", "final 2"),
        ("s3", "draft 3"),
    ]


async def test_update_step_when_step_not_created_yet_then_creates_it(
    store: HistoryDataLayer, alice: PersistedUser
) -> None:
    thread_id = await new_thread(store, alice)
    with acting_user("alice"):
        await store.update_step(step(thread_id, "late", output="done"))  # type: ignore[arg-type]
        thread = await store.get_thread(thread_id)
    assert thread is not None and [s["output"] for s in thread["steps"]] == ["done"]


async def test_delete_step_when_rated_with_element_then_all_removed(
    store: HistoryDataLayer, alice: PersistedUser
) -> None:
    thread_id = await new_thread(store, alice)
    with acting_user("alice"):
        await store.create_step(step(thread_id, "s1"))  # type: ignore[arg-type]
        await store.create_step(step(thread_id, "s2"))  # type: ignore[arg-type]
        await store.upsert_feedback(Feedback(forId="s1", value=1))
        await store.create_element(Text(thread_id=thread_id, name="note", content="x", for_id="s1"))
        await store.delete_step("s1")
        thread = await store.get_thread(thread_id)
    assert thread is not None
    assert [s["id"] for s in thread["steps"]] == ["s2"] and thread["elements"] == []
    listed = await _list(store, alice, feedback=1)
    assert listed == []


async def test_element_when_created_then_listed_with_thread_and_readable(
    store: HistoryDataLayer, alice: PersistedUser
) -> None:
    thread_id = await new_thread(store, alice)
    element = Text(
        thread_id=thread_id, name="notes", content="body", for_id="s1", display="side", language="markdown"
    )
    element.url = "https://example.invalid/notes"
    with acting_user("alice"):
        await store.create_step(step(thread_id, "s1"))  # type: ignore[arg-type]
        await store.create_element(element)
        thread = await store.get_thread(thread_id)
        fetched = await store.get_element(thread_id, element.id)
        in_other_thread = await store.get_element(str(uuid.uuid4()), element.id)
    assert thread is not None and thread["elements"] == [fetched]
    assert fetched is not None
    assert fetched["name"] == "notes" and fetched["type"] == "text" and fetched["forId"] == "s1"
    assert fetched["display"] == "side" and fetched["language"] == "markdown"
    assert fetched["url"] == "https://example.invalid/notes"
    assert in_other_thread is None
    with acting_user("alice"):
        await store.delete_element(element.id, thread_id)
        assert await store.get_element(thread_id, element.id) is None


async def test_delete_thread_then_steps_elements_and_feedback_gone(
    store: HistoryDataLayer, alice: PersistedUser
) -> None:
    thread_id = await new_thread(store, alice)
    with acting_user("alice"):
        await store.create_step(step(thread_id, "s1"))  # type: ignore[arg-type]
        await store.upsert_feedback(Feedback(forId="s1", value=0))
        await store.create_element(Text(thread_id=thread_id, name="n", content="x", for_id="s1"))
        await store.delete_thread(thread_id)
        assert await store.get_thread(thread_id) is None
    async with store.engine.connect() as connection:
        for table in ("steps", "elements", "feedbacks", "threads"):
            assert await connection.scalar(sa.text(f"SELECT count(*) FROM {table}")) == 0
    assert await store.get_thread_author(thread_id) == ""


# Feedback


async def test_feedback_when_upserted_twice_then_one_rating_updated(
    store: HistoryDataLayer, alice: PersistedUser
) -> None:
    thread_id = await new_thread(store, alice)
    with acting_user("alice"):
        await store.create_step(step(thread_id, "s1"))  # type: ignore[arg-type]
        first = await store.upsert_feedback(Feedback(forId="s1", value=1, threadId="forged"))
        again = await store.upsert_feedback(Feedback(forId="s1", value=0, comment="wrong"))
        same = await store.upsert_feedback(Feedback(forId="s1", value=0, id=first, comment="very wrong"))
        thread = await store.get_thread(thread_id)
    assert first == again == same
    assert thread is not None
    assert thread["steps"][0]["feedback"] == {"forId": "s1", "id": first, "value": 0, "comment": "very wrong"}
    async with store.engine.connect() as connection:
        stored = await connection.scalar(sa.text('SELECT "threadId" FROM feedbacks'))
    assert stored == thread_id  # from the step, not from the browser's threadId
    with acting_user("alice"):
        assert await store.delete_feedback(first) is True
        assert await store.delete_feedback(first) is False
        thread = await store.get_thread(thread_id)
    assert thread is not None and thread["steps"][0]["feedback"] is None


async def test_feedback_when_no_acting_user_then_refused(
    store: HistoryDataLayer, alice: PersistedUser
) -> None:
    thread_id = await new_thread(store, alice)
    with acting_user("alice"):
        await store.create_step(step(thread_id, "s1"))  # type: ignore[arg-type]
    with pytest.raises(HistoryAccessError):
        await store.upsert_feedback(Feedback(forId="s1", value=1))


# The sidebar


async def _list(
    store: HistoryDataLayer,
    user: PersistedUser,
    first: int = 20,
    cursor: str | None = None,
    **filters: object,
) -> list[str]:
    with acting_user(user.identifier):
        page = await store.list_threads(
            Pagination(first=first, cursor=cursor),
            ThreadFilter(userId=user.id, **filters),  # type: ignore[arg-type]
        )
    return [thread["id"] for thread in page.data]


async def test_list_threads_when_paged_then_newest_first_without_gaps_or_steps(
    store: HistoryDataLayer, alice: PersistedUser, bob: PersistedUser
) -> None:
    ids = [await new_thread(store, alice, f"chat {n}") for n in range(7)]
    await new_thread(store, bob, "bob's")
    with acting_user("alice"):
        # New messages in old threads do not move them: Chainlit's sidebar orders by createdAt.
        for thread_id in ids[:3]:
            await store.create_step(step(thread_id, createdAt="2099-01-01T00:00:00.000000Z"))  # type: ignore[arg-type]
        pages, cursor = [], None
        while True:
            page = await store.list_threads(Pagination(first=3, cursor=cursor), ThreadFilter(userId=alice.id))
            pages.append([t["id"] for t in page.data])
            assert all(t["steps"] == [] for t in page.data)
            if not page.pageInfo.hasNextPage:
                break
            cursor = page.pageInfo.endCursor
    newest_first = ids[::-1]
    assert pages == [newest_first[0:3], newest_first[3:6], newest_first[6:7]]


async def test_list_threads_when_searching_then_matches_names_and_messages_case_insensitively(
    store: HistoryDataLayer, alice: PersistedUser
) -> None:
    by_name = await new_thread(store, alice, "Holiday PLANS")
    by_message = await new_thread(store, alice, "misc")
    literal = await new_thread(store, alice, "stats")
    other = await new_thread(store, alice, "other")
    with acting_user("alice"):
        await store.create_step(step(by_message, output="Where should our holiday go?"))  # type: ignore[arg-type]
        await store.create_step(step(literal, output="growth was 100% last year"))  # type: ignore[arg-type]
        await store.create_step(step(other, output="100 percent unrelated"))  # type: ignore[arg-type]
    assert set(await _list(store, alice, search="holiday")) == {by_name, by_message}
    assert await _list(store, alice, search="100%") == [literal]  # % is a character, not a wildcard
    assert await _list(store, alice, search="nothing like this") == []


async def test_list_threads_when_filtering_feedback_then_only_rated_threads(
    store: HistoryDataLayer, alice: PersistedUser
) -> None:
    liked, disliked, unrated = [await new_thread(store, alice, n) for n in ("l", "d", "u")]
    with acting_user("alice"):
        for thread_id, value in ((liked, 1), (disliked, 0), (unrated, None)):
            step_id = str(uuid.uuid4())
            await store.create_step(step(thread_id, step_id))  # type: ignore[arg-type]
            if value is not None:
                await store.upsert_feedback(Feedback(forId=step_id, value=value))  # type: ignore[arg-type]
    assert await _list(store, alice, feedback=1) == [liked]
    assert await _list(store, alice, feedback=0) == [disliked]


async def test_list_threads_when_cursor_unknown_or_crafted_then_empty_page(
    store: HistoryDataLayer, alice: PersistedUser
) -> None:
    await new_thread(store, alice)
    assert await _list(store, alice, cursor=CRAFTED_ID) == []
    assert await _list(store, alice, cursor=str(uuid.uuid4())) == []


async def test_favorite_steps_when_marked_then_listed_for_their_user(
    store: HistoryDataLayer, alice: PersistedUser
) -> None:
    thread_id = await new_thread(store, alice)
    with acting_user("alice"):
        await store.create_step(step(thread_id, "plain", metadata={"favorite": False}))  # type: ignore[arg-type]
        liked = step(thread_id, "liked")
        await store.create_step(liked)  # type: ignore[arg-type]
        await store.set_step_favorite(liked, True)  # type: ignore[arg-type]
        favorites = await store.get_favorite_steps(alice.id)
    assert [s["id"] for s in favorites] == ["liked"]
    assert favorites[0]["metadata"] == {"favorite": True}


# Ownership: another user can neither list, read, resume, rename, delete nor rate your thread


@pytest.fixture
async def alices_thread(store: HistoryDataLayer, alice: PersistedUser) -> str:
    thread_id = await new_thread(store, alice, "alice's secrets")
    with acting_user("alice"):
        await store.create_step(step(thread_id, "a-step", output="my secret"))  # type: ignore[arg-type]
        await store.upsert_feedback(Feedback(forId="a-step", value=1, id="a-feedback"))
        element = Text(thread_id=thread_id, name="n", content="x", for_id="a-step")
        element.id = "a-element"
        await store.create_element(element)
    return thread_id


async def _alices_thread_unchanged(store: HistoryDataLayer, thread_id: str) -> None:
    with acting_user("alice"):
        thread = await store.get_thread(thread_id)
    assert thread is not None and thread["name"] == "alice's secrets"
    assert [(s["id"], s["output"]) for s in thread["steps"]] == [("a-step", "my secret")]
    assert thread["steps"][0]["feedback"] == {
        "forId": "a-step",
        "id": "a-feedback",
        "value": 1,
        "comment": None,
    }
    assert [e["id"] for e in thread["elements"] or []] == ["a-element"]


async def test_other_user_when_listing_with_alices_id_then_refused(
    store: HistoryDataLayer, alice: PersistedUser, bob: PersistedUser, alices_thread: str
) -> None:
    with acting_user("bob"), pytest.raises(HistoryAccessError):
        await store.list_threads(Pagination(first=20), ThreadFilter(userId=alice.id))
    assert await _list(store, bob) == []


async def test_other_user_when_reading_then_sees_nothing(
    store: HistoryDataLayer, bob: PersistedUser, alices_thread: str
) -> None:
    with acting_user("bob"):
        assert await store.get_thread(alices_thread) is None
        assert await store.get_element(alices_thread, "a-element") is None
    assert await store.get_thread_author(alices_thread) == "alice"


async def test_other_user_when_resuming_in_a_chainlit_session_then_sees_nothing(
    store: HistoryDataLayer, bob: PersistedUser, alices_thread: str
) -> None:
    # socket.py resume_thread calls get_thread inside Bob's websocket context.
    init_ws_context(websocket_session(bob, alices_thread))
    assert await store.get_thread(alices_thread) is None


async def test_other_user_when_renaming_or_claiming_then_refused(
    store: HistoryDataLayer, alice: PersistedUser, bob: PersistedUser, alices_thread: str
) -> None:
    with acting_user("bob"):
        with pytest.raises(HistoryAccessError):
            await store.update_thread(alices_thread, name="mine now")
        with pytest.raises(HistoryAccessError):
            await store.update_thread(alices_thread, user_id=bob.id)
        with pytest.raises(HistoryAccessError):
            await store.update_thread(str(uuid.uuid4()), user_id=alice.id)
    await _alices_thread_unchanged(store, alices_thread)


async def test_other_user_when_deleting_then_refused(
    store: HistoryDataLayer, bob: PersistedUser, alices_thread: str
) -> None:
    with acting_user("bob"):
        with pytest.raises(HistoryAccessError):
            await store.delete_thread(alices_thread)
        with pytest.raises(HistoryAccessError):
            await store.delete_step("a-step")
        with pytest.raises(HistoryAccessError):
            await store.delete_element("a-element")
        with pytest.raises(HistoryAccessError):
            await store.delete_feedback("a-feedback")
    await _alices_thread_unchanged(store, alices_thread)


async def test_other_user_when_rating_then_refused(
    store: HistoryDataLayer, bob: PersistedUser, alices_thread: str
) -> None:
    with acting_user("bob"):
        with pytest.raises(HistoryAccessError):
            await store.upsert_feedback(Feedback(forId="a-step", value=0, threadId=alices_thread))
        bobs_thread = await new_thread(store, bob)
        await store.create_step(step(bobs_thread, "b-step"))  # type: ignore[arg-type]
        # Reusing Alice's feedback id on Bob's own message must not rewrite hers either.
        with pytest.raises(HistoryAccessError):
            await store.upsert_feedback(Feedback(forId="b-step", value=0, id="a-feedback"))
    await _alices_thread_unchanged(store, alices_thread)


async def test_other_user_when_writing_steps_or_elements_into_alices_thread_then_refused(
    store: HistoryDataLayer, bob: PersistedUser, alices_thread: str
) -> None:
    with acting_user("bob"):
        with pytest.raises(HistoryAccessError):
            await store.create_step(step(alices_thread, "b-step"))  # type: ignore[arg-type]
        bobs_thread = await new_thread(store, bob)
        # Alice's step id sent with Bob's own thread: the upsert must not move or rewrite her step.
        with pytest.raises(HistoryAccessError):
            await store.update_step(step(bobs_thread, "a-step", output="overwritten"))  # type: ignore[arg-type]
        with pytest.raises(HistoryAccessError):
            await store.create_step(step(bobs_thread, "a-step", output="overwritten"))  # type: ignore[arg-type]
        element = Text(thread_id=bobs_thread, name="n", content="x")
        element.id = "a-element"
        with pytest.raises(HistoryAccessError):
            await store.create_element(element)
    await _alices_thread_unchanged(store, alices_thread)


async def test_other_user_when_reading_favorites_then_refused(
    store: HistoryDataLayer, alice: PersistedUser, bob: PersistedUser
) -> None:
    with acting_user("bob"), pytest.raises(HistoryAccessError):
        await store.get_favorite_steps(alice.id)


async def test_crafted_thread_id_when_used_then_matches_nothing(
    store: HistoryDataLayer, alice: PersistedUser, bob: PersistedUser, alices_thread: str
) -> None:
    with acting_user("bob"):
        assert await store.get_thread(CRAFTED_ID) is None
        assert await store.get_element(CRAFTED_ID, "a-element") is None
        await store.delete_thread(CRAFTED_ID)
        await store.delete_step(CRAFTED_ID)
        await store.delete_element(CRAFTED_ID)
        assert await store.delete_feedback(CRAFTED_ID) is False
    assert await store.get_thread_author(CRAFTED_ID) == ""
    await _alices_thread_unchanged(store, alices_thread)


# Chainlit's queue and errors


async def test_step_when_sent_before_first_user_message_then_queued_until_it(
    store: HistoryDataLayer, alice: PersistedUser
) -> None:
    thread_id = str(uuid.uuid4())
    session = websocket_session(alice, thread_id)
    init_ws_context(session)
    await store.create_step(step(thread_id, "welcome", output="hello"))  # type: ignore[arg-type]
    assert await store.get_thread(thread_id) is None
    assert [name for name, queue in session.thread_queues.items() if queue] == ["create_step"]

    session.has_first_interaction = True
    await store.update_thread(thread_id, name="first message", user_id=alice.id)
    await session.flush_method_queue()
    thread = await store.get_thread(thread_id)
    assert thread is not None and thread["userIdentifier"] == "alice"
    assert [s["output"] for s in thread["steps"]] == ["hello"]


async def test_every_method_chainlit_queues_when_called_before_first_message_then_queued(
    store: HistoryDataLayer, alice: PersistedUser
) -> None:
    thread_id = await new_thread(store, alice)
    session = websocket_session(alice, thread_id)
    init_ws_context(session)
    await store.create_step(step(thread_id, "s"))  # type: ignore[arg-type]
    await store.update_step(step(thread_id, "s", output="x"))  # type: ignore[arg-type]
    await store.delete_step("s")
    await store.create_element(Text(thread_id=thread_id, name="n", content="x"))
    await store.delete_element("e")
    assert sorted(name for name, queue in session.thread_queues.items() if queue) == [
        "create_element",
        "create_step",
        "delete_element",
        "delete_step",
        "update_step",
    ]
    thread = await store.get_thread(thread_id)
    assert thread is not None and thread["steps"] == [] and thread["elements"] == []


async def test_step_when_database_rejects_it_then_error_logged_and_raised(
    store: HistoryDataLayer, alice: PersistedUser, caplog: pytest.LogCaptureFixture
) -> None:
    thread_id = await new_thread(store, alice)
    broken = step(thread_id)
    del broken["name"]  # NOT NULL column
    with acting_user("alice"), caplog.at_level(logging.ERROR), pytest.raises(HistoryError):
        await store.create_step(broken)  # type: ignore[arg-type]
    assert any("create_step failed" in record.getMessage() for record in caplog.records)
