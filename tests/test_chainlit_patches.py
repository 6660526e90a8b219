"""Each change to Chainlit's internals finds its target in the installed Chainlit, and refuses to start
when the target has moved (simulated by taking it away) or when Chainlit is outside 2.12.x."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import chainlit.auth.cookie
import chainlit.data.utils
import chainlit.session
import chainlit.socket
import pytest
from chainlit.emitter import ChainlitEmitter
from chainlit.server import app, sio
from chainlit.session import WebsocketSession

from smart_agent.llm.local_server import free_port
from smart_agent.web import chainlit_patches, event_loop, follow, lifetime, resync
from smart_agent.web.chainlit_patches import ChainlitPatchError
from tests.harness import ROOT, clean_env

HOOKS = chainlit_patches.Hooks(  # web/app.py's
    restored=resync.session_restored,
    reconnected=resync.resend_turn,
    handshake_over=follow.start_pending,
    session_deleted=lifetime.session_ended,
    loop_step=event_loop.drop_cancelled_timers,
)


# chainlit's package exports `user_session`, the object, under the module's name
USER_SESSION_MODULE = importlib.import_module("chainlit.user_session")


def _paths(routes: list[Any]) -> Iterator[str | None]:
    for route in routes:
        yield getattr(route, "path", None)
        inner = getattr(route, "original_router", None)  # FastAPI's included router keeps its own
        if inner is not None:
            yield from _paths(inner.routes)


def _parameters(function: Callable[..., object]) -> list[str]:
    return list(inspect.signature(function).parameters)


# The version


@pytest.mark.parametrize("version", ["2.12.0", "2.12.7", "2.12.1rc1"])
def test_version_when_2_12_x_then_accepted(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setattr(chainlit_patches, "installed_version", lambda: version)
    chainlit_patches.check_version()


@pytest.mark.parametrize("version", ["2.13.0", "2.11.9", "3.0.0", "2.13.0rc1", "not-a-version"])
def test_version_when_outside_2_12_then_refused_naming_both(
    monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    monkeypatch.setattr(chainlit_patches, "installed_version", lambda: version)
    with pytest.raises(ChainlitPatchError) as refused:
        chainlit_patches.install(HOOKS)
    assert str(refused.value) == f"smart-agent needs Chainlit 2.12.x; found {version}"


def test_installed_chainlit_when_checked_then_in_the_tested_range() -> None:
    assert chainlit_patches.installed_version().startswith("2.12.")


def test_cli_when_chainlit_outside_range_then_one_line_and_exit_1() -> None:
    # The real command, in its own process, with only the installed version made to say 2.13.0.
    program = (
        "import sys; from smart_agent.web import chainlit_patches; "
        "chainlit_patches.installed_version = lambda: '2.13.0'; "
        "from smart_agent.cli import app; sys.argv[0] = 'smart-agent'; app()"
    )
    command = [sys.executable, "-c", program, "chainlit", "--headless", "--port", str(free_port())]
    result = subprocess.run(command, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: smart-agent needs Chainlit 2.12.x; found 2.13.0"
    assert "starting" not in result.stdout  # refused before the embedded model would start


# The targets, as Chainlit 2.12 has them


def test_install_when_targets_present_then_wraps_each_once() -> None:
    chainlit_patches.install(HOOKS)
    handlers = dict(sio.handlers["/"])
    delete = WebsocketSession.delete
    chainlit_patches.install(HOOKS)  # a second install swaps the hooks, wraps nothing again
    assert sio.handlers["/"] == handlers and WebsocketSession.delete is delete
    assert handlers["connect"] is not chainlit.socket.connect
    assert handlers["connection_successful"] is not chainlit.socket.connection_successful


async def test_session_delete_when_installed_then_releases_run_once_the_session_ends() -> None:
    chainlit_patches.install(HOOKS)
    session = WebsocketSession(
        id=uuid.uuid4().hex,
        socket_id=uuid.uuid4().hex,
        emit=lambda *_: None,
        emit_call=lambda *_: None,
        user_env={},
        client_type="webapp",
    )
    released: list[str] = []

    async def release() -> None:
        released.append(session.id)

    lifetime.on_session_end(session.id, release)
    await session.delete()
    assert released == [session.id]
    assert chainlit_patches.live_sessions().count(session) == 0


def test_socket_handlers_when_inspected_then_chainlit_2_12_signatures() -> None:
    assert _parameters(chainlit.socket.connect) == ["sid", "environ", "auth"]
    assert _parameters(chainlit.socket.connection_successful) == ["sid"]


def test_session_delete_when_inspected_then_websocket_sessions_own() -> None:
    assert "delete" in WebsocketSession.__dict__
    assert inspect.iscoroutinefunction(WebsocketSession.delete)


def test_event_loop_when_chainlit_cli_imported_then_its_loop_class_is_nest_patched() -> None:
    # In a process of its own: nest_asyncio changes asyncio for the whole process.
    program = (
        "import asyncio, chainlit.cli; "
        "print(asyncio.SelectorEventLoop._nest_patched, hasattr(asyncio.SelectorEventLoop, '_run_once'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.split() == ["True", "True"], result.stderr


def test_emitter_when_inspected_then_emit_is_a_property() -> None:
    assert isinstance(inspect.getattr_static(ChainlitEmitter, "emit"), property)


def test_routes_when_inspected_then_catch_all_last_and_session_file_route_present() -> None:
    paths = list(_paths(app.router.routes))
    assert paths[-1] == chainlit_patches.CATCH_ALL_PATH
    assert chainlit_patches.SESSION_FILE_PATH in paths


def test_private_names_when_read_then_chainlit_2_12_values() -> None:
    assert chainlit_patches.auth_cookie_name() == "access_token"
    assert isinstance(chainlit.session.ws_sessions_id, dict)
    assert isinstance(USER_SESSION_MODULE.user_sessions, dict)
    assert _parameters(chainlit.data.utils.queue_until_user_message) == []
    assert hasattr(sio.eio, "cors_allowed_origins")


# Each target taken away: install() refuses to start, naming it


def _without_route(path: str) -> Callable[[pytest.MonkeyPatch], None]:
    def take(monkeypatch: pytest.MonkeyPatch) -> None:
        _drop_route(monkeypatch, app.router, path)

    return take


def _drop_route(monkeypatch: pytest.MonkeyPatch, router: Any, path: str) -> None:
    kept = [route for route in router.routes if getattr(route, "path", None) != path]
    monkeypatch.setattr(router, "routes", kept)
    for route in kept:
        if (inner := getattr(route, "original_router", None)) is not None:
            _drop_route(monkeypatch, inner, path)


def _without_run_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in asyncio.SelectorEventLoop.__mro__:  # asyncio's own, and nest_asyncio's if applied
        if "_run_once" in cls.__dict__:
            monkeypatch.delattr(cls, "_run_once")


MOVED: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], str]] = {
    "connect": (lambda mp: mp.delitem(sio.handlers["/"], "connect"), "connect(sid, environ, auth)"),
    "connection_successful": (
        lambda mp: mp.setitem(sio.handlers["/"], "connection_successful", lambda sid, extra: None),
        "connection_successful(sid)",
    ),
    "WebsocketSession.delete": (lambda mp: mp.delattr(WebsocketSession, "delete"), "WebsocketSession.delete"),
    "loop _run_once": (lambda mp: _without_run_once(mp), "_run_once"),
    "ChainlitEmitter.emit": (lambda mp: mp.setattr(ChainlitEmitter, "emit", None), "ChainlitEmitter.emit"),
    "catch-all route": (_without_route(chainlit_patches.CATCH_ALL_PATH), chainlit_patches.CATCH_ALL_PATH),
    "session file route": (
        _without_route(chainlit_patches.SESSION_FILE_PATH),
        chainlit_patches.SESSION_FILE_PATH,
    ),
    "engine.io origins": (lambda mp: mp.delattr(sio, "eio"), "engine.io"),
    "_auth_cookie_name": (
        lambda mp: mp.delattr(chainlit.auth.cookie, "_auth_cookie_name"),
        "_auth_cookie_name",
    ),
    "ws_sessions_id": (lambda mp: mp.delattr(chainlit.session, "ws_sessions_id"), "ws_sessions_id"),
    "user_sessions": (lambda mp: mp.delattr(USER_SESSION_MODULE, "user_sessions"), "user_sessions"),
    "queue_until_user_message": (
        lambda mp: mp.delattr(chainlit.data.utils, "queue_until_user_message"),
        "queue_until_user_message",
    ),
}


@pytest.mark.parametrize("target", sorted(MOVED))
def test_install_when_target_moved_then_refuses_naming_it(
    monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    take_away, named = MOVED[target]
    take_away(monkeypatch)
    with pytest.raises(
        ChainlitPatchError, match=rf"^(Chainlit's|asyncio's|Chainlit has) .*{re.escape(named)}"
    ):
        chainlit_patches.install(HOOKS)


def test_helpers_when_target_moved_then_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_route(chainlit_patches.CATCH_ALL_PATH)(monkeypatch)
    with pytest.raises(ChainlitPatchError, match="full_path"):
        chainlit_patches.routes_first(app, [])
    monkeypatch.delattr(sio, "eio")
    with pytest.raises(ChainlitPatchError, match=r"engine\.io"):
        chainlit_patches.socket_origins(sio, ["http://127.0.0.1:8000"])
