"""`smart-agent ask`: one run on a running app, its reply printed as it streams, resumed after drops.

stdout gets the answer only (ask_output.py prints). The model's thinking is hidden, leaving one line
on stderr ("thought for 12 s") before the answer starts; with --show-thinking it streams to stderr
(dimmed in a terminal). A snapshot's thinking follows the same rules. A `reasoning_moved` event says
that the last characters of the text were thinking after all (a model whose chat template opens
`<think>` in the prompt, so only its `</think>` showed where thinking ended). That text is on stdout
already and cannot be taken back, and holding the answer back until a `</think>` can no longer come
would stall every reply; so ask leaves stdout as it is and says so in one line on stderr, naming the
app's option (--think-tags prefilled) with which the thinking never reaches the answer.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx
from httpx_sse import SSEError, connect_sse

from smart_agent.api.ask_output import Printer, short

PREFIX = "/api/v1"
DEFAULT_RETRY_SECONDS = 1.0
"""The wait before the first reconnect until the server's `retry:` says otherwise."""
MAX_BACKOFF = 8.0
"""The longest wait between two reconnects (the wait doubles after each one without progress)."""
MAX_STALL = 120.0
"""Seconds without a new event after which a dropped stream is not resumed any more."""
READ_TIMEOUT = 45.0
"""Silence that counts as a dropped connection: three of the server's default 15 s heartbeats."""
CONNECT_TIMEOUT = 5.0
CANCEL_TIMEOUT = 5.0
REFUSED_SECONDS = 2.0
"""How long `ask` keeps trying an address where nothing listens (an app still starting) before it
says no app is there; an app that accepts but answers slowly gets the full retries."""
REFUSED_PAUSE = 0.25

EXIT_DONE = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# What a dropped or dead connection raises: resumable. A ConnectError never sent the request.
DROPS: tuple[type[Exception], ...] = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)
NOT_SENT: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout)
TRANSIENT_STATUS = frozenset({429, 502, 503, 504})
"""Answers to an events request that a later attempt may not get (limits, a restarting app)."""


class AskError(Exception):
    """Why ask stops without a `done`: one line for stderr, and the exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Retry(Exception):
    """An events request the server answered with a transient refusal."""

    def __init__(self, reason: str, wait: float) -> None:
        super().__init__(reason)
        self.wait = wait


def _refusal(response: httpx.Response) -> tuple[str, str]:
    """(code, message) of an API error answer; the status line when it is not the API's JSON."""
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
        if error.get("field"):
            message = f"{error['field']}: {message}"
    except (ValueError, KeyError, TypeError):
        code, message = f"http_{response.status_code}", short(response.text or response.reason_phrase)
    return code, message


def _describe(exc: Exception) -> str:
    """What went wrong, as a person says it: no exception class names."""
    if isinstance(exc, httpx.TimeoutException):
        return "it did not answer in time"
    return str(exc).removeprefix("[Errno 111] ") or "the connection failed"


