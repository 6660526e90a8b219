"""The library's public API (docs/library.md): its names, its cheap import, its type hints."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

import smart_agent
from smart_agent.streaming import batcher, wrapper
from tests.fakes import RecordingMessage
from tests.harness import ROOT

PUBLIC = {"BatchPolicy", "BatchStats", "SmoothStreamWrapper", "__version__", "smooth"}


def test_public_names_when_read_then_they_are_the_batching_core_s() -> None:
    assert set(smart_agent.__all__) == PUBLIC
    assert smart_agent.SmoothStreamWrapper is wrapper.SmoothStreamWrapper
    assert smart_agent.smooth is wrapper.smooth
    assert smart_agent.BatchPolicy is batcher.BatchPolicy
    assert smart_agent.BatchStats is batcher.BatchStats
    assert PUBLIC <= set(dir(smart_agent))


def test_public_objects_when_documented_then_one_line_docstrings() -> None:
    for name in PUBLIC - {"__version__"}:
        doc = getattr(smart_agent, name).__doc__
        assert doc and doc.strip(), name
        assert doc.strip().splitlines()[0].endswith("."), name


def test_unknown_name_when_read_then_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Pacer'"):
        _ = smart_agent.Pacer  # private: reachable from smart_agent.streaming only


def test_import_when_only_the_package_then_the_batching_core_is_not_loaded() -> None:
    # The CLI imports the package first: the library's names must not cost it asyncio and settings.
    probe = (
        "import sys, smart_agent; "
        "print(sorted(m for m in ('asyncio', 'smart_agent.streaming', 'smart_agent.config', 'typing')"
        " if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_from_import_when_fresh_process_then_the_wrapper_loads() -> None:
    probe = (
        "import sys; from smart_agent import SmoothStreamWrapper, smooth; print(SmoothStreamWrapper.__name__,"
        " sorted(m for m in ('smart_agent.config', 'pydantic', 'chainlit') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    # Another app's import of the wrapper costs it no settings, no pydantic and no Chainlit of ours.
    assert loaded.stdout.strip() == "SmoothStreamWrapper []"


async def test_smooth_when_tokens_streamed_then_the_whole_text_in_few_events() -> None:
    message = RecordingMessage()
    reply = smart_agent.smooth(message, smart_agent.BatchPolicy(max_events_per_second=10))
    assert isinstance(reply, smart_agent.SmoothStreamWrapper)
    for i in range(200):
        await reply.stream_token(f" t{i}")
    assert reply.content == "".join(f" t{i}" for i in range(200))  # buffered text included
    await reply.send()
    assert message.browser_text() == reply.content
    assert message.stream_events() <= 2  # the first token at once, the rest flushed by send()


def test_smooth_when_no_policy_then_the_default_policy() -> None:
    reply = smart_agent.smooth(RecordingMessage())
    assert reply._batcher.policy == smart_agent.BatchPolicy()
    assert reply.stats == smart_agent.BatchStats()


def test_type_hints_when_installed_then_py_typed_ships() -> None:
    assert (ROOT / "smart_agent" / "py.typed").is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["smart_agent"]
