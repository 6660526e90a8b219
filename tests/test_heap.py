"""The start-up heap is left out of later full garbage collections (issue 14)."""

from __future__ import annotations

import gc

from smart_agent.web.heap import YOUNG_COLLECTION_ALLOCATIONS, collect_young_less_often, freeze_startup_heap


def test_freeze_startup_heap_when_called_then_objects_alive_leave_the_collected_generations() -> None:
    startup = [{"module": i} for i in range(1000)]
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() >= len(startup)
        tracked = {id(o) for o in gc.get_objects()}
        assert not any(id(o) in tracked for o in startup)
    finally:
        gc.unfreeze()


def test_collect_young_less_often_when_called_then_young_threshold_raised_and_others_kept() -> None:
    before = gc.get_threshold()
    try:
        collect_young_less_often()
        assert gc.get_threshold() == (YOUNG_COLLECTION_ALLOCATIONS, *before[1:])
    finally:
        gc.set_threshold(*before)