def _refused(exc: Exception) -> bool:
    """Whether nothing listens at the address (the connection was refused, not slow)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


@dataclass
class Ask:
    """Start one run on the app at `base` and follow its events to the end, resuming after drops."""

    base: str
    client: httpx.Client
    printer: Printer
    retries: int = 5
    max_stall: float = MAX_STALL
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    run_id: str | None = None
    last_id: str | None = None
    retry_seconds: float = DEFAULT_RETRY_SECONDS
    _heard_at: float = field(default=0.0, repr=False)

    def start(self, question: str, model: str | None = None) -> str:
        """POST the run; returns its events URL. Retries only while the request cannot be sent."""
        body: dict[str, Any] = {"messages": [{"role": "user", "content": question}]}
        if model is not None:
            body["model"] = model
        url = f"{self.base}{PREFIX}/runs"
        attempts = 0
        began = self.clock()
        while True:
            attempts += 1
            try:
                response = self.client.post(url, json=body)
            except NOT_SENT as exc:
                if _refused(exc):  # nothing listens there: say so soon, not after the retries
                    if self.clock() - began >= REFUSED_SECONDS:
                        raise AskError(
                            f"no smart-agent at {self.base}; start it with `smart-agent chainlit` "
                            "(or point --url / SMART_AGENT_URL at it)"
                        ) from None
                    self.sleep(REFUSED_PAUSE)
                    continue
                if attempts > self.retries:
                    raise AskError(
                        f"cannot reach the app at {self.base} ({_describe(exc)}; tried {attempts} "
                        "times): is `smart-agent chainlit` running there? (--url or SMART_AGENT_URL)"
                    ) from None
                self.sleep(self._backoff(attempts))
                continue
            except httpx.TransportError as exc:  # sent, maybe received: a retry could start it twice
                raise AskError(f"the app at {self.base} did not answer: {_describe(exc)}") from None
            if response.status_code == 201:
                return self._started(response)
            raise self._refused(response, "refused the question")

    def _started(self, response: httpx.Response) -> str:
        try:
            run = response.json()
            self.run_id, events_url = str(run["id"]), str(run["events_url"])
        except (ValueError, KeyError, TypeError):
            events_url = ""
        # A path on the app, never another host (the API key goes with it). The app does not
        # know a path prefix a reverse proxy serves it under; --url includes it.
        if not events_url.startswith("/") or events_url.startswith("//"):
            raise AskError(f"{self.base} is not a smart-agent app: its answer to a run is not one")
        return self.base + events_url

    def follow(self, events_url: str) -> int:
        """Print the run's events until its end; the exit code (0 on `done`, 1 on `error`)."""
        failures = 0
        self._heard_at = self.clock()
        while True:
            wait = 0.0
            seen = self.last_id
            try:
                code = self._read(events_url)
                if code is not None:
                    return code
                reason = "the app closed the stream before the run ended"
            except DROPS as exc:
                reason = f"connection lost ({_describe(exc)})"
            except _Retry as exc:
                reason, wait = f"the app refused the stream for now ({exc})", exc.wait
            if self.last_id != seen:
                failures = 0
            failures += 1
            stalled = self.clock() - self._heard_at
            if failures > self.retries or stalled > self.max_stall:
                raise AskError(
                    f"lost the run's event stream at {self.base} and could not resume it "
                    f"({failures} tries, {stalled:.0f} s without a new event): {reason}"
                )
            delay = max(wait, self._backoff(failures))
            self.printer.note(f"{reason}; resuming in {delay:g} s")
            self.sleep(delay)

    def cancel(self) -> None:
        """Ask the app to cancel the run (Ctrl-C); a failure is only reported."""
        if self.run_id is None:
            return
        try:
            response = self.client.post(
                f"{self.base}{PREFIX}/runs/{self.run_id}/cancel", timeout=CANCEL_TIMEOUT
            )
        except httpx.HTTPError as exc:
            self.printer.line(f"could not cancel run {self.run_id}: {_describe(exc)}")
            return
        if response.status_code in (200, 202):
            self.printer.line(f"cancelled run {self.run_id}")
        else:
            code, message = _refusal(response)
            self.printer.line(f"could not cancel run {self.run_id}: {message} [{code}]")

    def _backoff(self, failures: int) -> float:
        return float(min(MAX_BACKOFF, self.retry_seconds * 2 ** (failures - 1)))

    def _read(self, events_url: str) -> int | None:
        """One connection's events; the exit code at the run's end, None if the stream ended early."""
        headers = {"Last-Event-ID": self.last_id} if self.last_id is not None else {}
        with connect_sse(self.client, "GET", events_url, headers=headers) as source:
            response = source.response
            if response.status_code == 204:
                return self._ended()
            if response.status_code in TRANSIENT_STATUS:
                response.read()
                code, message = _refusal(response)
                raise _Retry(f"HTTP {response.status_code}, {code}: {message}", _retry_after(response))
            if response.status_code != 200:
                response.read()
                raise self._refused(response, "refused the run's events")
            try:
                for sse in source.iter_sse():
                    # Heartbeats count: a run may be silent (a long tool call) on a live connection.
                    self._heard_at = self.clock()
                    if sse.retry is not None:
                        self.retry_seconds = sse.retry / 1000
                    if sse.event == "heartbeat":
                        continue
                    ended = self._show(sse.event, _data(sse.data))
                    if sse.id:
                        self.last_id = sse.id
                    if ended is not None:
                        return ended
            except SSEError:
                raise AskError(
                    f"{events_url} is not an event stream: is {self.base} a smart-agent app?"
                ) from None
        return None

    def _show(self, kind: str, data: dict[str, Any]) -> int | None:
        printer = self.printer
        if kind == "token":
            printer.token(str(data.get("text", "")))
        elif kind == "reasoning":
            printer.thinking(str(data.get("text", "")))
        elif kind == "reasoning_moved":
            printer.moved(int(data.get("chars", 0)))
        elif kind == "notice":
            printer.note(str(data.get("message", "")))
        elif kind == "snapshot":
            printer.snapshot(str(data.get("text", "")), str(data.get("reasoning", "")))
        elif kind == "tool_call":
            printer.tool_call(data)
        elif kind == "tool_result":
            printer.tool_result(data)
        elif kind == "done":
            printer.finish()
            return EXIT_DONE
        elif kind == "error":
            printer.finish()
            hint = " (asking again may work)" if data.get("retryable") else ""
            printer.line(f"Error: the run failed [{data.get('code', '?')}]: {data.get('message', '')}{hint}")
            return EXIT_FAILED
        return None  # progress, and kinds a newer app may add

    def _ended(self) -> int:
        """A 204: nothing follows our last event. The run's record says how it ended."""
        response = self.client.get(f"{self.base}{PREFIX}/runs/{self.run_id}")
        if response.status_code != 200:
            raise self._refused(response, "refused the run's state")
        status = _data(response.text).get("status")
        self.printer.finish()
        if status == "done":
            return EXIT_DONE
        self.printer.line(f"Error: the run ended with status {status!r}")
        return EXIT_FAILED

    def _refused(self, response: httpx.Response, what: str) -> AskError:
        code, message = _refusal(response)
        status = response.status_code
        hint = ""
        if status == 401:
            hint = " (set the key with --api-key or SMART_AGENT_API_KEY)"
        elif status == 429:
            hint = f" (retry after {response.headers.get('retry-after', '?')} s)"
        # 400 and 413: the question or --model is what is wrong, bad input like a bad flag.
        exit_code = EXIT_USAGE if status in (400, 413) else EXIT_FAILED
        return AskError(f"the app {what} (HTTP {status}, {code}): {message}{hint}", exit_code)


