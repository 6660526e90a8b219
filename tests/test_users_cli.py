"""`smart-agent users`: piped or prompted passwords (no echo), one-line errors, exit codes, the URL."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from smart_agent import cli
from smart_agent.config import ENV_VARS
from smart_agent.history.accounts import Accounts
from smart_agent.history.urls import history_path
from tests.harness import ROOT, clean_env
from tests.history_fixtures import fresh_database
from tests.postgres_server import PostgresServer

runner = CliRunner()
PASSWORD = "Tr0ub4dor & 3"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No smart-agent variables, no .env; the data folder comes from SMART_AGENT_DATA_DIR."""
    monkeypatch.chdir(tmp_path)
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    monkeypatch.setenv("SMART_AGENT_DATA_DIR", str(data))
    return data


def invoke(*args: str, input: str | None = None) -> Any:
    return runner.invoke(cli.app, ["users", *args], input=input, catch_exceptions=False)


def verify(target: str | Path, name: str, password: str) -> bool:
    async def check() -> bool:
        accounts = await Accounts.open(target)
        try:
            return await accounts.verify(name, password)
        finally:
            await accounts.close()

    return asyncio.run(check())


def test_add_when_password_piped_then_stored_without_its_newline_and_never_echoed(env: Path) -> None:
    result = invoke("add", "alice", input=PASSWORD + "\n")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "Account 'alice' added.\n"
    assert verify(history_path(env), "alice", PASSWORD)
    assert not verify(history_path(env), "alice", PASSWORD + "\n")


def test_add_when_windows_line_ending_then_stripped_too(env: Path) -> None:
    assert invoke("add", "alice", input=PASSWORD + "\r\n").exit_code == 0
    assert verify(history_path(env), "alice", PASSWORD)


def test_list_when_accounts_then_names_and_dates_on_stdout(env: Path) -> None:
    invoke("add", "bob", input="pw-b\n")
    invoke("add", "alice", input="pw-a\n")
    result = invoke("list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["alice", "bob"]
    assert all(line.split("\t")[1].endswith("Z") for line in lines)
    assert result.stderr == ""


def test_list_when_none_then_note_on_stderr_and_stdout_empty(env: Path) -> None:
    result = invoke("list")
    assert (result.exit_code, result.stdout) == (0, "")
    assert "smart-agent users add NAME" in result.stderr


def test_remove_when_present_then_gone(env: Path) -> None:
    invoke("add", "alice", input="pw\n")
    result = invoke("remove", "alice")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "Account 'alice' removed.\n")
    assert invoke("list").stdout == ""


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["add", "a b"], "pw\n", "Error: invalid account name 'a b': use 1 to 64 characters"),
        (["add", "x" * 65], "pw\n", "Error: invalid account name"),
        (["add", "alice"], "\n", "Error: the password must not be empty"),
        (["add", "alice"], "", "Error: the password must not be empty"),
        (["add", "alice"], "p" * 1025 + "\n", "Error: the password is too long: at most 1,024 characters"),
        (["remove", "nobody"], None, "Error: there is no account 'nobody'"),
        (
            ["add", "alice", "--database-url", "mysql://u:pw@h/db"],
            "pw\n",
            "Error: invalid value 'mysql://u:***@h/db' for --database-url",
        ),
        (
            ["list", "--database-url", "sqlite:///relative.db"],
            None,
            "Error: invalid value 'sqlite:///relative.db' for --database-url",
        ),
    ],
)
def test_when_name_password_or_url_refused_then_exit_2_with_one_line(
    env: Path, args: list[str], stdin: str | None, message: str
) -> None:
    result = invoke(*args, input=stdin)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1


def test_add_when_name_taken_then_exit_2_and_first_password_kept(env: Path) -> None:
    invoke("add", "alice", input="first\n")
    result = invoke("add", "alice", input="second\n")
    assert (result.exit_code, result.stderr) == (2, "Error: the account 'alice' exists already\n")
    assert verify(history_path(env), "alice", "first")


def test_bad_database_url_when_it_holds_a_password_then_the_password_is_not_shown(env: Path) -> None:
    result = invoke("list", "--database-url", "mysql://someone:hush-hush@db.example.com/x")
    assert result.exit_code == 2
    assert "hush-hush" not in result.stderr and "someone:***@" in result.stderr


