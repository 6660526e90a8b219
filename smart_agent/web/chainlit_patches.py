"""Every change smart-agent makes to Chainlit's internals, in one place, checked at start-up.

Chainlit's public extension points serve most of the app (`@cl.on_*` hooks, the data layer, auth
callbacks, middleware and handlers on `chainlit.server.app`, JS and CSS in `public/`); what is here
has no public way in Chainlit 2.12. `install()`, called once by web/app.py, checks the version and
every target, then applies the patches: a moved target raises `ChainlitPatchError` naming it.
Targets (paths under chainlit/), each explained where it is used:
- socket.py `connect`, `connection_successful`: wrapped (reconnect re-send, reloaded-page follow)
- session.py `WebsocketSession.delete`: wrapped (session resources released when it really ends)
- asyncio loop `_run_once` as nest_asyncio patched it (cli/__init__.py): cancelled timers purged
- emitter.py `ChainlitEmitter.emit`: a task's emits gated (`gate_task_emits`, reconnect re-send)
- server.py catch-all GET /{full_path:path}: routes put before it (`routes_first`: API, files)
- server.py `get_file` route: wrapped so uploads come back inert (`wrap_route`)
- server.py `sio.eio.cors_allowed_origins`: set, engine.io's Origin check on (`socket_origins`)
- auth/cookie.py `_auth_cookie_name`, session.py `ws_sessions_id`, user_session.py
  `user_sessions`: private names read
- data/utils.py `queue_until_user_message`: reused by history/wrappers.py, which imports it itself
  (history sits below web, so it may not import this module); checked here all the same
The features (resync, follow, lifetime, event_loop) hand `install()` their functions as `Hooks`:
this module imports none of them, and no Chainlit at module level (the launcher imports it before
it sets CHAINLIT_APP_ROOT, which Chainlit reads once, when chainlit.config is first imported).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any, cast

from packaging.version import InvalidVersion, Version

from smart_agent.errors import SmartAgentError

if TYPE_CHECKING:
    from chainlit.session import WebsocketSession
    from fastapi import FastAPI
    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp

log = logging.getLogger("smart_agent.chainlit_patches")
TESTED = (2, 12)
"""The Chainlit minor version every patch here was written and tested against."""
NEEDED = "Chainlit 2.12.x"
CATCH_ALL_PATH = "/{full_path:path}"
SESSION_FILE_PATH = "/project/file/{file_id}"
_MARK = "_smart_agent_patch"  # set on each replacement: install() never wraps twice

Emit = Callable[[str, Any], Awaitable[Any]]
"""Sends one Socket.IO event (Chainlit 2.12 event names) to the page."""
Gate = Callable[[Emit, str, Any], Coroutine[Any, Any, Any]]
"""Decides what becomes of one emit: `gate(send, event, data)`."""


class ChainlitPatchError(SmartAgentError):
    """The installed Chainlit is not the one smart-agent was built for, or a patched target moved."""


@dataclass(frozen=True)
class Hooks:
    """What the features do at the points where Chainlit 2.12 offers no hook of its own."""

    restored: Callable[[WebsocketSession], None]
    """A reconnecting page got its session back (socket.py `connect`), in the same loop step."""
    reconnected: Callable[[WebsocketSession], Awaitable[None]]
    """A restored session's handshake is over (socket.py `connection_successful`)."""
    handshake_over: Callable[[WebsocketSession], None]
    """Any session's handshake is over: `resume_thread` is on its way to the page."""
    session_deleted: Callable[[str], Awaitable[None]]
    """A session really ended (session.py `WebsocketSession.delete`), not just its socket."""
    loop_step: Callable[[Any], None]
    """Runs before each step of the event loop that nest_asyncio patched (cli/__init__.py)."""


_hooks: list[Hooks] = []  # the latest install()'s (one): a later install() swaps them


def installed_version() -> str:
    """The installed Chainlit's version."""
    return metadata.version("chainlit")


def check_version() -> None:
    """Refuse a Chainlit outside the tested range with a one-line message."""
    found = installed_version()
    try:
        release = Version(found).release[:2]
    except InvalidVersion:
        release = ()
    if release != TESTED:
        raise ChainlitPatchError(f"smart-agent needs {NEEDED}; found {found}")


