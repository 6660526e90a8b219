"""Chat history: Chainlit's data layer over SQLAlchemy (SQLite or PostgreSQL) with Alembic migrations."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smart_agent.history.accounts import Accounts
    from smart_agent.history.actor import acting_user, current_actor
    from smart_agent.history.data_layer import HistoryDataLayer
    from smart_agent.history.engine import create_engine
    from smart_agent.history.migrate import upgrade
    from smart_agent.history.secret import SECRET_FILE, jwt_secret
    from smart_agent.history.urls import HISTORY_FILE, database_url, history_path

# Loaded on first use: config.py checks a database URL with history.urls before the launcher has
# set CHAINLIT_APP_ROOT, and most of these modules import Chainlit, which reads that root once, at
# import (importing them here made `smart-agent chainlit` with a database URL refuse to start).
_HOMES = {
    "Accounts": "accounts",
    "acting_user": "actor",
    "current_actor": "actor",
    "HistoryDataLayer": "data_layer",
    "create_engine": "engine",
    "upgrade": "migrate",
    "SECRET_FILE": "secret",
    "jwt_secret": "secret",
    "HISTORY_FILE": "urls",
    "database_url": "urls",
    "history_path": "urls",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "HISTORY_FILE",
    "SECRET_FILE",
    "Accounts",
    "HistoryDataLayer",
    "acting_user",
    "create_engine",
    "current_actor",
    "database_url",
    "history_path",
    "jwt_secret",
    "upgrade",
]
