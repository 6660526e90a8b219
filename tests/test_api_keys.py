"""API keys: made once, stored only as hashes (0600, atomic), re-read when changed; the CLI around them."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from smart_agent import cli
from smart_agent.api.keys import KEYS_FILE, ApiKeyError, KeyFileError, KeyStore
from smart_agent.config import ENV_VARS

runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / KEYS_FILE)


def test_add_when_new_name_then_key_verifies_and_only_its_hash_is_stored(store: KeyStore) -> None:
    key = store.add("ci")
    assert key.startswith("sa-") and len(key) >= 3 + 43  # 32 random bytes, base64url
    assert store.verify(key) == "ci"
    text = store.path.read_text()
    assert key not in text and key[3:] not in text
    assert [entry["name"] for entry in json.loads(text)["keys"]] == ["ci"]


def test_add_when_file_created_then_mode_0600_and_folder_mode_untouched(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    folder.chmod(0o751)
    KeyStore(folder / KEYS_FILE).add("ci")
    assert stat.S_IMODE((folder / KEYS_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o751
    assert sorted(p.name for p in folder.iterdir()) == [KEYS_FILE]  # no temporary file left behind


def test_add_when_two_keys_then_each_verifies_to_its_own_name(store: KeyStore) -> None:
    first, second = store.add("a"), store.add("b")
    assert first != second
    assert (store.verify(first), store.verify(second)) == ("a", "b")


def test_verify_when_wrong_or_empty_key_then_none(store: KeyStore) -> None:
    key = store.add("ci")
    for wrong in ["", "sa-", key[:-1], key + "x", key.upper(), "sa-\udcff"]:
        assert store.verify(wrong) is None


def test_add_when_name_taken_then_error_naming_it(store: KeyStore) -> None:
    store.add("ci")
    with pytest.raises(ApiKeyError, match="'ci'"):
        store.add("ci")
    assert [name for name, _ in store.names()] == ["ci"]


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "../etc", "ä", "a/b", "ci\n"])
def test_add_when_name_not_allowed_then_error_and_nothing_written(store: KeyStore, name: str) -> None:
    with pytest.raises(ApiKeyError, match="invalid key name"):
        store.add(name)
    assert not store.path.exists()


def test_add_when_name_uses_every_allowed_character_then_accepted(store: KeyStore) -> None:
    name = "Az09._-" + "x" * 57  # 64 characters
    store.add(name)
    assert [n for n, _ in store.names()] == [name]


def test_names_when_keys_added_then_listed_oldest_first_with_aware_created_time(store: KeyStore) -> None:
    store.add("b")
    store.add("a")
    names = store.names()
    assert [name for name, _ in names] == ["b", "a"]
    assert all(created.tzinfo is not None for _, created in names)


def test_remove_when_known_then_key_no_longer_verifies(store: KeyStore) -> None:
    key = store.add("ci")
    kept = store.add("other")
    store.remove("ci")
    assert store.verify(key) is None
    assert store.verify(kept) == "other"
    assert [name for name, _ in store.names()] == ["other"]


def test_remove_when_unknown_then_error_naming_it(store: KeyStore) -> None:
    store.add("ci")
    with pytest.raises(ApiKeyError, match="'nope'"):
        store.remove("nope")


def test_configured_when_no_file_one_key_then_none_left(store: KeyStore) -> None:
    assert not store.configured()
    store.add("ci")
    assert store.configured()
    store.remove("ci")
    assert not store.configured()
    assert store.path.exists()  # an empty list, not a missing file


def test_verify_when_another_process_adds_or_removes_then_applies_at_once(tmp_path: Path) -> None:
    running = KeyStore(tmp_path / KEYS_FILE)  # what the app holds
    assert not running.configured()  # read (no file) and remembered
    cli_store = KeyStore(tmp_path / KEYS_FILE)  # what `smart-agent api-keys` uses meanwhile
    key = cli_store.add("ci")
    assert running.verify(key) == "ci"
    cli_store.remove("ci")
    assert running.verify(key) is None
    assert not running.configured()


ZEROS, NOON = "0" * 64, "2026-01-01T12:00:00+00:00"


def _entry_file(name: str, sha256: str, created: str) -> str:
    return json.dumps({"keys": [{"name": name, "sha256": sha256, "created": created}]})


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{", "not valid JSON"),
        ("\xff", "not valid JSON"),
        ("[]", '"keys" list'),
        ('{"keys": {}}', '"keys" list'),
        ('{"keys": [{"name": "ci"}]}', "key entry 0"),
        (_entry_file("a b", ZEROS, NOON), "entry 0"),
        (_entry_file("ci", "xyz", NOON), "entry 0"),
        (_entry_file("ci", ZEROS, "yesterday"), "entry 0"),
    ],
)
def test_load_when_file_corrupt_then_error_naming_the_file(
    store: KeyStore, content: str, problem: str
) -> None:
    store.path.write_bytes(content.encode("latin-1"))
    for action in (store.configured, lambda: store.verify("sa-x"), store.names, lambda: store.add("new")):
        with pytest.raises(KeyFileError) as caught:
            action()
        assert str(store.path) in str(caught.value) and problem in str(caught.value)
    assert store.path.read_bytes() == content.encode("latin-1")  # never overwritten


def test_save_when_folder_missing_then_error_naming_the_file(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "gone" / KEYS_FILE)
    with pytest.raises(KeyFileError, match="cannot write the API key file"):
        store.add("ci")


# The command line


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No smart-agent variables, no .env; the data folder comes from SMART_AGENT_DATA_DIR."""
    monkeypatch.chdir(tmp_path)
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    monkeypatch.setenv("SMART_AGENT_DATA_DIR", str(data))
    return data


