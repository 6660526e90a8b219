"""The environment a child process (the model server, tool workers) starts with."""

from __future__ import annotations

import os
from collections.abc import Mapping

# What a child process may inherit from this environment: what a program needs to run, nothing
# it could read as a setting of its own (llama.cpp's server reads LLAMA_ARG_HOST, LLAMA_API_KEY, ...).
CHILD_ENV_VARS = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "LD_LIBRARY_PATH", "SYSTEMROOT")


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for a child process: CHILD_ENV_VARS from this one, plus `extra`."""
    env = {name: os.environ[name] for name in CHILD_ENV_VARS if name in os.environ}
    env.update(extra or {})
    return env
