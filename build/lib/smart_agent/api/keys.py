"""API keys: made once, stored only as hashes in `<data dir>/api-keys.json`, checked per request."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smart_agent.errors import SmartAgentError

KEYS_FILE = "api-keys.json"
KEY_PREFIX = "sa-"
NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HASH = re.compile(r"[0-9a-f]{64}")
_FORMAT_VERSION = 1


class ApiKeyError(SmartAgentError):
    """A key name that is not allowed, already taken or unknown; the message names it."""


class KeyFileError(SmartAgentError):
    """The key file cannot be read or written; the message names the file and what is wrong."""


@dataclass(frozen=True)
class _Entry:
    name: str
    sha256: str
    created: datetime


def _digest(key: str) -> str:
    # A plain SHA-256 is enough here, unlike for passwords: a key is 256 random bits from
    # `secrets`, so there is no dictionary to try and brute force is out of reach; a slow hash
    # (scrypt, bcrypt) would only add its cost to every request.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(name: str) -> str:
    """`name` if it may name a key, else ApiKeyError saying what is allowed."""
    if not NAME_PATTERN.fullmatch(name):
        raise ApiKeyError(f"invalid key name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-'")
    return name


class KeyStore:
    """The API keys of one data folder; re-reads its file whenever it changed on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._signature: tuple[int, int, int] | None = None
        self._entries: list[_Entry] = []

    def add(self, name: str) -> str:
        """Make a key named `name`, store its hash and return the key (it is never shown again)."""
        check_name(name)
        entries = self._load()
        if any(entry.name == name for entry in entries):
            raise ApiKeyError(f"an API key named {name!r} exists already: remove it first or pick another")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        self._save([*entries, _Entry(name, _digest(key), datetime.now(UTC).replace(microsecond=0))])
        return key

    def names(self) -> list[tuple[str, datetime]]:
        """Each key's name and when it was made, oldest first."""
        return [(entry.name, entry.created) for entry in self._load()]

    def remove(self, name: str) -> None:
        """Forget the key named `name`; requests carrying it are refused from now on."""
        entries = self._load()
        kept = [entry for entry in entries if entry.name != name]
        if len(kept) == len(entries):
            raise ApiKeyError(f"no API key named {name!r}; `smart-agent api-keys list` shows the names")
        self._save(kept)

    def verify(self, key: str) -> str | None:
        """The name of the key `key`, or None if it is not one of them."""
        digest = _digest(key)
        found = None
        for entry in self._load():  # every entry is compared, so the time says nothing of which matched
            if hmac.compare_digest(entry.sha256, digest):
                found = entry.name
        return found

    def configured(self) -> bool:
        """True when at least one key exists."""
        return bool(self._load())

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error(exc.strerror or str(exc)) from None
        # The inode too: a replaced file may keep the old size and, on coarse clocks, the old mtime.
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _load(self) -> list[_Entry]:
        signature = self._stat()
        if signature == self._signature:
            return self._entries
        if signature is None:
            entries: list[_Entry] = []
        else:
            try:
                raw = self.path.read_bytes()
            except OSError as exc:
                raise self._error(exc.strerror or str(exc)) from None
            entries = self._parse(raw)
        self._signature, self._entries = signature, entries
        return entries

    def _parse(self, raw: bytes) -> list[_Entry]:
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError too
            raise self._corrupt("it is not valid JSON") from None
        items = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(items, list):
            raise self._corrupt('it has no "keys" list')
        entries = []
        for index, item in enumerate(items):
            entry = _entry(item)
            if entry is None:
                raise self._corrupt(f"key entry {index} is not a name, a sha256 and a created time")
            entries.append(entry)
        return entries

    def _save(self, entries: list[_Entry]) -> None:
        document = {
            "version": _FORMAT_VERSION,
            "keys": [{"name": e.name, "sha256": e.sha256, "created": e.created.isoformat()} for e in entries],
        }
        data = (json.dumps(document, indent=2) + "\n").encode()
        # mkstemp makes the file 0600 in the same folder, so os.replace swaps it in atomically:
        # a reader sees the old list or the new one, never half a file.
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{KEYS_FILE}.", suffix=".tmp", dir=self.path.parent)
        except OSError as exc:
            raise self._error(exc.strerror or str(exc), "write") from None
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise self._error(exc.strerror or str(exc), "write") from None
        self._signature, self._entries = self._stat(), entries

    def _error(self, problem: str, action: str = "read") -> KeyFileError:
        return KeyFileError(f"cannot {action} the API key file {str(self.path)!r}: {problem}")

    def _corrupt(self, problem: str) -> KeyFileError:
        return self._error(f"{problem}; repair it, or delete it to start again with no keys")


def _entry(item: Any) -> _Entry | None:
    if not isinstance(item, dict):
        return None
    name, digest, created = item.get("name"), item.get("sha256"), item.get("created")
    if not (isinstance(name, str) and NAME_PATTERN.fullmatch(name)):
        return None
    if not (isinstance(digest, str) and _HASH.fullmatch(digest) and isinstance(created, str)):
        return None
    try:
        when = datetime.fromisoformat(created)
    except ValueError:
        return None
    return _Entry(name, digest, when)
