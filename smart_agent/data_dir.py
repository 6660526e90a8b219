"""The per-user folder smart-agent writes to: SMART_AGENT_DATA_DIR, else the XDG default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from smart_agent.config import ConfigError, Settings


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_DATA_HOME/smart-agent`, else `~/.local/share/smart-agent` (XDG Base Directory spec)."""
    env = os.environ if environ is None else environ
    xdg = Path(env.get("XDG_DATA_HOME") or ".")
    # The spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    if not xdg.is_absolute():
        xdg = Path(env.get("HOME") or Path.home()) / ".local" / "share"
    return xdg / "smart-agent"


def resolve_data_dir(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    """The per-user folder smart-agent writes to: SMART_AGENT_DATA_DIR, else the XDG default."""
    return settings.data_dir or default_data_dir(environ)


def ensure_data_dir(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    """Create the data folder if needed and return it; one that cannot be created is a ConfigError."""
    path = resolve_data_dir(settings, environ)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise ConfigError(
            f"cannot use {str(path)!r} as the data folder (SMART_AGENT_DATA_DIR or --data-dir): "
            f"{exc.strerror or exc}; it must be a folder smart-agent can create and write to"
        ) from None
    return path
