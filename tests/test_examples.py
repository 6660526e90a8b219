"""The examples as their readers run them: `chainlit run` on a real server, its page in headless Chromium."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from smart_agent import BatchPolicy
from smart_agent.llm.local_server import free_port
from tests.chat_page import ChatPage, words
from tests.harness import ROOT, clean_env, wait_http
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens

pytestmark = [pytest.mark.e2e, pytest.mark.timing]  # event rates: measured alone

EXAMPLE = ROOT / "examples" / "openai_chat" / "app.py"
SMOOTH_LINE = 'msg = smooth(cl.Message(content=""))'
PLAIN_LINE = 'msg = cl.Message(content="")'
"""The cookbook's line, which the example's one-line change replaces."""
CAP = BatchPolicy().max_events_per_second
TOKENS, RATE = 1000, 500  # two seconds of a fast model: one token every 2 ms
PROMPT = f"#script tokens={TOKENS} rate={RATE}"


@contextmanager
def chainlit_run(app: Path, env: dict[str, str], timeout: float = 60.0) -> Iterator[str]:
    """`chainlit run app.py --headless` in the app's folder on a free port; yield its URL; stop it."""
    port = free_port()
    log = app.parent / "chainlit.log"
    command = [sys.executable, "-m", "chainlit", "run", app.name, "--headless", "--host", "127.0.0.1"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=app.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url, process, log, timeout)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def example_app(folder: Path, smooth: bool) -> Path:
    """The example copied into `folder` (Chainlit writes its config there); without `smooth`, the
    cookbook's app it came from (the one-line change undone)."""
    _, doc, code = EXAMPLE.read_text().split('"""', 2)  # the docstring shows the change as a diff
    assert code.count(SMOOTH_LINE) == 1, "the example's one-line change moved"
    if not smooth:
        code = code.replace(SMOOTH_LINE, PLAIN_LINE).replace("from smart_agent import smooth\n", "")
        assert "smooth" not in code, "the plain app still uses the wrapper"
    source = f'"""{doc}"""{code}'
    app = folder / "app.py"
    app.write_text(source)
    return app


def peak_rate(times: list[float], window: float = 1.0) -> int:
    """The most events that arrived within any `window` seconds (a half-open window: events exactly
    1/CAP apart make CAP per second)."""
    peak, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        peak = max(peak, end - start + 1)
    return peak


@contextmanager
def example_page(
    browser: Browser, scripted: ScriptedServer, folder: Path, smooth: bool
) -> Iterator[tuple[ChatPage, list[float]]]:
    """The example running, its page open, the prompt sent and its turn ended (bounded waits)."""
    app = example_app(folder, smooth)
    env = clean_env(
        OPENAI_BASE_URL=scripted.url,
        OPENAI_API_KEY="test-key",
        OPENAI_MODEL=MODEL_ID,
        CHAINLIT_APP_ROOT=str(folder),
    )
    with chainlit_run(app, env) as url:
        chat = ChatPage.open(browser, url)
        try:
            # The browser's own arrival times (CDP), not Playwright's: those are stamped when
            # Python gets round to the event, which bunches events up.
            cdp = chat.page.context.new_cdp_session(chat.page)
            arrivals: list[float] = []
            cdp.on("Network.webSocketFrameReceived", lambda event: _arrived(event, arrivals))
            cdp.send("Network.enable")
            chat.send(PROMPT)
            chat.wait_turns(timeout=60)
            yield chat, arrivals
        finally:
            chat.close()


def _arrived(event: dict[str, Any], into: list[float]) -> None:
    if str(event["response"]["payloadData"]).startswith('42["stream_token"'):
        into.append(float(event["timestamp"]))


def rate_of(times: list[float]) -> list[float]:
    """The arrival times, after printing their rate (the figures in docs/library.md)."""
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    print(f"{len(times)} stream_token events over {span:.2f} s, peak {peak_rate(times)} in 1 s")
    return times


def test_example_when_wrapped_then_page_gets_at_most_the_cap_and_the_whole_text(
    browser: Browser, scripted: ScriptedServer, tmp_path: Path
) -> None:
    expected = "".join(script_tokens(TOKENS))
    with example_page(browser, scripted, tmp_path, smooth=True) as (chat, arrivals):
        times = rate_of(arrivals)
        # Timed flushes are 1/CAP s apart; `send()` flushes the rest at once (one more), and the
        # server's event loop may send one a little late, closer to the next (one more).
        assert 10 <= len(times) == chat.count("stream_token") <= 3 * CAP, len(times)
        assert peak_rate(times) <= CAP + 2, peak_rate(times)
        final = [p for p in chat.payloads("new_message") if p.get("type") == "assistant_message"]
        assert final[-1]["output"] == expected
        chat.wait_text(expected.split()[-1], timeout=30)
        assert chat.reply_words() == words(expected)


def test_example_when_not_wrapped_then_page_gets_one_event_per_token(
    browser: Browser, scripted: ScriptedServer, tmp_path: Path
) -> None:
    with example_page(browser, scripted, tmp_path, smooth=False) as (chat, arrivals):
        times = rate_of(arrivals)
        # The first token travels in stream_start; the browser's count matches Playwright's.
        assert len(times) == chat.count("stream_token") == TOKENS - 1
        assert peak_rate(times) > 2 * CAP, peak_rate(times)  # the page, not the model, sets this peak