def _data(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise AskError(f"the app sent data that is not JSON: {short(text)}") from None
    return data if isinstance(data, dict) else {}


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(MAX_BACKOFF, max(0.0, float(response.headers.get("retry-after", "0"))))
    except ValueError:
        return 0.0


def ask(
    base: str,
    question: str,
    *,
    out: TextIO,
    err: TextIO,
    api_key: str | None = None,
    model: str | None = None,
    quiet: bool = False,
    show_thinking: bool = False,
    retries: int = 5,
) -> int:
    """Run `smart-agent ask`: the exit code; Ctrl-C cancels the run and gives 130."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
    printer = Printer(out, err, quiet, show_thinking)
    with httpx.Client(headers=headers, timeout=timeout) as client:
        session = Ask(base, client, printer, retries=retries)
        try:
            return session.follow(session.start(question, model))
        except AskError as exc:
            printer.finish()
            printer.line(f"Error: {exc}")
            return exc.exit_code
        except KeyboardInterrupt:
            printer.finish()
            session.cancel()
            return EXIT_INTERRUPTED
        except BrokenPipeError:  # stdout's reader went away (`| head`): nobody wants the rest
            _discard(out)
            printer.line("stdout was closed")
            session.cancel()
            return EXIT_FAILED


def _discard(out: TextIO) -> None:
    """Point a dead stdout at /dev/null, so flushing it at exit raises nothing more.

    The recipe of Python's documentation, "Note on SIGPIPE" in the `signal` module.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
    except (OSError, ValueError):  # io.UnsupportedOperation is a ValueError: not a real file
        return