def test_when_database_unreachable_then_exit_1_with_one_line_and_no_secret(env: Path) -> None:
    url = "postgresql://someone:hush-hush@127.0.0.1:1/history"
    result = invoke("add", "alice", "--database-url", url, input=PASSWORD + "\n")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: cannot open the accounts at postgresql+asyncpg://someone:***@")
    assert result.stderr.count("\n") == 1
    assert "hush-hush" not in result.stderr and PASSWORD not in result.stderr


async def test_database_url_when_from_environment_then_used_and_ours_beats_the_standard_name(
    env: Path, monkeypatch: pytest.MonkeyPatch, postgres: PostgresServer, tmp_path: Path
) -> None:
    url = await fresh_database(postgres)
    monkeypatch.setenv("DATABASE_URL", url)
    result = await asyncio.to_thread(invoke, "add", "alice", input="pw\n")
    assert result.exit_code == 0
    ours = tmp_path / "ours.db"
    monkeypatch.setenv("SMART_AGENT_DATABASE_URL", f"sqlite:///{ours}")
    result = await asyncio.to_thread(invoke, "add", "bob", input="pw\n")
    assert result.exit_code == 0
    accounts = await Accounts.open(url)
    try:
        assert [name for name, _ in await accounts.names()] == ["alice"]
    finally:
        await accounts.close()
    accounts = await Accounts.open(ours)
    try:
        assert [name for name, _ in await accounts.names()] == ["bob"]
    finally:
        await accounts.close()
    assert not history_path(env).exists()


def test_help_when_asked_then_lists_the_three_commands_and_the_database_variables(env: Path) -> None:
    result = runner.invoke(cli.app, ["users", "--help"], catch_exceptions=False)
    assert all(command in result.stdout for command in ["add", "list", "remove"])
    result = runner.invoke(cli.app, ["users", "add", "--help"], catch_exceptions=False)
    assert "SMART_AGENT_DATABASE_URL, else DATABASE_URL" in " ".join(result.stdout.split())


# The installed command, in a real process


def run(*args: str, data: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "smart_agent", "users", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        env=clean_env(SMART_AGENT_DATA_DIR=str(data)),
        timeout=120,
        check=False,
    )


@pytest.mark.slow  # a real process
def test_process_when_password_piped_then_account_added_and_listed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    added = run("add", "carol", data=data, stdin=PASSWORD.encode() + b"\n")
    assert (added.returncode, added.stdout, added.stderr) == (0, b"", b"Account 'carol' added.\n")
    listed = run("list", data=data)
    assert listed.returncode == 0 and listed.stdout.startswith(b"carol\t")
    assert verify(history_path(data), "carol", PASSWORD)


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b"\xff\xfepw\n", b"Error: the password read from stdin is not UTF-8 text\n"),
        (b"", b"Error: the password must not be empty\n"),
    ],
)
@pytest.mark.slow  # a real process
def test_process_when_piped_password_not_text_or_missing_then_exit_2_with_one_line(
    tmp_path: Path, stdin: bytes, message: bytes
) -> None:
    added = run("add", "carol", data=tmp_path / "data", stdin=stdin)
    assert (added.returncode, added.stdout, added.stderr) == (2, b"", message)


@pytest.mark.slow  # a real process
def test_process_when_stdin_is_a_terminal_then_prompts_twice_without_echo(tmp_path: Path) -> None:
    data = tmp_path / "data"
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "smart_agent", "users", "add", "dave"],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            cwd=ROOT,
            env=clean_env(SMART_AGENT_DATA_DIR=str(data)),
            start_new_session=True,
        )
        os.close(follower)
        follower = -1
        seen = read_until(leader, b"Password: ")
        os.write(leader, PASSWORD.encode() + b"\n")
        seen += read_until(leader, b"Repeat for confirmation: ")
        os.write(leader, PASSWORD.encode() + b"\n")
        seen += read_until(leader, b"added.")
        assert process.wait(timeout=60) == 0
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    assert PASSWORD.encode() not in seen
    assert verify(history_path(data), "dave", PASSWORD)


def read_until(fd: int, marker: bytes, timeout: float = 60.0) -> bytes:
    """Read the terminal until `marker` appears; fail after `timeout` seconds."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {marker!r} on the terminal; got {seen!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            seen += os.read(fd, 4096)
    return seen