def invoke(*args: str) -> Any:
    return runner.invoke(cli.app, ["api-keys", *args], catch_exceptions=False)


def test_cli_add_when_name_new_then_key_alone_on_stdout_and_note_on_stderr(env: Path) -> None:
    result = invoke("add", "ci")
    assert result.exit_code == 0, result.stderr
    key = result.stdout.strip()
    assert result.stdout == key + "\n" and key.startswith("sa-")
    assert "only this once" in result.stderr and key not in result.stderr
    path = env / KEYS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key not in path.read_text()
    assert KeyStore(path).verify(key) == "ci"


def test_cli_add_when_data_dir_flag_then_beats_the_environment(env: Path, tmp_path: Path) -> None:
    result = invoke("add", "ci", "--data-dir", str(tmp_path / "flag"))
    assert result.exit_code == 0
    assert KeyStore(tmp_path / "flag" / KEYS_FILE).verify(result.stdout.strip()) == "ci"
    assert not (env / KEYS_FILE).exists()


@pytest.mark.parametrize(
    ("setup", "args", "expected"),
    [
        ([], ["add", "a b"], "invalid key name 'a b'"),
        ([["add", "ci"]], ["add", "ci"], "'ci' exists already"),
        ([], ["remove", "ghost"], "no API key named 'ghost'"),
        ([], ["add", "ci", "--data-dir", "relative"], "--data-dir"),
    ],
)
def test_cli_when_bad_name_then_exit_2_with_one_line(
    env: Path, setup: list[list[str]], args: list[str], expected: str
) -> None:
    for step in setup:
        assert invoke(*step).exit_code == 0
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_cli_list_when_keys_then_names_and_times_but_no_keys(env: Path) -> None:
    key = invoke("add", "ci").stdout.strip()
    invoke("add", "laptop")
    result = invoke("list")
    assert result.exit_code == 0
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [row[0] for row in rows] == ["ci", "laptop"]
    assert all(row[1].startswith("20") for row in rows)
    assert key not in result.stdout + result.stderr


def test_cli_list_when_no_keys_then_empty_stdout_and_a_hint(env: Path) -> None:
    result = invoke("list")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "smart-agent api-keys add NAME" in result.stderr
    assert not env.exists()  # listing creates nothing


def test_cli_remove_when_known_then_gone_from_the_list(env: Path) -> None:
    key = invoke("add", "ci").stdout.strip()
    result = invoke("remove", "ci")
    assert result.exit_code == 0
    assert invoke("list").stdout == ""
    assert KeyStore(env / KEYS_FILE).verify(key) is None


@pytest.mark.parametrize("args", [["list"], ["add", "x"], ["remove", "x"]])
def test_cli_when_key_file_corrupt_then_exit_2_naming_the_file(env: Path, args: list[str]) -> None:
    env.mkdir()
    (env / KEYS_FILE).write_text("{")
    result = invoke(*args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(env / KEYS_FILE) in lines[0] and "not valid JSON" in lines[0]


def test_cli_help_when_asked_then_lists_the_commands_and_the_data_dir() -> None:
    result = runner.invoke(cli.app, ["api-keys", "--help"], catch_exceptions=False)
    assert result.exit_code == 0
    for command in ["add", "list", "remove"]:
        assert command in result.stdout
    result = runner.invoke(cli.app, ["api-keys", "add", "--help"], catch_exceptions=False)
    assert "--data-dir" in result.stdout and "SMART_AGENT_DATA_DIR" in result.stdout
