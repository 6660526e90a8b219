"""The JWT secret file: made once (0600), then read; concurrent starts agree; refused if exposed."""

import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from smart_agent.errors import SecretFileError
from smart_agent.history.secret import SECRET_FILE, jwt_secret


def test_jwt_secret_when_first_used_then_file_0600_with_a_long_random_secret(tmp_path: Path) -> None:
    data = tmp_path / "data"
    secret = jwt_secret(data)
    assert len(secret) >= 64 and secret.isascii()
    path = data / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == secret
    assert sorted(p.name for p in data.iterdir()) == [SECRET_FILE]  # no temporary file left behind


def test_jwt_secret_when_used_again_then_the_same_secret_and_file_untouched(tmp_path: Path) -> None:
    first = jwt_secret(tmp_path)
    written = (tmp_path / SECRET_FILE).stat()
    assert jwt_secret(tmp_path) == first
    again = (tmp_path / SECRET_FILE).stat()
    assert (again.st_ino, again.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)


def test_jwt_secret_when_other_folders_then_different_secrets(tmp_path: Path) -> None:
    assert jwt_secret(tmp_path / "a") != jwt_secret(tmp_path / "b")


def test_jwt_secret_when_many_start_at_once_then_all_agree_on_one_secret(tmp_path: Path) -> None:
    workers = 16
    for round_ in range(20):
        folder = tmp_path / str(round_)
        barrier = threading.Barrier(workers)

        def start(folder: Path = folder, barrier: threading.Barrier = barrier) -> str:
            barrier.wait(timeout=30)
            return jwt_secret(folder)

        with ThreadPoolExecutor(workers) as pool:
            secrets = {future.result(timeout=60) for future in [pool.submit(start) for _ in range(workers)]}
        assert secrets == {(folder / SECRET_FILE).read_text().strip()}
        assert sorted(p.name for p in folder.iterdir()) == [SECRET_FILE]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_jwt_secret_when_file_readable_by_others_then_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    secret = jwt_secret(tmp_path)
    (tmp_path / SECRET_FILE).chmod(mode)
    with pytest.raises(SecretFileError, match=f"mode {mode:04o}.*chmod 600") as caught:
        jwt_secret(tmp_path)
    assert secret not in str(caught.value)


def test_jwt_secret_when_file_is_a_symlink_then_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("s" * 64)
    elsewhere.chmod(0o600)
    data = tmp_path / "data"
    data.mkdir()
    (data / SECRET_FILE).symlink_to(elsewhere)
    with pytest.raises(SecretFileError, match="cannot read the JWT secret"):
        jwt_secret(data)


def test_jwt_secret_when_file_empty_then_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / SECRET_FILE
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    with pytest.raises(SecretFileError, match="empty or too short: delete it"):
        jwt_secret(tmp_path)


def test_jwt_secret_when_folder_cannot_be_created_then_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SecretFileError, match=r"JWT secret .*file/data/jwt-secret.: Not a directory"):
        jwt_secret(blocker / "data")
