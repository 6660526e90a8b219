"""The event loop purges cancelled timers even under Chainlit's nest_asyncio patch (issue 14)."""

from __future__ import annotations

import asyncio

import nest_asyncio

from smart_agent.web.chainlit_patches import patch_loop_class
from smart_agent.web.event_loop import drop_cancelled_timers


def _cancelled_timers_left(patch: bool) -> int:
    class Loop(asyncio.SelectorEventLoop):
        """A class of its own per call: both patches change the class, not the loop."""

    loop = Loop()
    try:
        nest_asyncio.apply(loop)
        if patch:
            assert patch_loop_class(Loop, drop_cancelled_timers)

        async def wait_like_engineio() -> None:
            # a live timer due first (a session's ping) keeps the cancelled ones off the heap's top
            loop.call_later(30, lambda: None)
            # each packet: a 60 s wait_for, cancelled as soon as the packet is there
            for _ in range(1000):
                future = loop.create_future()
                loop.call_soon(future.set_result, None)
                await asyncio.wait_for(future, 60)

        loop.run_until_complete(wait_like_engineio())
        return sum(handle.cancelled() for handle in loop._scheduled)  # type: ignore[attr-defined]
    finally:
        loop.close()


def test_cancelled_timers_when_nest_asyncio_patched_and_installed_then_purged() -> None:
    assert _cancelled_timers_left(patch=True) <= 100


def test_cancelled_timers_when_nest_asyncio_patched_alone_then_they_pile_up() -> None:
    # the reason for install(): nest_asyncio 1.6 keeps them until their deadline
    assert _cancelled_timers_left(patch=False) >= 900


def test_install_when_loop_not_patched_then_leaves_it_alone() -> None:
    loop = asyncio.new_event_loop()
    try:
        before = type(loop)._run_once  # type: ignore[attr-defined]
        assert not patch_loop_class(type(loop), drop_cancelled_timers)
        assert type(loop)._run_once is before  # type: ignore[attr-defined]
    finally:
        loop.close()
