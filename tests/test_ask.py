"""`smart-agent ask` against the real app and the scripted model, directly and through a dropping proxy."""

from __future__ import annotations

import io
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from smart_agent import cli
from smart_agent.api.ask import MAX_BACKOFF, MAX_STALL, Ask, AskError, Printer
from smart_agent.config import ENV_VARS
from smart_agent.llm.local_server import free_port
from tests.api_client import get_run, start_run
from tests.dropping_proxy import DroppingProxy
from tests.harness import ROOT, clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens

MAX_RUNS = 3
MAX_STREAMS = 4
runner = CliRunner()


@pytest.fixture(scope="module")
def proxy() -> Iterator[DroppingProxy]:
    """The dropping proxy, started first: the app must accept its origin."""
    with DroppingProxy().running() as proxy:
        yield proxy


@pytest.fixture(scope="module")
def base(
    scripted: ScriptedServer, proxy: DroppingProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One app for this module, reachable directly (its URL) and through `proxy`."""
    env = clean_env(
        OPENAI_API_KEY="test-key",
        SMART_AGENT_ALLOWED_ORIGINS=proxy.url,
        SMART_AGENT_API_MAX_RUNS=str(MAX_RUNS),
        SMART_AGENT_API_MAX_STREAMS=str(MAX_STREAMS),
    )
    log_dir: Path = tmp_path_factory.mktemp("ask")
    with running_app("--base-url", scripted.url, "--model", MODEL_ID, env=env, log_dir=log_dir) as (url, _):
        proxy.upstream_port = int(url.rsplit(":", 1)[1])
        yield url


@pytest.fixture(autouse=True)
def no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No smart-agent variable from this environment and no .env: each test says what it sets."""
    monkeypatch.chdir(tmp_path)
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def ask(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(cli.app, ["ask", *args], catch_exceptions=False, env=env)


def _words(count: int) -> str:
    return "".join(script_tokens(count))


def test_ask_when_the_run_is_done_then_stdout_is_the_exact_reply_and_exit_0(base: str) -> None:
    result = ask("hello #script tokens=60 rate=300", "--url", base)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == _words(60)
    assert result.stderr == ""


def test_ask_when_url_and_key_come_from_the_environment_then_used(base: str, proxy: DroppingProxy) -> None:
    env = {"SMART_AGENT_URL": proxy.url + "/", "SMART_AGENT_API_KEY": "sk-test"}
    result = ask("#script tokens=5", env=env)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == _words(5)
    sent = proxy.seen("/api/v1/runs")[-2:]
    assert [request.method for request in sent] == ["POST", "GET"]
    assert all(request.header("authorization") == "Bearer sk-test" for request in sent)


# Byte offsets into each events response (headers included, ~900 bytes) where the proxy cuts it:
# in the headers, right at the first event, and at a few points of later events.
CUTS = [(100,), (960,), (1100, 1250), (1000, 1400, 1100), (1333, 977, 1500)]


@pytest.mark.parametrize("cuts", CUTS, ids=["-".join(map(str, c)) for c in CUTS])
def test_ask_when_the_stream_is_cut_mid_run_then_it_resumes_and_stdout_is_the_exact_reply(
    base: str, proxy: DroppingProxy, cuts: tuple[int, ...]
) -> None:
    before = len(proxy.seen())
    proxy.plan(*cuts)
    result = ask("#script tokens=400 rate=80", "--url", proxy.url)
    assert result.exit_code == 0, result.stderr
    assert proxy.planned() == 0, "every planned cut happened, each before the run's end"
    assert result.stdout == _words(400), "nothing missing, nothing repeated"
    reads = proxy.seen()[before:]
    assert len(reads) == len(cuts) + 1
    resumed = [request.header("last-event-id") for request in reads[1:]]
    if cuts[0] > 1000:  # the first cut came after some events: the resume names the last one
        assert resumed[0] is not None and int(resumed[0]) > 0
    assert result.stderr.count("resuming") == len(cuts)


def test_ask_when_the_stream_keeps_dropping_then_gives_up_after_the_retries_with_one_line(
    base: str, proxy: DroppingProxy
) -> None:
    proxy.plan(100, 100, 100)
    result = ask("#script tokens=20 rate=50", "--url", proxy.url, "--retries", "2", "--quiet")
    assert proxy.planned() == 0
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "could not resume" in lines[0] and "3 tries" in lines[0]


def test_ask_when_no_event_arrives_for_too_long_then_stops_resuming_whatever_the_retries(
    base: str, proxy: DroppingProxy
) -> None:
    sleeps: list[float] = []
    # Time passes only in the waits between reconnects: 1, 2, 4, 8, 8, ... s. After the 19th
    # failed attempt 127 s have passed without a new event, more than MAX_STALL.
    proxy.plan(*[100] * 19)
    with httpx.Client(timeout=10) as client:
        session = Ask(
            proxy.url,
            client,
            Printer(io.StringIO(), io.StringIO()),
            retries=100,
            sleep=sleeps.append,
            clock=lambda: sum(sleeps),
        )
        with pytest.raises(AskError, match=r"could not resume it \(19 tries, 127 s without a new event\)"):
            session.follow(session.start("#script tokens=20"))
    assert proxy.planned() == 0
    assert sleeps[:5] == [1.0, 2.0, 4.0, 8.0, 8.0] and max(sleeps) == MAX_BACKOFF
    assert sum(sleeps[:-1]) <= MAX_STALL < sum(sleeps)


class _Lines(io.StringIO):
    """A stderr that tells a waiting test when a line with `needle` was written."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.seen = threading.Event()

    def write(self, text: str) -> int:
        if self.needle in text:
            self.seen.set()
        return super().write(text)


def test_ask_when_the_app_has_no_stream_slot_free_then_waits_retry_after_and_resumes(base: str) -> None:
    long = start_run(base, "#script tokens=2000 rate=20")
    out, err = io.StringIO(), _Lines("limit_exceeded")
    outcome: list[int] = []
    with httpx.Client(timeout=10) as client:
        url = f"{base}/api/v1/runs/{long['id']}/events"
        session = Ask(base, client, Printer(out, err))
        thread = threading.Thread(
            target=lambda: outcome.append(session.follow(session.start("#script tokens=30 rate=100")))
        )
        held = [client.send(client.build_request("GET", url), stream=True) for _ in range(MAX_STREAMS)]
        try:
            assert all(response.status_code == 200 for response in held)
            thread.start()
            assert err.seen.wait(10), "ask was refused a stream"
        finally:
            for response in held:
                response.close()
            httpx.post(f"{base}/api/v1/runs/{long['id']}/cancel")
            if thread.ident is not None:
                thread.join(timeout=30)
    assert outcome == [0]
    assert out.getvalue() == _words(30)
    (note,) = err.getvalue().splitlines()
    assert note.startswith("the app refused the stream for now (HTTP 429, limit_exceeded: ")
    assert note.endswith("; resuming in 2 s"), "the server's Retry-After, over the 1 s backoff"


def test_ask_when_a_tool_is_called_then_short_lines_on_stderr_and_the_reply_on_stdout(base: str) -> None:
    result = ask("#script tool=calculator expr=6*7 tokens=5", "--url", base)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Result: 42"  # what the scripted model answers after a tool
    call, answer = result.stderr.splitlines()
    assert call.startswith("tool calculator(") and "6*7" in call
    assert answer == "tool calculator -> 42"
    quiet = ask("#script tool=calculator expr=6*7 tokens=5", "--url", base, "--quiet")
    assert quiet.stdout == "Result: 42" and quiet.stderr == ""


def test_ask_when_the_run_ends_in_an_error_event_then_exit_1_naming_the_code(base: str) -> None:
    result = ask("#script tokens=50 cut=10 rate=200", "--url", base, "--quiet")
    assert result.exit_code == 1
    assert result.stdout == _words(10), "the partial reply stays"
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: the run failed [model_error]: ")


@pytest.mark.timing
def test_ask_when_no_app_listens_then_fails_within_seconds_naming_the_command_that_starts_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "smart_agent", "ask", "hello", "--url", url],
        capture_output=True,
        cwd=ROOT,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 1
    (line,) = done.stderr.decode().splitlines()
    assert line.startswith(f"Error: no smart-agent at {url}; start it with `smart-agent chainlit`")
    assert "Error" not in line[len("Error:") :] and "Connect" not in line  # no exception class
    assert seconds < 8  # ~2 s of trying plus the interpreter's start; it took 24 s before


def test_ask_when_the_app_accepts_but_times_out_connecting_then_every_retry_is_used() -> None:
    sleeps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    session = Ask(
        "http://app.test", client, Printer(io.StringIO(), io.StringIO()), retries=3, sleep=sleeps.append
    )
    with pytest.raises(AskError, match="tried 4 times"):
        session.start("hello")
    assert len(sleeps) == 3  # a slow app gets its retries, not the quick verdict for a closed port


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--url", "localhost:8000"], {}, "'localhost:8000' for --url"),
        (["--url", "ftp://127.0.0.1:8000"], {}, "'ftp://127.0.0.1:8000' for --url"),
        (["--url", "http://127.0.0.1:99999"], {}, "for --url"),
        (["--url", "http://127.0.0.1:8000?x=1"], {}, "for --url"),
        ([], {"SMART_AGENT_URL": "http//nowhere"}, "for SMART_AGENT_URL (from the environment)"),
        (["--retries", "-1"], {}, "'-1' for --retries"),
    ],
)
def test_ask_when_an_argument_is_bad_then_exit_2_naming_it(
    args: list[str], env: dict[str, str], named: str
) -> None:
    result = ask("hello", *args, env=env)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: invalid value") and named in line


def test_ask_when_the_question_is_empty_then_exit_2() -> None:
    result = ask("  ")
    assert result.exit_code == 2 and "question" in result.stderr


def test_ask_when_the_app_refuses_the_request_then_one_line_naming_its_message(base: str) -> None:
    bad_model = ask("hello", "--url", base, "--model", "m" * 300)
    assert bad_model.exit_code == 2
    (line,) = bad_model.stderr.splitlines()
    assert "(HTTP 400, invalid_request): model: must be a non-empty string" in line
    busy = [start_run(base, "#script tokens=2000 rate=20") for _ in range(MAX_RUNS)]
    try:
        refused = ask("hello", "--url", base)
    finally:
        for run in busy:
            httpx.post(f"{base}/api/v1/runs/{run['id']}/cancel")
    assert refused.exit_code == 1
    (line,) = refused.stderr.splitlines()
    assert "(HTTP 429, limit_exceeded): 3 runs are running" in line and "retry after" in line


def test_ask_when_the_url_is_not_a_smart_agent_app_then_exit_1_with_one_line(
    scripted: ScriptedServer,
) -> None:
    result = ask("hello", "--url", scripted.url.removesuffix("/v1"))
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: the app refused the question (HTTP 404, http_404)")


def test_ask_when_interrupted_then_cancels_the_run_and_exits_130(base: str, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "smart_agent", "ask", "#script tokens=2000 rate=40", "--url", base]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=clean_env(PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "ask printed nothing within 30 s"
        first = os.read(process.stdout.fileno(), 7)  # the first token, one write: the run streams
        assert first == b" w00000"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "Traceback" not in stderr.decode()
    (line,) = stderr.decode().splitlines()
    assert line.startswith("cancelled run run_")
    state = get_run(base, line.split()[-1]).json()
    assert state["status"] == "cancelled"
    assert state["text"].startswith((first + stdout).decode())


def test_ask_when_stdout_is_closed_then_cancels_the_run_and_exits_1_without_a_traceback(
    base: str, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "smart_agent", "ask", "#script tokens=2000 rate=40", "--url", base]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=clean_env(PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "ask printed nothing within 30 s"
        process.stdout.close()  # like `smart-agent ask ... | head -c 7`
        stderr = process.stderr.read().decode()
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1
    closed, cancelled = stderr.splitlines()
    assert closed == "stdout was closed" and cancelled.startswith("cancelled run run_")
    assert get_run(base, cancelled.split()[-1]).json()["status"] == "cancelled"


class _Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_printer_when_a_snapshot_extends_the_printed_text_then_only_the_rest_is_printed() -> None:
    out, err = _Pipe(), _Pipe()
    printer = Printer(out, err)
    printer.token("Hello")
    printer.snapshot("Hello, wor")
    printer.token("ld")
    assert out.getvalue() == "Hello, world" and err.getvalue() == ""


def test_printer_when_a_snapshot_differs_from_the_printed_text_then_a_note_and_the_text_in_full() -> None:
    out, err = _Pipe(), _Pipe()
    printer = Printer(out, err)
    printer.token("Hello")
    printer.snapshot("Help me")
    assert out.getvalue() == "Hello\nHelp me"
    assert "replaced by the server's copy" in err.getvalue()
    assert printer.text == "Help me"


def test_help_when_asked_then_shows_the_options_and_their_variables() -> None:
    result = runner.invoke(cli.app, ["ask", "--help"])
    text = " ".join(result.stdout.split())
    for note in ["--url URL", "env SMART_AGENT_URL", "--api-key KEY", "env SMART_AGENT_API_KEY", "--quiet"]:
        assert note in text
