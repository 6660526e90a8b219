"""The command line: flags become settings, precedence holds, bad input exits 2 with one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from smart_agent import __version__, cli
from smart_agent.config import ENV_VARS, ConfigError, Settings, load_settings

runner = CliRunner()


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """Replace the launcher with a recorder; run from an empty folder (no .env)."""
    calls: list[dict[str, Any]] = []

    def fake_launch(settings: Settings, **kwargs: Any) -> None:
        calls.append({"settings": settings, **kwargs})

    monkeypatch.setattr("smart_agent.web.launch.launch", fake_launch)
    monkeypatch.chdir(tmp_path)
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # the data folder is created
    return calls


def invoke(*args: str) -> Any:
    return runner.invoke(cli.app, list(args), catch_exceptions=False)


def test_version_when_asked_then_printed() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"smart-agent {__version__}"


def test_help_when_asked_then_lists_every_flag() -> None:
    result = invoke("chainlit", "--help")
    assert result.exit_code == 0
    for flag in [
        "--no-stream-batching",
        "--batch-size",
        "--flush-interval",
        "--debug",
        "--host",
        "--port",
        "--headless",
        "--model",
        "--base-url",
        "--allowed-origins",
        "--expose-without-login",
        "--mcp-user-servers",
        "--data-dir",
    ]:
        assert flag in result.stdout


def test_help_when_asked_then_shows_defaults_and_environment_variables() -> None:
    result = invoke("chainlit", "--help")
    text = " ".join(result.stdout.split())  # the help is wrapped to the terminal's width
    for note in [
        "[default: 20; env SMART_AGENT_BATCH_SIZE]",
        "[env SMART_AGENT_STREAM_BATCHING=0]",
        "env SMART_AGENT_MODEL]",
        "env OPENAI_BASE_URL]",
        "[default: history.db in the data folder; env SMART_AGENT_DATABASE_URL, else DATABASE_URL]",
    ]:
        assert note in text


def test_no_flags_when_launched_then_defaults(launched: list[dict[str, Any]]) -> None:
    result = invoke("chainlit")
    assert result.exit_code == 0, result.output
    call = launched[0]
    assert call["settings"] == Settings()
    assert (call["host"], call["port"], call["headless"]) == ("127.0.0.1", 8000, False)
    env = call["settings"].to_env()
    assert env["SMART_AGENT_STREAM_BATCHING"] == "1"
    assert env["SMART_AGENT_BATCH_SIZE"] == "20"
    assert env["SMART_AGENT_FLUSH_INTERVAL"] == "0.1"
    assert env["SMART_AGENT_DEBUG"] == "0"


def test_flags_when_given_then_reach_settings_and_env(launched: list[dict[str, Any]]) -> None:
    result = invoke(
        "chainlit",
        "--no-stream-batching",
        "--batch-size",
        "5",
        "--flush-interval",
        "0.25",
        "--debug",
        "--port",
        "8123",
        "--host",
        "0.0.0.0",
        "--headless",
        "--model",
        "m",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--expose-without-login",
        "--allowed-origins",
        "https://Chat.example.com/,http://10.0.0.5:8123",
        "--mcp-user-servers",
    )
    assert result.exit_code == 0, result.output
    call = launched[0]
    settings = call["settings"]
    assert settings.allowed_origins == ("https://chat.example.com", "http://10.0.0.5:8123")
    assert settings.expose_without_login and settings.mcp_user_servers
    assert (settings.stream_batching, settings.batch_size, settings.flush_interval) == (
        False,
        5,
        0.25,
    )
    assert settings.debug and settings.model == "m"
    assert (call["host"], call["port"], call["headless"]) == ("0.0.0.0", 8123, True)
    env = settings.to_env()
    assert env["SMART_AGENT_STREAM_BATCHING"] == "0"
    assert env["SMART_AGENT_BATCH_SIZE"] == "5"
    assert env["SMART_AGENT_FLUSH_INTERVAL"] == "0.25"
    assert env["SMART_AGENT_DEBUG"] == "1"
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:9/v1"


def test_precedence_when_all_sources_set_then_flag_beats_env_beats_dotenv(
    launched: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "SMART_AGENT_BATCH_SIZE=7\nSMART_AGENT_FLUSH_INTERVAL=0.7\nSMART_AGENT_DEBUG=1\n"
    )
    monkeypatch.setenv("SMART_AGENT_FLUSH_INTERVAL", "0.3")
    monkeypatch.setenv("SMART_AGENT_BATCH_SIZE", "9")
    result = invoke("chainlit", "--batch-size", "11")
    assert result.exit_code == 0, result.output
    settings = launched[0]["settings"]
    assert settings.batch_size == 11  # flag
    assert settings.flush_interval == 0.3  # environment
    assert settings.debug is True  # .env


@pytest.mark.parametrize(
    ("args", "names", "allowed"),
    [
        (["--batch-size", "0"], "--batch-size", "an integer >= 1"),
        (["--batch-size", "x"], "--batch-size", "an integer >= 1"),
        (["--flush-interval", "-1"], "--flush-interval", "a number > 0"),
        (["--flush-interval", "abc"], "--flush-interval", "a number > 0"),
        (["--flush-interval", "nan"], "--flush-interval", "a number > 0"),
        (["--port", "70000"], "--port", "an integer from 1 to 65535"),
        (["--port", "0"], "--port", "an integer from 1 to 65535"),
        (["--port", "http"], "--port", "an integer from 1 to 65535"),
        (["--redis-url", "localhost:6379"], "--redis-url", "a URL like redis://"),
        (["--redis-url", "redis://h:99999"], "--redis-url", "a URL like redis://"),
        (["--redis-url", "redis:cache"], "--redis-url", "a URL like redis://"),
        (["--base-url", "not-a-url"], "--base-url", "an http:// or https:// URL with a host"),
        (["--base-url", "localhost:11434/v1"], "--base-url", "an http:// or https:// URL with a host"),
        (["--base-url", "ftp://models.example/v1"], "--base-url", "an http:// or https:// URL with a host"),
        (["--base-url", "http:///v1"], "--base-url", "an http:// or https:// URL with a host"),
        (["--base-url", "http://localhost:0x50/v1"], "--base-url", "an http:// or https:// URL with a host"),
    ],
)
def test_bad_flag_when_given_then_exit_2_with_one_line(
    launched: list[dict[str, Any]], args: list[str], names: str, allowed: str
) -> None:
    result = invoke("chainlit", *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert names in lines[0] and allowed in lines[0] and repr(args[1]) in lines[0]
    assert "Traceback" not in result.output
    assert launched == []


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("SMART_AGENT_BATCH_SIZE", "-3", "an integer >= 1"),
        ("SMART_AGENT_FLUSH_INTERVAL", "soon", "a number > 0"),
        ("SMART_AGENT_STREAM_BATCHING", "maybe", "1/0, true/false"),
        ("SMART_AGENT_DEBUG", "2", "1/0, true/false"),
        ("SMART_AGENT_ALLOWED_ORIGINS", "https://ok.example,chat.example.com", "an origin like https://"),
        ("SMART_AGENT_ALLOWED_ORIGINS", "https://chat.example.com/app", "an origin like https://"),
        ("SMART_AGENT_EXPOSE_WITHOUT_LOGIN", "sure", "1/0, true/false"),
        ("SMART_AGENT_MCP_USER_SERVERS", "all", "1/0, true/false"),
        ("SMART_AGENT_REDIS_URL", "http://cache:6379", "a URL like redis://"),
        ("OPENAI_BASE_URL", "api.openai.com/v1", "an http:// or https:// URL with a host"),
        ("SMART_AGENT_SSE_HEARTBEAT", "0", "a number > 0"),
        ("SMART_AGENT_SSE_SEND_TIMEOUT", "-1", "a number > 0"),
        ("SMART_AGENT_API_MAX_RUNS", "0", "an integer from 1 to 100000"),
        ("SMART_AGENT_API_MAX_STREAMS", "many", "an integer from 1 to 100000"),
        ("SMART_AGENT_RUN_RETENTION", "forever", "a number > 0"),
    ],
)
def test_bad_env_value_when_launched_then_exit_2_naming_variable(
    launched: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    allowed: str,
) -> None:
    monkeypatch.setenv(variable, value)
    result = invoke("chainlit")
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line
    assert variable in line and allowed in line and repr(value) in line
    assert launched == []


def test_bad_dotenv_value_when_loaded_then_error_names_dotenv(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("SMART_AGENT_BATCH_SIZE=zero\n")
    with pytest.raises(ConfigError, match=r"SMART_AGENT_BATCH_SIZE \(from the \.env\)"):
        load_settings(environ={}, dotenv_path=path)


def test_embedded_model_when_no_key_or_url_then_used() -> None:
    assert load_settings(environ={}, dotenv_path=None).uses_embedded_model
    assert not load_settings(environ={"OPENAI_API_KEY": "k"}, dotenv_path=None).uses_embedded_model
    assert not load_settings(environ={"OPENAI_BASE_URL": "http://x/v1"}, dotenv_path=None).uses_embedded_model


def test_mcp_config_when_invalid_then_exit_2_naming_file(
    launched: list[dict[str, Any]], tmp_path: Path
) -> None:
    path = tmp_path / "mcp.json"
    path.write_text("{oops")
    result = invoke("chainlit", "--mcp-config", str(path))
    assert result.exit_code == 2
    assert "not valid JSON" in result.stderr and str(path) in result.stderr
    assert launched == []


def test_host_when_not_loopback_and_history_off_then_exit_2_saying_how_to_expose_it_while_loopback_launches(
    launched: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "SMART_AGENT_HISTORY", "0"
    )  # on, the launcher checks for accounts (test_login_exposure)
    for host in ["0.0.0.0", "::", "192.168.1.5", "chat.example.com"]:
        result = invoke("chainlit", "--host", host)
        assert result.exit_code == 2, host
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert f"--host {host}" in lines[0] and "no login" in lines[0]
        assert "--expose-without-login" in lines[0] and "SMART_AGENT_EXPOSE_WITHOUT_LOGIN=1" in lines[0]
        assert launched == []
    for host in ["127.0.0.1", "localhost", "::1", "127.0.0.2"]:
        result = invoke("chainlit", "--host", host)
        assert result.exit_code == 0, result.output
        assert launched.pop()["host"] == host
        assert result.stderr == ""


@pytest.mark.parametrize("how", ["flag", "env"])
def test_host_when_not_loopback_and_opted_out_then_launches_with_one_warning(
    launched: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setenv("SMART_AGENT_HISTORY", "0")
    args = ["chainlit", "--host", "0.0.0.0"]
    if how == "flag":
        args.append("--expose-without-login")
    else:
        monkeypatch.setenv("SMART_AGENT_EXPOSE_WITHOUT_LOGIN", "1")
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert launched[0]["host"] == "0.0.0.0"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "WITHOUT authentication" in lines[0], result.stderr


def test_host_when_not_loopback_and_history_on_then_the_launcher_checks_the_login(
    launched: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMART_AGENT_HISTORY", "1")
    result = invoke("chainlit", "--host", "0.0.0.0")
    assert result.exit_code == 0, result.output
    assert launched[0]["host"] == "0.0.0.0" and result.stderr == ""


def test_data_dir_when_launched_then_created_before_the_app_starts(
    launched: list[dict[str, Any]], tmp_path: Path
) -> None:
    result = invoke("chainlit")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "xdg" / "smart-agent").is_dir()
    result = invoke("chainlit", "--data-dir", str(tmp_path / "mine"))
    assert result.exit_code == 0, result.output
    assert launched[1]["settings"].data_dir == tmp_path / "mine"
    assert (tmp_path / "mine").is_dir()


def test_data_dir_when_relative_then_exit_2_with_one_line(launched: list[dict[str, Any]]) -> None:
    result = invoke("chainlit", "--data-dir", "state")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--data-dir" in lines[0] and "'state'" in lines[0] and "absolute path" in lines[0]
    assert launched == []


def test_data_dir_when_a_file_then_exit_2_naming_it(
    launched: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("SMART_AGENT_DATA_DIR", str(blocker))
    result = invoke("chainlit")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert repr(str(blocker)) in lines[0] and "SMART_AGENT_DATA_DIR" in lines[0]
    assert "Traceback" not in result.output
    assert launched == []


@pytest.mark.parametrize(
    ("args", "env", "shown"),
    [
        ([], {}, False),
        (["--show-stats"], {}, True),
        (["--debug"], {}, True),
        (["--debug"], {"SMART_AGENT_SHOW_STATS": "0"}, False),
        ([], {"SMART_AGENT_SHOW_STATS": "1"}, True),
        ([], {"SMART_AGENT_DEBUG": "1"}, True),
    ],
)
def test_stats_line_when_launched_then_off_unless_asked_for_or_debugging(
    launched: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    shown: bool,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = invoke("chainlit", *args)
    assert result.exit_code == 0, result.output
    assert launched[0]["settings"].show_stats is shown