def install(hooks: Hooks) -> None:
    """Check the Chainlit version and every target, then apply the patches (once per process)."""
    check_version()
    from chainlit.server import app, sio
    from chainlit.session import WebsocketSession

    handlers = sio.handlers.get("/", {})
    connect = _handler(handlers, "connect", ["sid", "environ", "auth"])
    handshake = _handler(handlers, "connection_successful", ["sid"])
    delete = _method(WebsocketSession, "delete", ["self"])
    loop_class = asyncio.SelectorEventLoop  # what Chainlit's asyncio.run(start()) runs on (cli/__init__.py)
    _run_once_of(loop_class)
    # Checked here too, so that a moved target stops the start rather than the first page.
    _catch_all_route(app)
    _get_route(app, SESSION_FILE_PATH)
    _socketio_engine(sio)
    auth_cookie_name()
    _user_sessions()
    _ws_sessions()
    _emitter_class.cache_clear()
    _emitter_class()
    _queue_target()
    _hooks[:] = [hooks]
    if not getattr(handshake, _MARK, False):
        _patch_socket_handlers(handlers, connect, handshake)
    if not getattr(delete, _MARK, False):
        _patch_session_delete(WebsocketSession, delete)
    if not patch_loop_class(loop_class, hooks.loop_step):
        log.debug("%s is not patched by nest_asyncio (or is already): left alone", loop_class.__name__)


# -- The patches: Chainlit functions replaced or wrapped ------------------------------------------


def _patch_socket_handlers(
    handlers: dict[str, Any], connect: Callable[..., Awaitable[Any]], handshake: Callable[..., Awaitable[Any]]
) -> None:
    """Wrap socket.py `connect` and `connection_successful` (Chainlit 2.12).

    Chainlit restores a reconnecting page's session (same id, new socket) but re-sends nothing that
    went to the old socket, and tells the app nothing: no `on_*` hook runs on a restore
    (https://github.com/Chainlit/chainlit/issues/2201, #118). resync closes the turn's gate in the
    very step `connect` restores the session and re-sends the turn once the handshake is over.
    `connection_successful` emits `resume_thread` after `on_chat_resume` returns, and the page then
    replaces its messages: follow may start a reloaded page's replay only after that.
    """
    from chainlit.context import init_ws_context
    from chainlit.session import WebsocketSession

    async def connect_and_hold(sid: str, environ: Any, auth: Any) -> Any:
        accepted = await connect(sid, environ, auth)
        session = WebsocketSession.get(sid)
        if accepted and session is not None and session.restored:
            _hooks[-1].restored(session)  # in the same step as the restore: nothing slips through
        return accepted

    async def connection_successful(sid: str) -> None:
        try:
            await handshake(sid)
        finally:  # a gate closed on connect must reopen, whatever Chainlit's handshake did
            session = WebsocketSession.get(sid)
            if session is not None and session.restored:
                init_ws_context(session)
                await _hooks[-1].reconnected(session)
        session = WebsocketSession.get(sid)
        if session is not None:
            _hooks[-1].handshake_over(session)

    for replacement in (connect_and_hold, connection_successful):
        setattr(replacement, _MARK, True)
    handlers["connect"] = connect_and_hold
    handlers["connection_successful"] = connection_successful


def _patch_session_delete(cls: type[WebsocketSession], original: Callable[[Any], Awaitable[None]]) -> None:
    """Wrap session.py `WebsocketSession.delete` (Chainlit 2.12): where a session really ends.

    `on_chat_end` runs on every socket drop, also one after which the page reconnects and gets the
    same session back (https://github.com/Chainlit/chainlit/issues/2228, #2198); Chainlit itself
    closes its MCP sessions in `delete`, and has no hook there (a proposal for socket lifecycle
    hooks, https://github.com/Chainlit/chainlit/pull/2479, was closed unmerged).
    """

    async def delete(self: WebsocketSession) -> None:
        try:
            await original(self)
        finally:
            await _hooks[-1].session_deleted(self.id)

    setattr(delete, _MARK, True)
    cls.delete = delete  # type: ignore[method-assign]


