"""Start the model backend if none is configured, then run the Chainlit app in this process."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from smart_agent.agent.workers import close_shared_workers
from smart_agent.config import ConfigError, Settings, export
from smart_agent.data_dir import resolve_data_dir
from smart_agent.errors import HistoryError, ListenError, LocalModelError, SecretFileError
from smart_agent.llm.client import EMBEDDED_MODEL_ALIAS, redact_url
from smart_agent.web import chainlit_logs, chainlit_patches, security
from smart_agent.web.chainlit_patches import ChainlitPatchError
from smart_agent.web.chainlit_root import run_root
from smart_agent.web.handoff import hand_over
from smart_agent.web.origins import app_origins, check_exposure, is_loopback
from smart_agent.web.port import check_port

APP_PATH = Path(__file__).with_name("app.py")


@contextlib.contextmanager
def _backend(settings: Settings) -> Iterator[Settings]:
    if settings.api_key is not None or settings.base_url is not None:
        typer.echo(
            f"smart-agent: model {settings.model or '(server default)'} "
            f"at {redact_url(settings.base_url) if settings.base_url else 'https://api.openai.com/v1'}"
        )
        yield settings.model_copy(update={"embedded": False})
        return
    from smart_agent.llm.context import EMBEDDED_CONTEXT_TOKENS
    from smart_agent.llm.local_server import bundled_model_path, local_model_server

    path = bundled_model_path()
    n_ctx = settings.context_tokens or EMBEDDED_CONTEXT_TOKENS
    typer.echo(f"smart-agent: no OPENAI_API_KEY or OPENAI_BASE_URL set; starting {path.name} ...")
    with local_model_server(path, n_ctx=n_ctx) as server:
        typer.echo(
            f"smart-agent: model {EMBEDDED_MODEL_ALIAS} ({path.name}, llama.cpp, {server.slots} chats "
            f"at once, {n_ctx} tokens of context each) at {server.url}"
        )
        # Only this process knows the key: the server refuses every other local client. The app
        # fits each request to the context a slot of the server really has, and knows from
        # `embedded` that the URL and key are the embedded model's, not a remote backend's.
        yield settings.model_copy(
            update={
                "base_url": server.url,
                "api_key": server.api_key,
                "model": EMBEDDED_MODEL_ALIAS,
                "context_tokens": n_ctx,
                "embedded": True,
            }
        )


def launch(settings: Settings, *, host: str, port: int, headless: bool) -> None:
    """Serve the chat UI until interrupted; the embedded model server stops with it."""
    # Chainlit reads CHAINLIT_APP_ROOT once, when chainlit.config is first imported.
    if "chainlit.config" in sys.modules:
        raise RuntimeError("chainlit was imported before smart-agent could set its app root")
    try:
        chainlit_patches.check_version()  # before anything starts; app.py installs the patches
        check_port(host, port)  # before the embedded model starts and the URL is announced
        with contextlib.ExitStack() as resources:
            effective = resources.enter_context(_backend(settings))
            data_dir = resolve_data_dir(settings)
            app_root = resources.enter_context(run_root(data_dir))
            effective = effective.model_copy(update={"data_dir": data_dir})
            export(
                effective,
                {"CHAINLIT_HOST": host, "CHAINLIT_PORT": str(port), "CHAINLIT_APP_ROOT": str(app_root)},
            )
            if settings.history:
                # Imports Chainlit: only once its app root is exported. The secret must be set before
                # run_chainlit's ensure_jwt_secret() (chainlit/cli/__init__.py:88).
                from smart_agent.web.history import login_configured, prepare

                export(effective, prepare(effective, data_dir))
                if not is_loopback(host) and not login_configured(effective, data_dir):
                    # Never the local user on the network: no login means no history, as before it.
                    warning = check_exposure(host, effective)  # ConfigError unless --expose-without-login
                    typer.echo(f"{warning}; chat history is off (it needs a login)", err=True)
                    effective = effective.model_copy(update={"history": False})
                    export(effective)
            import chainlit as cl
            from chainlit.cli import run_chainlit
            from chainlit.config import config

            origins = app_origins(host, port, settings.allowed_origins)
            # Set before chainlit.server is imported: its CORS middleware reads the list then.
            config.project.allow_origins = list(origins)
            config.features.mcp.user_servers.enabled = settings.mcp_user_servers
            from chainlit.server import app, sio

            from smart_agent.api.mount import install as mount_api
            from smart_agent.api.mount import shutdown as shutdown_api
            from smart_agent.web.shutdown import stop_running_turns

            limits = security.body_limits(
                effective.attachment_max_mb * 1_000_000, effective.attachment_max_files
            )
            security.install(app, sio, origins, limits)
            chainlit_logs.install()
            api = mount_api(
                app, effective, loopback=is_loopback(host), routes_first=chainlit_patches.routes_first
            )

            async def shutdown() -> None:
                try:
                    await stop_running_turns()  # stopped, marked and stored before anything closes
                    await shutdown_api(api)
                finally:
                    resources.close()

            # Chainlit ends its process with os._exit() right after this hook, so this `with`
            # never unwinds on Ctrl+C or SIGTERM: release the runs, the backend and the app root here.
            cl.on_app_shutdown(shutdown)
            resources.callback(close_shared_workers)  # the tool worker processes end with the app
            config.run.headless = headless
            typer.echo(f"smart-agent: chat UI at http://{host}:{port}")
            if not is_loopback(host):
                typer.echo(
                    f"smart-agent: answering only at {', '.join(origins)} "
                    "(add others with SMART_AGENT_ALLOWED_ORIGINS)"
                )
            # The app, loaded by Chainlit in this process, takes these: parsed once, nothing lost.
            hand_over(effective)
            run_chainlit(str(APP_PATH))
    except ConfigError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    except (ListenError, LocalModelError, HistoryError, SecretFileError, ChainlitPatchError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    except KeyboardInterrupt:
        typer.echo("smart-agent: stopped")
