"""A throwaway PostgreSQL 15 server (Debian's `postgresql` package) on a free loopback port."""

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_ROOT = Path("/usr/lib/postgresql")


def _pg_bin() -> Path:
    """Debian's server binaries: version 15 (bookworm) if installed, else the newest installed."""
    versions = sorted(
        (int(path.name) for path in PG_ROOT.glob("*") if path.name.isdigit()), key=lambda v: (v != 15, -v)
    )
    return PG_ROOT / str(versions[0] if versions else 15) / "bin"


PG_BIN = _pg_bin()
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class PostgresServer:
    """A running server: trust authentication for the `postgres` user on 127.0.0.1:port."""

    port: int

    def url(self, database: str = "postgres") -> str:
        """A `postgresql://` URL as a user would write it."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: as root, run it as Debian's `postgres` user.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def postgres_server(durable: bool = False) -> Iterator[PostgresServer]:
    """Start a fresh cluster in a temporary folder, yield it, stop it and delete it.

    Tests run it with fsync off; `durable` keeps PostgreSQL's defaults (for benchmarks).
    """
    for tool in ("initdb", "pg_ctl"):
        if not (PG_BIN / tool).exists():
            pytest.fail(f"{PG_BIN / tool} is missing: install Debian's postgresql package (make system-deps)")
    root = Path(tempfile.mkdtemp(prefix="smart-agent-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()
    pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run(
            _as_server_user(
                [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_S,
        )
        options = f"-p {port} -c listen_addresses=127.0.0.1 -k {sockets}"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run(
            _as_server_user([*pg_ctl, "-o", options, "-l", str(root / "server.log"), "-w", "start"]),
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_S,
        )
        yield PostgresServer(port)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_server_user([*pg_ctl, "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                timeout=START_TIMEOUT_S,
            )
        shutil.rmtree(root, ignore_errors=True)
