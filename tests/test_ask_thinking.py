"""`smart-agent ask` and the model's thinking: hidden with a line saying how long, shown, moved."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from smart_agent import cli
from smart_agent.api.ask_output import DIM, PLAIN, Printer
from smart_agent.config import ENV_VARS
from tests.harness import clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens, think_tokens

runner = CliRunner()
THINKING = "".join(think_tokens(30))
ANSWER = "".join(script_tokens(10))


@pytest.fixture(scope="module")
def base(scripted: ScriptedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One app for this module, asking the model for a reasoning effort."""
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_REASONING_EFFORT="low")
    log_dir: Path = tmp_path_factory.mktemp("ask-thinking")
    with running_app("--base-url", scripted.url, "--model", MODEL_ID, env=env, log_dir=log_dir) as (url, _):
        yield url


@pytest.fixture(autouse=True)
def no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No smart-agent variable from this environment and no .env: each test says what it sets."""
    monkeypatch.chdir(tmp_path)
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def ask(*args: str) -> Any:
    return runner.invoke(cli.app, ["ask", *args], catch_exceptions=False)


def test_ask_when_the_model_thinks_then_hidden_with_one_line_saying_how_long(base: str) -> None:
    result = ask("#script think=30 tokens=10 rate=400", "--url", base)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ANSWER
    assert re.fullmatch(r"thought for \d\.\d s\n", result.stderr), result.stderr  # under 10 s: a decimal
    quiet = ask("#script think=30 tokens=10 rate=400", "--url", base, "--quiet")
    assert (quiet.stdout, quiet.stderr) == (ANSWER, "")


@pytest.mark.parametrize("style", ["content", "tags"])
def test_ask_when_showing_thinking_then_it_streams_on_stderr_ended_by_a_newline(
    base: str, style: str
) -> None:
    result = ask(f"#script think=30 think_style={style} tokens=10 rate=400", "--url", base, "--show-thinking")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (ANSWER if style == "content" else ANSWER.lstrip())
    assert result.stderr == THINKING + "\n"  # not a terminal: no ANSI codes


def test_ask_when_the_thinking_was_printed_as_text_then_a_line_says_so(base: str) -> None:
    result = ask("#script think=30 think_style=close tokens=10 rate=400", "--url", base)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == THINKING + ANSWER.lstrip(), "printed text is not taken back"
    moved, thought = result.stderr.splitlines()
    assert moved == (
        f"(the last {len(THINKING)} characters above were the model's thinking; "
        "start the app with --think-tags prefilled for this model)"
    )
    assert re.fullmatch(r"thought for \d\.\d s", thought)
    quiet = ask("#script think=30 think_style=close tokens=10 rate=400", "--url", base, "--quiet")
    assert (quiet.stdout, quiet.stderr) == (THINKING + ANSWER.lstrip(), "")


def test_ask_when_the_app_sends_a_notice_then_it_goes_to_stderr(base: str) -> None:
    result = ask("#script tokens=3 effort_refused=1", "--url", base)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "".join(script_tokens(3))
    (notice,) = result.stderr.splitlines()
    assert "does not accept a reasoning effort" in notice


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _printer(*, tty: bool = False, show: bool = False) -> tuple[Printer, _Stream, _Stream, _Clock]:
    out, err, clock = _Stream(tty), _Stream(tty), _Clock()
    return Printer(out, err, show_thinking=show, clock=clock), out, err, clock


@pytest.mark.parametrize(
    ("last", "said"), [(3.44, "3.4"), (9.9, "9.9"), (9.96, "10"), (12.4, "12"), (75.6, "76")]
)
def test_printer_when_thinking_ends_then_its_time_in_seconds_whole_from_10_s_on(
    last: float, said: str
) -> None:
    printer, out, err, clock = _printer()
    clock.t = 1.0
    printer.thinking("Let me see.")
    clock.t = 1.0 + last
    printer.thinking(" Yes.")
    clock.t = 100.0  # the answer comes later: the time is the thinking's, first to last
    printer.token("4")
    assert (out.getvalue(), err.getvalue()) == ("4", f"thought for {said} s\n")
    assert printer.reasoning == "Let me see. Yes."


def test_printer_when_showing_thinking_in_a_terminal_then_dimmed_then_a_newline_before_the_answer() -> None:
    printer, out, err, _ = _printer(tty=True, show=True)
    printer.thinking("Let me")
    printer.thinking(" see.")
    printer.token("4")
    printer.finish()
    assert err.getvalue() == f"{DIM}Let me{PLAIN}{DIM} see.{PLAIN}\n"
    assert out.getvalue() == "4\n"


def test_printer_when_a_tool_is_called_after_thinking_then_the_thinking_line_comes_first() -> None:
    printer, _, err, clock = _printer()
    printer.thinking("A tool helps.")
    clock.t = 2.0
    printer.thinking(" Calling it.")
    printer.tool_call({"name": "calculator", "arguments": "{}"})
    assert err.getvalue().splitlines() == ["thought for 2.0 s", "tool calculator({})"]


def test_printer_when_a_snapshot_carries_thinking_then_the_same_rules_apply() -> None:
    hidden, out, err, _ = _printer()
    hidden.thinking("Let me")
    hidden.snapshot("The answer", "Let me see.")
    assert (out.getvalue(), err.getvalue()) == ("The answer", "thought for 0.0 s\n")
    assert hidden.reasoning == "Let me see."

    shown, out, err, _ = _printer(show=True)
    shown.thinking("Let me")
    shown.snapshot("The answer", "Let me see.")
    assert (out.getvalue(), err.getvalue()) == ("The answer", "Let me see.\n")


def test_printer_when_text_moves_to_the_thinking_then_a_note_and_it_is_timed_from_its_first_piece() -> None:
    printer, out, err, clock = _printer()
    printer.token("Hmm, six")
    clock.t = 3.0
    printer.token(" times seven")
    clock.t = 5.0
    printer.moved(len("Hmm, six times seven"))
    printer.thinking("\n")
    printer.token("42")
    assert out.getvalue() == "Hmm, six times seven42"
    assert err.getvalue().splitlines()[1] == "thought for 5.0 s"
    assert (printer.text, printer.reasoning) == ("42", "Hmm, six times seven\n")


def test_help_when_asked_then_shows_the_show_thinking_option() -> None:
    result = runner.invoke(cli.app, ["ask", "--help"])
    assert "--show-thinking" in result.stdout
