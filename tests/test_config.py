"""config.py: the one reader of the environment, and its documentation in .env.example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smart_agent.config import ENV_VARS, ConfigError, Settings, load_settings
from smart_agent.data_dir import default_data_dir, ensure_data_dir, resolve_data_dir
from smart_agent.web.chat_settings import apply_session_settings
from smart_agent.web.handoff import hand_over, handed_settings

ROOT = Path(__file__).resolve().parent.parent


def test_env_example_when_read_then_lists_exactly_the_variables_the_code_reads() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = re.findall(r"^([A-Z0-9_]+)=", text, flags=re.MULTILINE)
    assert sorted(documented) == sorted(ENV_VARS)


def test_env_example_when_loaded_as_dotenv_then_gives_the_defaults() -> None:
    settings = load_settings(environ={}, dotenv_path=ROOT / ".env.example")
    assert settings == Settings()


def test_no_other_module_when_scanned_then_reads_os_environ() -> None:
    readers = sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "smart_agent").rglob("*.py")
        if re.search(r"os\.environ|os\.getenv|getenv\(", path.read_text())
    )
    # The settings; what a child process inherits; the XDG folders; Chainlit's OAuth variables.
    assert readers == [
        "smart_agent/child_env.py",
        "smart_agent/config.py",
        "smart_agent/data_dir.py",
        "smart_agent/oauth.py",
    ]


def test_embedded_when_the_launcher_hands_it_over_then_the_app_knows_despite_url_and_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handed = Settings(base_url="http://127.0.0.1:5/v1", api_key="k", model="smollm2", embedded=True)
    assert "SMART_AGENT_EMBEDDED" not in handed.to_env()  # no longer an environment round trip
    monkeypatch.setattr("smart_agent.web.handoff._handed", [])
    hand_over(handed)
    app = handed_settings()
    assert app is handed and app.embedded and app.uses_embedded_model
    assert not handed.model_copy(update={"embedded": False}).uses_embedded_model


def test_handed_settings_when_the_app_is_started_without_the_launcher_then_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("smart_agent.web.handoff._handed", [])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SMART_AGENT_BATCH_SIZE", "7")
    monkeypatch.setenv("SMART_AGENT_EMBEDDED", "1")  # not a variable: only the launcher knows it
    settings = handed_settings()
    assert settings.batch_size == 7 and not settings.embedded


def test_precedence_when_every_source_sets_some_then_flag_beats_environment_beats_dotenv_beats_default(
    tmp_path: Path,
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "SMART_AGENT_BATCH_SIZE=3\nSMART_AGENT_FLUSH_INTERVAL=0.3\nSMART_AGENT_SEGMENT_CHARS=30\n"
    )
    environ = {"SMART_AGENT_BATCH_SIZE": "2", "SMART_AGENT_FLUSH_INTERVAL": "0.2"}
    settings = load_settings({"batch_size": "1"}, environ=environ, dotenv_path=dotenv)
    assert (settings.batch_size, settings.flush_interval, settings.segment_chars) == (1, 0.2, 30)
    assert settings.max_events_per_second == Settings().max_events_per_second == 20.0  # the default


def test_embedded_when_set_by_a_user_in_dotenv_or_as_a_flag_then_ignored_and_undocumented(
    tmp_path: Path,
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("SMART_AGENT_EMBEDDED=1\nOPENAI_API_KEY=k\n")
    assert not load_settings(environ={}, dotenv_path=dotenv).embedded
    assert not load_settings({"embedded": True}, environ={}, dotenv_path=None).embedded
    assert "SMART_AGENT_EMBEDDED" not in ENV_VARS
    assert "SMART_AGENT_EMBEDDED" not in (ROOT / ".env.example").read_text()


def test_embedded_when_claimed_by_the_environment_beside_a_backend_then_the_launcher_hands_over_remote(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from smart_agent.web.launch import _backend

    with _backend(Settings(base_url="http://127.0.0.1:9/v1", embedded=True)) as handed:
        assert not handed.embedded and not handed.uses_embedded_model
    assert "http://127.0.0.1:9/v1" in capsys.readouterr().out


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


def test_data_dir_when_xdg_data_home_set_then_below_it() -> None:
    environ = {"XDG_DATA_HOME": "/srv/xdg", "HOME": "/home/u"}
    assert default_data_dir(environ) == Path("/srv/xdg/smart-agent")
    assert resolve_data_dir(load_settings(environ=environ, dotenv_path=None), environ) == Path(
        "/srv/xdg/smart-agent"
    )


@pytest.mark.parametrize("xdg", [None, "", "relative/share"])
def test_data_dir_when_xdg_data_home_unset_empty_or_relative_then_local_share(xdg: str | None) -> None:
    environ = {"HOME": "/home/u"} if xdg is None else {"HOME": "/home/u", "XDG_DATA_HOME": xdg}
    assert default_data_dir(environ) == Path("/home/u/.local/share/smart-agent")


def test_data_dir_when_set_then_beats_xdg(tmp_path: Path) -> None:
    environ = {"SMART_AGENT_DATA_DIR": str(tmp_path / "d"), "XDG_DATA_HOME": "/srv/xdg"}
    settings = load_settings(environ=environ, dotenv_path=None)
    assert resolve_data_dir(settings, environ) == tmp_path / "d"


def test_data_dir_when_given_with_tilde_then_expanded() -> None:
    settings = load_settings(environ={"SMART_AGENT_DATA_DIR": "~/sa"}, dotenv_path=None)
    assert settings.data_dir == Path.home() / "sa"


@pytest.mark.parametrize("value", ["data", "./data", "../x/y"])
def test_data_dir_when_relative_then_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match=r"SMART_AGENT_DATA_DIR.*must be an absolute path"):
        load_settings(environ={"SMART_AGENT_DATA_DIR": value}, dotenv_path=None)


def test_ensure_data_dir_when_missing_then_created_with_parents(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "a" / "b")
    assert ensure_data_dir(settings) == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir()


@pytest.mark.parametrize("below", [False, True])
def test_ensure_data_dir_when_a_file_is_in_the_way_then_config_error(tmp_path: Path, below: bool) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    target = blocker / "sub" if below else blocker
    with pytest.raises(ConfigError, match=r"cannot use .* as the data folder \(SMART_AGENT_DATA_DIR"):
        ensure_data_dir(Settings(data_dir=target))


# The history database


def test_database_url_when_only_the_standard_name_set_then_read(tmp_path: Path) -> None:
    url = "postgresql://app:pw@db.example.com:5432/chat"
    assert load_settings(environ={"DATABASE_URL": url}, dotenv_path=None).database_url == url


def test_database_url_when_both_names_set_then_ours_wins_and_the_other_is_not_read() -> None:
    environ = {"SMART_AGENT_DATABASE_URL": "sqlite:////srv/history.db", "DATABASE_URL": "mysql://x"}
    assert load_settings(environ=environ, dotenv_path=None).database_url == "sqlite:////srv/history.db"


def test_database_url_when_standard_name_in_dotenv_then_the_environment_still_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("DATABASE_URL=postgres://a@h/one\n")
    settings = load_settings(environ={"DATABASE_URL": "postgres://a@h/two"}, dotenv_path=dotenv)
    assert settings.database_url == "postgres://a@h/two"
    assert load_settings(environ={}, dotenv_path=dotenv).database_url == "postgres://a@h/one"


@pytest.mark.parametrize(
    "value", ["mysql://u@h/db", "redis://h", "history.db", "sqlite:///relative.db", "sqlite://", "http://x"]
)
def test_database_url_when_not_postgresql_or_absolute_sqlite_then_config_error_naming_the_variable(
    value: str,
) -> None:
    with pytest.raises(
        ConfigError, match=r"for SMART_AGENT_DATABASE_URL \(from the environment\): must be postgresql://"
    ):
        load_settings(environ={"SMART_AGENT_DATABASE_URL": value}, dotenv_path=None)


@pytest.mark.parametrize("value", ["mysql://u:p@h/db", "redis://h", "history.db"])
def test_conventional_database_url_when_not_one_smart_agent_can_use_then_ignored(value: str) -> None:
    # Another program's DATABASE_URL (MySQL, ...) must not stop smart-agent from starting.
    assert load_settings(environ={"DATABASE_URL": value}, dotenv_path=None).database_url is None


def test_database_url_when_refused_then_its_password_is_not_in_the_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"SMART_AGENT_DATABASE_URL": "mysql://u:hush-hush@h/db"}, dotenv_path=None)
    assert "hush-hush" not in str(caught.value)
    assert "'mysql://u:***@h/db' for SMART_AGENT_DATABASE_URL" in str(caught.value)


def test_database_url_when_password_holds_an_at_sign_then_none_of_it_is_in_the_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"SMART_AGENT_DATABASE_URL": "mysql://u:hush@hush@h/db"}, dotenv_path=None)
    assert "hush" not in str(caught.value)


@pytest.mark.parametrize(
    "value",
    [
        "http://localhost:11434/v1",
        "https://api.openai.com/v1",
        "http://ollama_server:11434/v1",
        "http://[::1]:8080/v1",
        "http://user:pw@host/v1?api-version=1",
    ],
)
def test_base_url_when_http_with_a_host_then_kept_as_given(value: str) -> None:
    assert load_settings({"base_url": value}, environ={}, dotenv_path=None).base_url == value


def test_base_url_when_refused_then_the_error_shows_no_user_info_or_query() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"OPENAI_BASE_URL": "http://me:hush@host:99999/v1?key=hush"}, dotenv_path=None)
    assert "hush" not in str(caught.value)
    assert str(caught.value).startswith(
        "invalid value 'http://***@host:99999/v1?***' for OPENAI_BASE_URL (from the environment): must be"
    )


def test_redis_url_when_refused_then_its_password_is_not_in_the_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"redis_url": "redis://:hush@cache:99999/0"}, environ={}, dotenv_path=None)
    assert "hush" not in str(caught.value)
    assert "'redis://***@cache:99999/0' for --redis-url" in str(caught.value)


def test_session_thinking_settings_when_changed_in_the_panel_then_validated() -> None:
    base = Settings()
    changed = apply_session_settings(base, {"show_thinking": False, "reasoning_effort": "high"})
    assert (changed.show_thinking, changed.reasoning_effort) == (False, "high")
    assert apply_session_settings(changed, {"reasoning_effort": ""}).reasoning_effort is None
    with pytest.raises(ConfigError, match="Reasoning effort: 'extreme' is not allowed"):
        apply_session_settings(base, {"reasoning_effort": "extreme"})


def test_think_tags_when_set_then_parsed_and_when_unknown_then_refused_naming_the_choices() -> None:
    assert load_settings({"think_tags": "Prefilled"}, environ={}, dotenv_path=None).think_tags == "prefilled"
    with pytest.raises(ConfigError, match="must be one of auto, prefilled, none"):
        load_settings(environ={"SMART_AGENT_THINK_TAGS": "sometimes"}, dotenv_path=None)
