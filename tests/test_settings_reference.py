"""The settings model is the one definition: the reference page and .env.example agree with it."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from smart_agent import cli
from smart_agent.config import ENV_VARS, Settings
from smart_agent.oauth import OAUTH_PROVIDER_VARS
from smart_agent.setting import source
from smart_agent.settings_reference import PAGE, reference

ROOT = Path(__file__).resolve().parent.parent


def test_reference_when_generated_then_equals_the_committed_page() -> None:
    # After changing a setting: python -m smart_agent.settings_reference
    assert PAGE.read_text() == reference()


def test_reference_when_generated_then_names_every_variable_flag_and_bound() -> None:
    text = reference()
    assert text.startswith("# Configuration\n")
    for name in ENV_VARS:
        assert f"`{name}`" in text, name
    for info in Settings.model_fields.values():
        if (flag := source(info).flag) is not None:
            assert f"`{flag}" in text, flag
    assert "integer from 1 to 100 |" in text and "number &gt; 0 |" in text
    row = "| `SMART_AGENT_BATCH_SIZE` | `--batch-size N` | `20` | integer &gt;= 1 | Tokens per UI event. |"
    assert row in text


def test_env_example_when_read_then_each_model_variable_has_a_one_line_comment_above_it() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    oauth = {name for names in OAUTH_PROVIDER_VARS.values() for name in names}
    for number, line in enumerate(lines):
        if (found := re.match(r"([A-Z0-9_]+)=", line)) and found[1] not in oauth:
            above = lines[number - 1]
            assert above.startswith("# ") and len(above) > 10, found[1]  # a comment says what it is


def test_every_setting_when_defined_then_has_help_a_section_and_a_variable_or_is_the_launchers() -> None:
    for name, info in Settings.model_fields.items():
        spec = source(info)
        assert info.description and info.description.endswith("."), name
        assert spec.section, name
        assert spec.env is not None or name == "embedded", name


def test_flags_when_listed_by_help_then_come_from_the_model_with_default_and_variable() -> None:
    result = CliRunner().invoke(cli.app, ["users", "list", "--help"], catch_exceptions=False)
    text = " ".join(result.stdout.split())
    assert "[default: history.db in the data folder; env SMART_AGENT_DATABASE_URL, else DATABASE_URL]" in text
    assert "env SMART_AGENT_DATA_DIR]" in text
    result = CliRunner().invoke(cli.app, ["ask", "--help"], catch_exceptions=False)
    assert result.stdout.count("--api-key") == 1 and "SMART_AGENT_API_KEY" in result.stdout
