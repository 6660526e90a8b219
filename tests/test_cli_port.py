"""A port already in use: the real command exits 1 with one line before anything starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from smart_agent.errors import ListenError
from smart_agent.llm.local_server import free_port
from smart_agent.web.port import check_port, port_holder
from tests.harness import ROOT, clean_env

pytestmark = pytest.mark.slow  # starts processes: not in `make test-fast`


def _chainlit(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[bytes]:
    # No key and no URL: were the port checked late, the embedded model would start first and say so.
    env = clean_env(SMART_AGENT_DATA_DIR=str(tmp_path / "data"))
    return subprocess.run(
        [sys.executable, "-m", "smart_agent", "chainlit", "--headless", *flags],
        cwd=ROOT,
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


def test_port_when_another_process_listens_then_exit_1_naming_port_and_holder_before_anything_starts(
    tmp_path: Path,
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = _chainlit(tmp_path, "--port", str(port))
    holder = f"{psutil.Process().name()}, pid {os.getpid()}"
    assert done.returncode == 1
    assert done.stderr.decode() == f"Error: port {port} is in use; pass --port N (held by {holder})\n"
    assert done.stdout == b""  # no model started, no URL announced


def test_port_when_held_on_every_interface_then_loopback_is_refused_too(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("0.0.0.0", 0))
        held.listen()
        port = held.getsockname()[1]
        done = _chainlit(tmp_path, "--port", str(port))
    assert done.returncode == 1
    assert done.stderr.decode().startswith(f"Error: port {port} is in use; pass --port N")


def test_port_when_taken_by_a_socket_no_process_listens_on_then_in_use_without_naming_anyone() -> None:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))  # bound, not listening: the OS names no listener
        port = bound.getsockname()[1]
        assert port_holder(port) is None
        with pytest.raises(ListenError) as refused:
            check_port("127.0.0.1", port)
    assert str(refused.value) == f"port {port} is in use; pass --port N"


def test_port_when_free_then_check_passes_and_leaves_it_free() -> None:
    port = free_port()
    check_port("127.0.0.1", port)
    check_port("127.0.0.1", port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