def patch_loop_class(cls: type, step: Callable[[Any], None]) -> bool:
    """Run `step` before each `_run_once` of loops of `cls`, if nest_asyncio patched it; whether it did.

    Chainlit 2.12 calls `nest_asyncio.apply()` when chainlit.cli is imported (cli/__init__.py); the
    `_run_once` nest_asyncio 1.6 puts on the loop class never purges cancelled timers, and thousands
    pile up under many sessions (issue 14). Chainlit may drop nest_asyncio
    (https://github.com/Chainlit/chainlit/pull/2953): asyncio's own `_run_once` then purges them.
    """
    run_once = _run_once_of(cls)
    if not getattr(cls, "_nest_patched", False) or getattr(run_once, _MARK, False):
        return False

    def _run_once(self: Any) -> None:
        step(self)
        run_once(self)

    setattr(_run_once, _MARK, True)
    cls._run_once = _run_once  # type: ignore[attr-defined]
    return True


def gate_task_emits(gate: Gate) -> None:
    """Send every emit of the current task (and of the tasks it starts) through `gate`.

    Replaces the context's `ChainlitEmitter` (emitter.py, Chainlit 2.12) by one whose `emit` goes
    through the gate: Chainlit has no way to intercept what one task sends to the page.
    """
    from chainlit.context import get_context
    from chainlit.session import WebsocketSession

    context = get_context()
    if isinstance(context.session, WebsocketSession):
        context.emitter = _emitter_class()(context.session, gate)


@functools.cache
def _emitter_class() -> Any:
    from chainlit.emitter import ChainlitEmitter

    if not isinstance(inspect.getattr_static(ChainlitEmitter, "emit", None), property):
        raise ChainlitPatchError("Chainlit's ChainlitEmitter.emit (emitter.py) is no longer a property")

    class GatedEmitter(ChainlitEmitter):
        """Chainlit's emitter for one task: its events pass the gate."""

        def __init__(self, session: WebsocketSession, gate: Gate) -> None:
            super().__init__(session)
            self._gate = gate

        @property
        def emit(self) -> Callable[[str, Any], Coroutine[Any, Any, Any]]:
            """The session's current emit, behind the gate."""
            send = cast(Emit, self.session.emit)
            gate = self._gate
            return lambda event, data: gate(send, event, data)

    return GatedEmitter


# -- Routes: Chainlit's own app, reached where its public API stops -------------------------------


def routes_first(app: FastAPI, routes: Iterable[BaseRoute]) -> None:
    """Put `routes` ahead of Chainlit's catch-all page route, where they can be reached.

    Chainlit 2.12 ends its routes with GET /{full_path:path} (server.py `serve`), which answers
    every path with the page: a route added the public way, after it, is never reached
    (https://github.com/Chainlit/chainlit/issues/1819).
    """
    _catch_all_route(app)
    app.router.routes[:0] = list(routes)


def wrap_route(app: FastAPI, path: str, wrap: Callable[[ASGIApp], ASGIApp]) -> None:
    """Serve Chainlit's GET `path` through `wrap`, by a route that runs before it (same endpoint)."""
    from starlette.routing import Route

    route = _get_route(app, path)
    app.router.routes[:0] = [Route(path, wrap(route.app), methods=["GET"])]


