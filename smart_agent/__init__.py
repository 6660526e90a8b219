"""smart-agent: stream LLM replies smoothly into a Chainlit chat UI."""

# The public API is `__all__`; every other name under `smart_agent` is private and may change
# without notice (docs/library.md). Names load on first use, so `import smart_agent` (the CLI's
# first step) stays cheap: the batching core pulls in asyncio and the settings module.

from __future__ import annotations

import importlib as _importlib
import logging as _logging

TYPE_CHECKING = False  # typing itself costs the CLI's start 2-3 ms; mypy reads the name as usual

__version__ = "0.1.0"

__all__ = ["BatchPolicy", "BatchStats", "SmoothStreamWrapper", "__version__", "smooth"]

if TYPE_CHECKING:
    from typing import Any

    from smart_agent.streaming.batcher import BatchPolicy, BatchStats
    from smart_agent.streaming.wrapper import SmoothStreamWrapper, smooth

_LAZY = {
    "BatchPolicy": "smart_agent.streaming.batcher",
    "BatchStats": "smart_agent.streaming.batcher",
    "SmoothStreamWrapper": "smart_agent.streaming.wrapper",
    "smooth": "smart_agent.streaming.wrapper",
}

# A library's logs go where the application sends them: without its handlers (the CLI's commands
# other than `chainlit`), Python's last-resort handler must not print them on stderr.
_logging.getLogger("smart_agent").addHandler(_logging.NullHandler())


def __getattr__(name: str) -> Any:
    """Load a public name on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module 'smart_agent' has no attribute {name!r}")
    value = getattr(_importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the lazy ones included."""
    return sorted({*globals(), *_LAZY})
