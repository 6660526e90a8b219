"""The Team profile's settings: profile, team file and concurrency, validated like every other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smart_agent.config import ConfigError, Settings, load_settings
from smart_agent.team.default import DEFAULT_TEAM
from smart_agent.team.definition import TeamConfigError, concurrency, load_team, team_for
from smart_agent.team.members import Member
from tests.test_cli import invoke, launched  # noqa: F401 -- the fixture is used by name

GOOD = """
[[members]]
name = "alpha"
prompt = "You are alpha."

[[members]]
name = "beta"
prompt = "You are beta."
model = "small-model"

[synthesiser]
prompt = "Write the answer."
"""


def test_profile_when_team_in_env_then_set_and_other_values_refused() -> None:
    assert load_settings(environ={"SMART_AGENT_PROFILE": "Team"}, dotenv_path=None).profile == "team"
    assert load_settings(environ={}, dotenv_path=None).profile == "assistant"
    with pytest.raises(ConfigError, match=r"'crew' for SMART_AGENT_PROFILE.*assistant, team"):
        load_settings(environ={"SMART_AGENT_PROFILE": "crew"}, dotenv_path=None)


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_team_concurrency_when_not_a_positive_integer_then_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match=r"SMART_AGENT_TEAM_CONCURRENCY.*integer from 1"):
        load_settings(environ={"SMART_AGENT_TEAM_CONCURRENCY": value}, dotenv_path=None)


def test_concurrency_when_unset_then_all_members_remote_and_one_embedded() -> None:
    remote = Settings(base_url="http://127.0.0.1:1/v1")
    assert concurrency(remote, DEFAULT_TEAM) == 3
    assert concurrency(Settings(), DEFAULT_TEAM) == 1
    assert concurrency(Settings(team_concurrency=2), DEFAULT_TEAM) == 2
    assert concurrency(Settings(team_concurrency=9), DEFAULT_TEAM) == 3


def test_team_file_when_valid_then_members_in_order_with_models(tmp_path: Path) -> None:
    path = tmp_path / "team.toml"
    path.write_text(GOOD)
    team = team_for(Settings(team_config=str(path)))
    assert team.members == (Member("alpha", "You are alpha."), Member("beta", "You are beta.", "small-model"))
    assert team.synthesiser_prompt == "Write the answer."


def test_team_when_no_file_then_builtin_three_distinct_roles() -> None:
    team = team_for(Settings())
    assert [m.name for m in team.members] == ["researcher", "critic", "planner"]
    assert len({m.prompt for m in team.members}) == 3 and team.synthesiser_prompt


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[[members]\nname=", "not valid TOML"),
        ('[synthesiser]\nprompt = "x"', "at least one [[members]]"),
        ('[[members]]\nname = "a"\n[synthesiser]\nprompt = "x"', "member 'a' needs `prompt`"),
        ('[[members]]\nname = "a"\nprompt = "p"', "needs a [synthesiser]"),
        ('[[members]]\nname = "a"\nprompt = "p"\ncolour = 1\n[synthesiser]\nprompt = "x"', "colour"),
        (GOOD.replace('"beta"', '"Alpha"'), "two members are named 'Alpha'"),
        (GOOD.replace('"beta"', '"<b>"'), "name '<b>' must be"),
    ],
)
def test_team_file_when_bad_then_error_names_file_and_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "team.toml"
    path.write_text(text)
    with pytest.raises(TeamConfigError) as caught:
        load_team(path)
    assert problem in str(caught.value) and str(path) in str(caught.value)


def test_chainlit_when_team_file_bad_then_exit_2_naming_it(
    launched: list[dict[str, Any]],  # noqa: F811
    tmp_path: Path,
) -> None:
    path = tmp_path / "team.toml"
    path.write_text("[[members]]\n")
    result = invoke("chainlit", "--team-config", str(path))
    assert result.exit_code == 2
    assert str(path) in result.stderr and "needs `name`" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert launched == []


def test_chainlit_when_profile_and_team_flags_then_reach_settings(
    launched: list[dict[str, Any]],  # noqa: F811
    tmp_path: Path,
) -> None:
    path = tmp_path / "team.toml"
    path.write_text(GOOD)
    result = invoke("chainlit", "--profile", "team", "--team-config", str(path), "--team-concurrency", "2")
    assert result.exit_code == 0, result.output
    settings = launched[0]["settings"]
    assert (settings.profile, settings.team_config, settings.team_concurrency) == ("team", str(path), 2)
    assert invoke("chainlit", "--profile", "nope").exit_code == 2


def test_session_settings_when_team_values_given_then_applied_and_bad_ones_refused() -> None:
    from smart_agent.web.chat_settings import apply_session_settings

    base = Settings()
    changed = apply_session_settings(base, {"team_stream_live": False, "team_concurrency": 2.0})
    assert (changed.team_stream_live, changed.team_concurrency) == (False, 2)
    with pytest.raises(ConfigError, match="Team: members at once"):
        apply_session_settings(base, {"team_concurrency": 0})


def test_session_settings_when_team_concurrency_emptied_then_back_to_all_members() -> None:
    from smart_agent.web.chat_settings import apply_session_settings

    two = apply_session_settings(Settings(), {"team_concurrency": 2.0})
    assert apply_session_settings(two, {"team_concurrency": None}).team_concurrency is None
    assert apply_session_settings(two, {"team_concurrency": ""}).team_concurrency is None
    assert apply_session_settings(two, {"batch_size": None}).batch_size == two.batch_size  # others: kept
