"""The app's data layer: what the page shows but history must not keep."""

import uuid
from pathlib import Path
from typing import Any, cast

from chainlit.step import StepDict

from smart_agent.history.actor import acting_user
from smart_agent.web.history import AppDataLayer
from tests.history_fixtures import make_user, step


async def test_app_data_layer_when_stats_line_is_created_and_updated_then_nothing_is_stored(
    tmp_path: Path,
) -> None:
    layer = await AppDataLayer.open(tmp_path / "history.db")
    try:
        user = await make_user(layer, "local")
        thread_id = str(uuid.uuid4())
        stats: dict[str, Any] = step(thread_id, name="stats", output="Streaming · 1 tokens")
        reply: dict[str, Any] = step(thread_id, output="Hello")
        with acting_user(user.identifier):
            await layer.update_thread(thread_id, user_id=user.id)
            await layer.create_step(cast(StepDict, stats))
            await layer.update_step(cast(StepDict, {**stats, "output": "Streaming · 9 tokens"}))
            await layer.create_step(cast(StepDict, reply))
            thread = await layer.get_thread(thread_id)
    finally:
        await layer.close()
    assert thread is not None
    assert [(s["name"], s["output"]) for s in thread["steps"]] == [("Assistant", "Hello")]
