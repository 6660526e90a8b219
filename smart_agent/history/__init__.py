"""Chat history: Chainlit's data layer over SQLAlchemy (SQLite or PostgreSQL) with Alembic migrations."""

from smart_agent.history.accounts import Accounts
from smart_agent.history.actor import acting_user, current_actor
from smart_agent.history.data_layer import HistoryDataLayer
from smart_agent.history.engine import create_engine
from smart_agent.history.migrate import upgrade
from smart_agent.history.secret import SECRET_FILE, jwt_secret
from smart_agent.history.urls import HISTORY_FILE, database_url, history_path

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
