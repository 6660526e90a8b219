"""The URLs and origins settings name, checked; and how a URL is shown without its secrets."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
"""The port a URL of each scheme the app serves means when it names none."""
_HOSTNAME = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]*:[0-9a-f:.]*")  # a name, an IPv4 or an IPv6 address
_BACKEND_HOST = re.compile(r"[a-z0-9_.-]*[a-z0-9][a-z0-9_.-]*|[0-9a-f:.]*:[0-9a-f:.]*")
"""A backend's host: a name (Docker's service names may hold `_`), an IPv4 or an IPv6 address."""
_REDIS_SCHEMES = ("redis", "rediss", "unix")
_DATABASE_SCHEMES = ("postgresql", "postgres", "sqlite")


def parse_origin(text: str) -> str:
    """`text` as a browser writes an origin (`https://chat.example.com`); ValueError if it is not one."""
    value = text.strip()
    if value.endswith("/"):
        value = value[:-1]
    allowed = "must be an origin like https://chat.example.com (scheme, host and optional port only)"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError(allowed) from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in DEFAULT_PORTS or "@" in parts.netloc or parts.path or value.endswith(("?", "#")):
        raise ValueError(allowed)
    if parts.query or parts.fragment or not _HOSTNAME.fullmatch(host):
        raise ValueError(allowed)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}"


def parse_origins(text: str) -> tuple[str, ...]:
    """Comma-separated origins, each as a browser writes it, without repeats."""
    origins = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            origins.append(parse_origin(item))
        except ValueError as exc:
            raise ValueError(f"{item!r} {exc}") from None
    return tuple(dict.fromkeys(origins))


def parse_http_url(text: str, example: str) -> str:
    """`text` if it is an http(s) URL with a host (and a valid port); ValueError citing `example` if not."""
    value = text.strip()
    allowed = f"must be an http:// or https:// URL with a host, like {example}"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        raise ValueError(allowed) from None
    if parts.scheme.lower() not in DEFAULT_PORTS or not _BACKEND_HOST.fullmatch(parts.hostname or ""):
        raise ValueError(allowed)
    return value


def parse_base_url(text: str) -> str | None:
    """An OpenAI-compatible endpoint; empty is None."""
    return parse_http_url(text, "http://localhost:11434/v1") if text.strip() else None


def parse_redis_url(text: str) -> str | None:
    """A redis://, rediss:// or unix:// URL; empty is None."""
    value = text.strip()
    if not value:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        raise ValueError("must be a URL like redis://127.0.0.1:6379/0") from None
    where = parts.path if parts.scheme == "unix" else parts.hostname
    if parts.scheme not in _REDIS_SCHEMES or not where or not value.startswith(f"{parts.scheme}://"):
        raise ValueError("must be a URL like redis://127.0.0.1:6379/0 (redis://, rediss:// or unix://)")
    return value


def parse_app_url(text: str) -> str | None:
    """The running app's URL (http or https, a host, optional port and path); empty is None."""
    value = text.strip().rstrip("/")
    if not value:
        return None
    allowed = (
        "must be the app's URL like http://127.0.0.1:8000 (http or https, a host, optional port and path)"
    )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        raise ValueError(allowed) from None
    host = parts.hostname or ""
    if parts.scheme.lower() not in DEFAULT_PORTS or "@" in parts.netloc or not _HOSTNAME.fullmatch(host):
        raise ValueError(allowed)
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise ValueError(allowed)
    return value


def parse_database_url(text: str) -> str | None:
    """A PostgreSQL URL or an absolute SQLite path as a URL; empty is None."""
    value = text.strip()
    if not value:
        return None
    allowed = (
        "must be postgresql://USER:PASSWORD@HOST:PORT/DATABASE or sqlite:////ABSOLUTE/PATH "
        "(postgres:// and libpq's ?sslmode= are accepted)"
    )
    scheme, _, rest = value.partition("://")
    scheme = scheme.lower()
    # A relative SQLite path would depend on where the command is started.
    if not rest or scheme not in _DATABASE_SCHEMES or (scheme == "sqlite" and not rest.startswith("//")):
        raise ValueError(allowed)
    # Imported here: SQLAlchemy loads only when a database is named.
    import sqlalchemy as sa

    try:
        url = sa.make_url(value)
    except (sa.exc.ArgumentError, ValueError):
        raise ValueError(allowed) from None
    if url.get_backend_name() == "sqlite" and (not url.database or url.database == ":memory:"):
        raise ValueError(allowed)
    return value


def redact_url_password(text: str) -> str:
    """`text` with the password of a `scheme://user:password@host` URL replaced by ***."""
    return re.sub(r"(://[^/@:]*:)[^/]*@", r"\1***@", text)  # up to the last @: passwords may hold one


def redact_url_secrets(text: str) -> str:
    """`text` without what may hide credentials in a URL: user-info (`***@`), query and fragment."""
    text = re.sub(r"://[^/?#]*@", "://***@", text)  # up to the last @ of the authority
    return re.sub(r"([?#]).*", r"\1***", text, count=1)
