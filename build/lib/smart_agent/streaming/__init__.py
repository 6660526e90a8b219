"""The batching core: a pure-asyncio batcher and the SmoothStreamWrapper proxy."""

from smart_agent.streaming.batcher import BatchPolicy, BatchStats, TokenBatcher
from smart_agent.streaming.pacer import Pacer
from smart_agent.streaming.render_control import RenderControl, RenderReport
from smart_agent.streaming.segmented import SegmentedReply
from smart_agent.streaming.wrapper import SmoothStreamWrapper

__all__ = [
    "BatchPolicy",
    "BatchStats",
    "Pacer",
    "RenderControl",
    "RenderReport",
    "SegmentedReply",
    "SmoothStreamWrapper",
    "TokenBatcher",
]
