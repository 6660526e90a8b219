"""Start the model backend if none is configured, then run the Chainlit app in this process."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import typer

from smart_agent.agent.workers import close_shared_workers
from smart_agent.config import Settings, export
from smart_agent.errors import LocalModelError
from smart_agent.llm.client import EMBEDDED_MODEL_ALIAS, redact_url

APP_PATH = Path(__file__).with_name("app.py")


@contextlib.contextmanager
def _backend(settings: Settings) -> Iterator[Settings]:
    if not settings.uses_embedded_model:
        typer.echo(
            f"smart-agent: model {settings.model or '(server default)'} "
            f"at {redact_url(settings.base_url) if settings.base_url else 'https://api.openai.com/v1'}"
        )
        yield settings
        return
    from smart_agent.llm.local_server import bundled_model_path, local_model_server

    path = bundled_model_path()
    typer.echo(f"smart-agent: no OPENAI_API_KEY or OPENAI_BASE_URL set; starting {path.name} ...")
    with local_model_server(path) as url:
        typer.echo(f"smart-agent: model {EMBEDDED_MODEL_ALIAS} ({path.name}, llama.cpp) at {url}")
        yield dataclasses.replace(settings, base_url=url, model=EMBEDDED_MODEL_ALIAS)


def launch(settings: Settings, *, host: str, port: int, headless: bool) -> None:
    """Serve the chat UI until interrupted; the embedded model server stops with it."""
    try:
        with contextlib.ExitStack() as resources:
            effective = resources.enter_context(_backend(settings))
            export(effective, {"CHAINLIT_HOST": host, "CHAINLIT_PORT": str(port)})
            import chainlit as cl
            from chainlit.cli import run_chainlit
            from chainlit.config import config

            # Chainlit ends its process with os._exit() right after this hook, so this `with`
            # never unwinds on Ctrl+C or SIGTERM: release the backend here.
            cl.on_app_shutdown(resources.close)
            resources.callback(close_shared_workers)  # the tool worker processes end with the app
            config.run.headless = headless
            typer.echo(f"smart-agent: chat UI at http://{host}:{port}")
            run_chainlit(str(APP_PATH))
    except LocalModelError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    except KeyboardInterrupt:
        typer.echo("smart-agent: stopped")
