"""The API's access rule: keys when configured (loopback too), else open on loopback only."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from smart_agent.api.access import OPEN, Access, AccessError
from smart_agent.api.keys import KEYS_FILE, KeyStore

KEY = "key"  # stands for the configured key in the table below


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / KEYS_FILE)


# (keys configured, bound to loopback, Authorization header) -> principal or (status, code)
CASES = [
    (False, True, None, OPEN),
    (False, True, "Bearer anything", OPEN),
    (False, False, None, (403, "api_disabled")),
    (False, False, "Bearer anything", (403, "api_disabled")),
    (True, True, None, (401, "missing_key")),
    (True, True, "", (401, "missing_key")),
    (True, True, "Bearer", (401, "missing_key")),
    (True, True, "Bearer   ", (401, "missing_key")),
    (True, True, "Basic key", (401, "missing_key")),
    (True, True, "Bearer sa-wrong", (401, "invalid_key")),
    (True, False, "Bearer sa-wrong", (401, "invalid_key")),
    (True, True, "Bearer key", "ci"),
    (True, False, "Bearer key", "ci"),
    (True, False, "bearer key", "ci"),
    (True, False, "  BEARER   key  ", "ci"),
]


@pytest.mark.parametrize(("keys", "loopback", "header", "expected"), CASES)
def test_authorize_follows_the_access_table(
    store: KeyStore, keys: bool, loopback: bool, header: str | None, expected: object
) -> None:
    key = store.add("ci") if keys else "unused"
    header = None if header is None else header.replace(KEY, key)
    access = Access(store, loopback=loopback)
    if isinstance(expected, str):
        assert access.authorize(header) == expected
        return
    with pytest.raises(AccessError) as caught:
        access.authorize(header)
    assert (caught.value.status, caught.value.code) == expected
    assert caught.value.headers == ({"WWW-Authenticate": "Bearer"} if expected[0] == 401 else {})
    assert "wrong" not in caught.value.message and "anything" not in caught.value.message


def test_authorize_when_api_off_then_message_says_how_to_turn_it_on(store: KeyStore) -> None:
    with pytest.raises(AccessError) as caught:
        Access(store, loopback=False).authorize(None)
    assert "smart-agent api-keys add NAME" in caught.value.message


def test_authorize_when_key_removed_while_running_then_refused_at_once(store: KeyStore) -> None:
    key = store.add("ci")
    store.add("other")
    access = Access(store, loopback=True)
    assert access.authorize(f"Bearer {key}") == "ci"
    KeyStore(store.path).remove("ci")  # as the CLI would, from another process
    with pytest.raises(AccessError) as caught:
        access.authorize(f"Bearer {key}")
    assert caught.value.status == 401 and key not in caught.value.message


def test_authorize_when_first_key_added_while_running_then_loopback_is_open_no_more(store: KeyStore) -> None:
    access = Access(store, loopback=True)
    assert access.authorize(None) == OPEN
    key = KeyStore(store.path).add("ci")
    with pytest.raises(AccessError):
        access.authorize(None)
    assert access.authorize(f"Bearer {key}") == "ci"


def test_authorize_when_key_file_corrupt_then_500_without_the_path_and_logged(
    store: KeyStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.path.write_text("{")
    with caplog.at_level(logging.ERROR, logger="smart_agent.api"), pytest.raises(AccessError) as caught:
        Access(store, loopback=True).authorize("Bearer sa-x")
    assert (caught.value.status, caught.value.code) == (500, "key_store_error")
    assert str(store.path) not in caught.value.message
    assert str(store.path) in caplog.text
