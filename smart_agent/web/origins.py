"""Where the app may be reached from: its own origins and Host values, and whether --host is loopback."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from smart_agent.config import ConfigError, Settings
from smart_agent.urls import DEFAULT_PORTS, parse_origin

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_WILDCARDS = {"0.0.0.0", "::", ""}


def is_loopback(host: str) -> bool:
    """True when `host` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, settings: Settings, *, login: bool = False) -> str | None:
    """Refuse a non-loopback --host without a login; return the warning to print when opted out."""
    if is_loopback(host) or login:
        return None
    if not settings.expose_without_login:
        how = (
            "no login is set up: add an account with `smart-agent users add NAME` (same --data-dir or "
            "--database-url) or set up OAuth (docs/history.md), "
            if settings.history
            else "there is no login with chat history off: "
        )
        raise ConfigError(
            f"--host {host} would serve the chat, its tools and MCP servers to the network, and {how}"
            "use --host 127.0.0.1 (behind a reverse proxy that authenticates, see docs/security.md), "
            "or accept the risk with --expose-without-login (SMART_AGENT_EXPOSE_WITHOUT_LOGIN=1)"
        )
    return (
        f"Warning: serving on {host} WITHOUT authentication (--expose-without-login): "
        "anyone who can reach this port can chat on your API key and call every tool"
    )


def app_origins(host: str, port: int, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The origins the app answers to: loopback names, --host unless a wildcard, then `extra`."""
    names = list(LOOPBACK_NAMES)
    bare = host.strip().strip("[]").lower()
    if bare not in _WILDCARDS:
        names.append(f"[{bare}]" if ":" in bare else bare)
    own = [parse_origin(f"http://{name}:{port}") for name in names]
    return tuple(dict.fromkeys([*own, *extra]))


def host_values(origins: tuple[str, ...]) -> frozenset[str]:
    """The Host header values a browser sends for `origins` (with and without a default port)."""
    values: set[str] = set()
    for origin in origins:
        parts = urlsplit(origin)
        values.add(parts.netloc)
        if parts.port is None:
            values.add(f"{parts.netloc}:{DEFAULT_PORTS[parts.scheme]}")
    return frozenset(values)
