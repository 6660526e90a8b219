"""Attachments' bytes in the history database, on SQLite and PostgreSQL alike: kept for an accepted
upload, served to the thread's owner only, gone with the message."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from chainlit.element import File, Image

from smart_agent.attachments.files import Limits
from smart_agent.history.actor import acting_user
from smart_agent.history.data_layer import ATTACHMENT_URL, HistoryDataLayer
from smart_agent.web.history import AppDataLayer
from tests.attachment_files import png
from tests.history_fixtures import BACKENDS, make_user, open_store, step

LIMITS = Limits(max_bytes=100_000, max_files=5, extensions=("md", "png"))


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HistoryDataLayer]:
    async for layer in open_store(request, tmp_path):
        yield layer


async def test_upload_when_accepted_then_stored_served_to_owner_only_and_deleted_with_its_message(
    store: HistoryDataLayer, tmp_path: Path
) -> None:
    app_layer = AppDataLayer(store.engine, LIMITS)
    alice = await make_user(store, "alice")
    await make_user(store, "bob")
    thread_id = str(uuid.uuid4())
    notes, picture, program = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    notes.write_bytes(b"# notes")
    picture.write_bytes(png(4, 3))
    program.write_bytes(b"MZ\x90\x00")
    with acting_user("alice"):
        await store.update_thread(thread_id, name="chat", user_id=alice.id)
        await store.create_step(step(thread_id, "s1", type="user_message"))  # type: ignore[arg-type]
        elements = [
            File(name="notes.md", path=str(notes), thread_id=thread_id, for_id="s1", mime="text/markdown"),
            Image(name="pic.png", path=str(picture), thread_id=thread_id, for_id="s1", mime="image/png"),
            File(name="tool.exe", path=str(program), thread_id=thread_id, for_id="s1"),
        ]
        for element in elements:
            await app_layer.create_element(element)
        thread = await store.get_thread(thread_id)
        assert thread is not None
        urls = {element["name"]: element["url"] for element in thread["elements"]}
        assert urls == {
            "notes.md": ATTACHMENT_URL.format(id=elements[0].id),
            "pic.png": ATTACHMENT_URL.format(id=elements[1].id),
            "tool.exe": None,  # refused: described, never kept
        }
        assert await store.get_attachment(elements[0].id) == ("text/plain", b"# notes")
        picture_kept = await store.get_attachment(elements[1].id)
        assert picture_kept is not None and picture_kept[0] == "image/png"
        assert await store.get_attachment(elements[2].id) is None
    with acting_user("bob"):
        assert await store.get_attachment(elements[0].id) is None
    with acting_user("alice"):
        await store.delete_step("s1")
        assert await store.get_attachment(elements[0].id) is None
        assert await store.get_attachment(elements[1].id) is None
