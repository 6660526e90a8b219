"""The JWT secret that signs login tokens: made once in the data folder (0600), read afterwards."""

import os
import secrets
import stat
from pathlib import Path

from smart_agent.errors import SecretFileError

SECRET_FILE = "jwt-secret"
"""The secret's file name in the data folder."""

_MIN_CHARS = 32


def jwt_secret(data_dir: Path) -> str:
    """The data folder's JWT secret, created on first use; concurrent first uses agree on one."""
    path = data_dir / SECRET_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    try:
        _create(path)
    except OSError as exc:
        raise SecretFileError(f"cannot create the JWT secret {str(path)!r}: {exc.strerror or exc}") from None
    return _read(path)


def _create(path: Path) -> None:
    # Written in full under a private name, then linked into place: the link fails if another process
    # got there first (no replace), and nobody ever reads a half-written secret.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (secrets.token_urlsafe(48) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: theirs is the secret
    finally:
        temporary.unlink(missing_ok=True)


def _read(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise SecretFileError(f"cannot read the JWT secret {str(path)!r}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        _check(path, info)
        with os.fdopen(os.dup(fd), "rb") as file:
            text = file.read(4096).decode("ascii", errors="replace").strip()
    finally:
        os.close(fd)
    if len(text) < _MIN_CHARS:
        raise SecretFileError(
            f"the JWT secret {str(path)!r} is empty or too short: delete it to make a new one "
            "(everyone signed in must sign in again)"
        )
    return text


def _check(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise SecretFileError(f"the JWT secret {str(path)!r} is not a regular file")
    if info.st_uid != os.getuid():
        raise SecretFileError(f"the JWT secret {str(path)!r} belongs to another user: delete it or chown it")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise SecretFileError(
            f"the JWT secret {str(path)!r} has mode {mode:04o}, so other users may read it: "
            f"run `chmod 600 {path}` or delete it to make a new one"
        )