def _routes(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        yield route
        inner = getattr(route, "original_router", None)  # FastAPI's included router keeps its own
        if inner is not None:
            yield from _routes(inner.routes)


def _get_route(app: FastAPI, path: str) -> Any:
    from fastapi.routing import APIRoute

    for route in _routes(app.router.routes):
        if isinstance(route, APIRoute) and route.path == path and "GET" in (route.methods or ()):
            return route
    raise ChainlitPatchError(f"Chainlit has no GET {path} route (server.py, Chainlit 2.12 had one)")


def _catch_all_route(app: FastAPI) -> Any:
    return _get_route(app, CATCH_ALL_PATH)


# -- Chainlit's private state, read or set -----------------------------------------------------


def socket_origins(sio: Any, origins: Iterable[str]) -> None:
    """Make engine.io check a socket's Origin against `origins`.

    Chainlit 2.12 creates its Socket.IO server with `cors_allowed_origins=[]` (server.py `sio`),
    which turns engine.io's own Origin check off, and offers no setting for it.
    """
    _socketio_engine(sio).cors_allowed_origins = list(origins)


def _socketio_engine(sio: Any) -> Any:
    engine = getattr(sio, "eio", None)
    if engine is None or not hasattr(engine, "cors_allowed_origins"):
        raise ChainlitPatchError("Chainlit's Socket.IO server (server.py `sio`) has no engine.io origin list")
    return engine


def auth_cookie_name() -> str:
    """The name (a prefix, once the token is split) of Chainlit's auth cookie (auth/cookie.py).

    Private in Chainlit 2.12 (`_auth_cookie_name`, from CHAINLIT_AUTH_COOKIE_NAME); web/login.py
    needs it to take a token it no longer honours out of a request.
    """
    name = getattr(importlib.import_module("chainlit.auth.cookie"), "_auth_cookie_name", None)
    if not isinstance(name, str):
        raise ChainlitPatchError("Chainlit's auth/cookie.py has no _auth_cookie_name")
    return name


def live_sessions() -> list[WebsocketSession]:
    """Every live websocket session (session.py `ws_sessions_id`: Chainlit lists them nowhere public)."""
    return list(_ws_sessions().values())


def _ws_sessions() -> dict[str, WebsocketSession]:
    sessions = getattr(importlib.import_module("chainlit.session"), "ws_sessions_id", None)
    if not isinstance(sessions, dict):
        raise ChainlitPatchError("Chainlit's session.py has no ws_sessions_id registry")
    return sessions


def session_values(session_id: str) -> dict[str, Any]:
    """What `cl.user_session` holds for the session `session_id`, read from outside its context.

    user_session.py `user_sessions` (Chainlit 2.12): `cl.user_session` reads only the current
    context's session, and the socket hooks run before Chainlit sets one up.
    """
    values: dict[str, Any] = _user_sessions().get(session_id, {})
    return values


def _user_sessions() -> dict[str, dict[str, Any]]:
    sessions = getattr(importlib.import_module("chainlit.user_session"), "user_sessions", None)
    if not isinstance(sessions, dict):
        raise ChainlitPatchError("Chainlit's user_session.py has no user_sessions registry")
    return sessions


def _queue_target() -> None:
    """Chainlit's own data layers hold the writes made before a chat's first user message in the
    session's queue; history/wrappers.py `queued` gives the app's data layer the same decorator."""
    factory = getattr(importlib.import_module("chainlit.data.utils"), "queue_until_user_message", None)
    if factory is None or list(inspect.signature(factory).parameters):
        raise ChainlitPatchError("Chainlit's data/utils.py has no queue_until_user_message()")


# -- Targets -----------------------------------------------------------------------------------


def _handler(handlers: dict[str, Any], event: str, parameters: list[str]) -> Callable[..., Awaitable[Any]]:
    handler = handlers.get(event)
    if handler is None or list(inspect.signature(handler).parameters) != parameters:
        raise ChainlitPatchError(
            f"Chainlit's socket.py has no {event}({', '.join(parameters)}) handler to wrap"
        )
    return handler  # type: ignore[no-any-return]


def _method(cls: type, name: str, parameters: list[str]) -> Callable[..., Awaitable[Any]]:
    method = cls.__dict__.get(name)  # its own: an inherited one is not what Chainlit 2.12 calls
    if method is None or list(inspect.signature(method).parameters) != parameters:
        raise ChainlitPatchError(f"Chainlit's {cls.__name__}.{name}({', '.join(parameters)}) is gone")
    return method  # type: ignore[no-any-return]


def _run_once_of(cls: type) -> Callable[[Any], None]:
    run_once: Callable[[Any], None] | None = getattr(cls, "_run_once", None)
    if run_once is None:
        raise ChainlitPatchError(f"asyncio's {cls.__name__} has no _run_once to wrap")
    return run_once
