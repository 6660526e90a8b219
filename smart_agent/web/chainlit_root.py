"""Chainlit's app root for one run: a fresh folder in the data folder linking to the shipped files."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

SHIPPED_ROOT = Path(__file__).with_name("app_root")
"""The app root shipped in the package: `.chainlit/` (config, translations), `public/` and `chainlit.md`."""

# The translations are linked as one folder: Chainlit then finds every file it would copy there
# already present (config.py `init_config`), so it writes none (tests/test_app_root.py checks that
# each of Chainlit's files has a shipped counterpart).
_SHIPPED = (".chainlit/config.toml", ".chainlit/translations", "public", "chainlit.md")
_LOCK = ".lock"
_STAGING = ".new-"

# Chainlit 2.12.0 (chainlit/config.py) fixes its app root once, when chainlit.config is first
# imported, from CHAINLIT_APP_ROOT (else the current folder), and writes into it: `.files/`
# (created at import, deleted whole at shutdown by server.py's lifespan), `.chainlit/config.toml`
# and `chainlit.md` when missing, and a copy of its translations in `.chainlit/translations/`.
# The package folder may be read-only and is shared by every running instance, so it cannot be
# the app root. Each run gets its own folder under `<data folder>/runs/` instead, holding
# symlinks to the shipped files (Chainlit resolves symlinks in its path checks, so `/public/...`
# is served from the package). Chainlit's writes land in that folder, two instances never share
# a `.files/`, and the folder is removed when the app stops. A run that was killed leaves its
# folder behind, no longer locked: the next start removes it.


def _remove_abandoned(runs: Path) -> None:
    for folder in runs.iterdir():
        # A staging folder is not locked yet; it becomes visible only once it is.
        if folder.name.startswith(_STAGING) or not folder.is_dir():
            continue
        try:
            fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:  # another start is removing it right now
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a running instance holds it
        else:
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(fd)


@contextlib.contextmanager
def run_root(data_dir: Path) -> Iterator[Path]:
    """A fresh Chainlit app root under `data_dir/runs/`, locked while in use, removed afterwards."""
    runs = data_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(runs)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING, dir=runs))
    root = runs / f"{os.getpid()}-{staging.name.removeprefix(_STAGING)}"
    lock = os.open(staging / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        # Locked before it is renamed into view, so no other start can take it for abandoned.
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for name in _SHIPPED:
            link = staging / name
            link.parent.mkdir(exist_ok=True)
            link.symlink_to(SHIPPED_ROOT / name)
        staging.rename(root)
        yield root
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        os.close(lock)
