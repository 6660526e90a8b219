"""The per-run Chainlit app root: shipped files linked in, one folder per run, removed after."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from smart_agent.web.chainlit_root import SHIPPED_ROOT, run_root
from tests.harness import ROOT, clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer

pytestmark = pytest.mark.slow  # starts Chainlit processes: not in `make test-fast`


def _files(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_run_root_when_entered_then_links_the_shipped_config_public_and_welcome_text(tmp_path: Path) -> None:
    with run_root(tmp_path) as root:
        assert root.parent == tmp_path / "runs"
        assert (root / ".chainlit" / "config.toml").read_text() == (
            SHIPPED_ROOT / ".chainlit" / "config.toml"
        ).read_text()
        assert (root / "public" / "elements" / "ReplyFooter.jsx").is_file()
        assert (root / "public" / "smart-agent.css").is_file()
        assert (root / "chainlit.md").read_text().startswith("# smart-agent")
    assert list((tmp_path / "runs").iterdir()) == []


def test_two_runs_when_at_once_then_separate_folders_and_ending_one_keeps_the_other(tmp_path: Path) -> None:
    with run_root(tmp_path) as first:
        with run_root(tmp_path) as second:
            assert first != second
            (second / ".files").mkdir()
        assert first.is_dir() and not second.exists()


def test_folder_of_a_killed_run_when_next_run_starts_then_removed(tmp_path: Path) -> None:
    abandoned = tmp_path / "runs" / "999999-gone"
    (abandoned / ".files").mkdir(parents=True)
    (abandoned / ".lock").touch()
    with run_root(tmp_path) as live:
        assert not abandoned.exists()
        # a live run's folder is locked: a start meanwhile leaves it alone
        with run_root(tmp_path):
            assert live.is_dir()


def test_chainlit_when_started_on_a_run_root_then_writes_only_there(tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    shipped = _files(SHIPPED_ROOT)
    with run_root(tmp_path / "data") as root:
        # What Chainlit 2.12 does on import and at start: its files folder, config, welcome text.
        probe = (
            "from chainlit.config import FILES_DIRECTORY, config; from chainlit.markdown import "
            "init_markdown; init_markdown(config.root); print(FILES_DIRECTORY, config.ui.custom_css)"
        )
        env = clean_env(CHAINLIT_APP_ROOT=str(root), PYTHONPATH=str(ROOT))
        result = subprocess.run(
            [sys.executable, "-c", probe], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [str(root / ".files"), "/public/smart-agent.css"]
        assert (root / ".chainlit" / "translations").is_dir()
    assert os.listdir(cwd) == []
    assert _files(SHIPPED_ROOT) == shipped


def test_two_apps_when_one_stops_then_the_other_keeps_its_files_folder(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    # Chainlit deletes its files folder when it stops; a shared one would vanish under the other.
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_DATA_DIR=str(tmp_path / "data"))
    flags = ("--base-url", scripted.url, "--model", MODEL_ID)
    runs = tmp_path / "data" / "runs"
    with running_app(*flags, env=env, log_dir=tmp_path) as (url, staying):
        with running_app(*flags, env=env, log_dir=tmp_path):
            assert len(list(runs.iterdir())) == 2
        (root,) = runs.iterdir()
        assert root.name.startswith(f"{staying.pid}-")
        assert (root / ".files").is_dir()
        with urllib.request.urlopen(f"{url}/public/elements/ReplyFooter.jsx", timeout=10) as response:
            assert response.status == 200
    assert list(runs.iterdir()) == []
