"""The running app tunes its collector and event loop at start-up and still chats (issue 14)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from tests.scripted_server import script_tokens
from tests.sio_client import connected


def _app_log(folder: Path) -> str:
    return "".join(path.read_text() for path in folder.glob("app-*.log"))


async def test_app_when_started_then_startup_heap_frozen_and_chat_exact(
    scripted_app: Callable[..., str], tmp_path: Path
) -> None:
    url = scripted_app("--debug")
    async with connected(url) as client:
        await client.send("#script tokens=300")
        await client.wait_task_ends(3)
        assert client.reply() == "".join(script_tokens(300))
    log = _app_log(tmp_path)
    frozen = re.search(r"froze (\d+) objects of the start-up heap", log)
    assert frozen is not None, log[-2000:]
    assert int(frozen.group(1)) > 100_000  # Chainlit, FastAPI, SQLAlchemy, openai: all left out
