"""Whether the chat UI can listen on its host and port, checked before anything starts."""

from __future__ import annotations

import errno
import socket
from contextlib import ExitStack

from smart_agent.errors import ListenError

# Chainlit 2.12 leaves the listening to uvicorn, which calls asyncio's loop.create_server(host, port):
# one socket per address the host resolves to, each with SO_REUSEADDR (and IPV6_V6ONLY for IPv6).
# A failure there comes after the embedded model has started and the URL has been announced, is
# logged as a raw OSError and ends in Chainlit's os._exit(0). Binding the same way first, and
# closing at once, finds the same conflicts while nothing has started yet.


def check_port(host: str, port: int) -> None:
    """Raise ListenError, saying what to do, unless `host:port` can be listened on right now."""
    try:
        addresses = socket.getaddrinfo(
            host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {host}: {exc.strerror}; pass another --host") from None
    with ExitStack() as sockets:
        for family, kind, proto, _, address in dict.fromkeys(addresses):
            sock = sockets.enter_context(socket.socket(family, kind, proto))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise ListenError(_refusal(host, port, exc)) from None


def _refusal(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        holder = port_holder(port)
        return f"port {port} is in use; pass --port N" + (f" (held by {holder})" if holder else "")
    if exc.errno == errno.EACCES:
        return f"port {port} needs privileges this user does not have; pass --port N above 1023"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine; pass another --host"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def port_holder(port: int) -> str | None:
    """The process listening on TCP `port` as `name, pid N`, or None when the OS does not tell."""
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):  # not allowed to look (macOS without root): say nothing
        return None
    for connection in connections:
        if connection.status != psutil.CONN_LISTEN or not connection.laddr:
            continue
        if connection.laddr.port != port or connection.pid is None:
            continue
        return describe_process(connection.pid)
    return None


def describe_process(pid: int) -> str:
    """`name, pid N`, or `pid N` when the process's name cannot be read."""
    import psutil

    try:
        return f"{psutil.Process(pid).name()}, pid {pid}"
    except psutil.Error:
        return f"pid {pid}"
