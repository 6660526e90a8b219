"""Chat history: Chainlit's data layer over SQLAlchemy (SQLite or PostgreSQL) with Alembic migrations.

Nothing is imported here: config.py checks database URLs with `history.urls` before the launcher
sets Chainlit's app root, and most modules here import Chainlit, which would fix it too early.
"""
