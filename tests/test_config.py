"""config.py: the one reader of the environment, and its documentation in .env.example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smart_agent.config import ENV_VARS, ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_env_example_when_read_then_lists_exactly_the_variables_the_code_reads() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = re.findall(r"^([A-Z_]+)=", text, flags=re.MULTILINE)
    assert sorted(documented) == sorted(ENV_VARS)


def test_env_example_when_loaded_as_dotenv_then_gives_the_defaults() -> None:
    settings = load_settings(environ={}, dotenv_path=ROOT / ".env.example")
    assert settings == Settings()


def test_no_other_module_when_scanned_then_reads_os_environ() -> None:
    readers = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "smart_agent").rglob("*.py")
        if re.search(r"os\.environ|os\.getenv|getenv\(", path.read_text())
    ]
    assert readers == ["smart_agent/config.py"]


def test_settings_when_round_tripped_through_env_then_equal() -> None:
    settings = Settings(
        stream_batching=False,
        batch_size=3,
        flush_interval=0.5,
        debug=True,
        model="m",
        base_url="http://127.0.0.1:1/v1",
        api_key="k",
        system_prompt="be brief",
    )
    assert load_settings(environ=settings.to_env(), dotenv_path=None) == settings


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "", "inf"])
def test_batch_size_when_invalid_in_env_then_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="SMART_AGENT_BATCH_SIZE"):
        load_settings(environ={"SMART_AGENT_BATCH_SIZE": value}, dotenv_path=None)
