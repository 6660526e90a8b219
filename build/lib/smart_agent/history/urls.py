"""Where history lives: a SQLite file (created 0600) or a PostgreSQL URL, as an async SQLAlchemy URL."""

import os
from pathlib import Path

import sqlalchemy as sa

HISTORY_FILE = "history.db"
"""The SQLite file's name in the data folder."""

_POSTGRES_SCHEMES = ("postgresql", "postgres")
_SQLITE_SCHEMES = ("sqlite",)


def history_path(data_dir: Path) -> Path:
    """The SQLite history file in the data folder."""
    return data_dir / HISTORY_FILE


def database_url(url_or_path: str | Path) -> sa.URL:
    """`postgres[ql]://…` → `postgresql+asyncpg://…`; a path or `sqlite:///…` → `sqlite+aiosqlite:///…`."""
    text = str(url_or_path)
    if isinstance(url_or_path, Path) or "://" not in text:
        return _sqlite_url(Path(text))
    try:
        url = sa.make_url(text)
    except sa.exc.ArgumentError:
        raise ValueError(_bad_url(text)) from None
    backend = url.get_backend_name()
    if backend in _SQLITE_SCHEMES:
        if not url.database or url.database == ":memory:":
            raise ValueError(_bad_url(text))
        return _sqlite_url(Path(url.database))
    if backend in _POSTGRES_SCHEMES:
        return _postgres_url(url)
    raise ValueError(_bad_url(text))


def _bad_url(text: str) -> str:
    shown = sa.make_url(text).render_as_string(hide_password=True) if "://" in text else text
    return (
        f"invalid history database {shown!r}: use a file path, sqlite:///PATH or "
        "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
    )


def _sqlite_url(path: Path) -> sa.URL:
    return sa.URL.create("sqlite+aiosqlite", database=str(path.expanduser().absolute()))


def _postgres_url(url: sa.URL) -> sa.URL:
    # asyncpg takes `ssl`, not libpq's `sslmode`; users copy libpq URLs from their providers.
    query = dict(url.query)
    if "sslmode" in query:
        query["ssl"] = query.pop("sslmode")
    return url.set(drivername="postgresql+asyncpg", query=query)


def create_private_file(path: Path) -> None:
    """Create `path` readable and writable by its owner only (0600) unless it exists already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)  # the umask may have narrowed the mode; never widened it
    finally:
        os.close(fd)
