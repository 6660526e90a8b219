"""Hostile tool-call arguments through the real app over Socket.IO: the turn ends with an error
result, and the next message is answered."""

from __future__ import annotations

from collections.abc import Callable

from tests.scripted_server import script_tokens
from tests.sio_client import connected

BAD_ARGUMENTS = "invalid JSON arguments for calculator:"


async def test_hostile_tool_arguments_when_sent_by_model_then_turn_ends_and_next_message_answered(
    scripted_app: Callable[..., str],
) -> None:
    async with connected(scripted_app()) as client:
        turns = 2
        for directive, error in [
            (
                "tool=calculator args_preset=deep",
                "invalid JSON arguments for calculator: arguments are nested",
            ),
            (
                "tool=calculator args_preset=junk",
                "invalid JSON arguments for calculator: arguments are not valid",
            ),
            ("tool=calculator args_preset=list", "invalid JSON arguments for calculator: arguments must be"),
            ("tool=no_such_tool", "no tool named 'no_such_tool'"),
        ]:
            shown = len(client.order)
            await client.send(f"#script {directive}")
            await client.wait_task_ends(turns := turns + 1)
            reply = client.reply(since=shown)
            # the scripted model answers with the tool's result: the error reached it
            assert reply.startswith(f"Result: Error: {error}"), reply
            shown = len(client.order)
            await client.send("#script tokens=10")
            await client.wait_task_ends(turns := turns + 1)
            assert client.reply(since=shown) == "".join(script_tokens(10))
