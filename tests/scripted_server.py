"""A scripted OpenAI-compatible chat server on 127.0.0.1: real HTTP and SSE, behaviour per request.

A request's behaviour comes from a directive line in its last user message, e.g.
``#script tokens=500 rate=100 cut=200``, or from the server's default `Script`.

A system prompt holding ``#member NAME k=v ...`` answers as that team member: with its own words
(`member_tokens`), so text that lands in another member's step is detectable, and with the
member's own directives over the user's. Every request's start and end are recorded (`spans`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MODEL_ID = "scripted-model"
OTHER_MODEL = "scripted-other"
MODELS = (MODEL_ID, OTHER_MODEL)
"""What the server lists; a request for another model gets Ollama's 404 "model not found"."""
_DIRECTIVE = re.compile(r"#script\b([^\n]*)")
_MEMBER = re.compile(r"#member\s+(\S+)([^\n]*)")


@dataclass(frozen=True)
class Script:
    """How the server answers one request."""

    tokens: int = 20
    rate: float = 0.0  # tokens per second; 0 sends as fast as possible
    kind: str = "words"  # "words", "markdown", or "clock" (" c<i>@<unix time sent>", for latency)
    first_delay: float = 0.0
    status: int = 200  # answer with this HTTP error instead of a stream
    cut: int = -1  # drop the connection after this many tokens
    error_at: int = -1  # send an {"error": ...} payload after this many tokens
    malformed_at: int = -1  # send a line that is not JSON after this many tokens
    stall_at: int = -1  # stop sending for `stall` seconds after this many tokens
    stall: float = 0.0
    no_stream: int = 0  # 1: refuse stream=true with HTTP 400
    tool: str = ""  # call this tool before answering
    expr: str = "2+3"  # the calculator expression (arguments {"expression": expr})
    expr2: str = "10/4"  # the second call's expression when parallel=1
    args_raw: str = ""  # send these raw arguments instead
    shape: str = "split"  # split | null | whole
    parallel: int = 0  # 1: two calls in one turn, told apart by index
    rounds: int = 1  # how many tool rounds before answering in text
    usage: int = 0  # 1: end with a usage-only chunk (empty choices)
    text: str = ""  # answer with this text, a word per token, instead of generated words
    no_finish: int = 0  # after the tokens, no finish_reason: 1 closes at once, 2 sends only [DONE]
    args_preset: str = ""  # send hostile raw arguments instead: one of ARG_PRESETS
    ctx: int = 0  # context limit in tokens (CHARS_PER_TOKEN); longer requests get HTTP 400
    ctx_empty: int = 0  # 1: refuse a long streamed request with an empty 200 stream, as llama.cpp does
    think: int = 0  # think this many tokens (think_tokens) before answering
    think_style: str = "content"  # content | reasoning | tags | split | close (see THINK_STYLES)
    think_kind: str = "words"  # "words" (think_tokens) or "prose" (sentences, for screenshots)
    effort_refused: int = 0  # 1: answer a request with `reasoning_effort` by HTTP 400 naming it
    options_refused: int = 0  # 1: answer a request with `stream_options` by HTTP 400 naming it
    text_b64: str = ""  # answer with this base64 (UTF-8) text: spaces and newlines that `text` cannot hold
    chars: int = 0  # with text or text_b64: this many characters per token instead of a word
    vision: int = 1  # 0: refuse a request with an image part by HTTP 400, as a text-only model does

    @classmethod
    def parse(cls, text: str, base: Script | None = None) -> Script:
        """The script named by a `#script k=v ...` line in `text`, over `base`."""
        script = base or cls()
        match = _DIRECTIVE.search(text)
        if not match:
            return script
        types = {f.name: f.type for f in fields(cls)}
        changes: dict[str, Any] = {}
        for pair in match.group(1).split():
            key, _, value = pair.partition("=")
            kind = types[key]
            changes[key] = int(value) if kind == "int" else float(value) if kind == "float" else value
        return replace(script, **changes)


_PROSE = (
    "Streaming a long answer is mostly prose: sentences that explain an idea, give an example, "
    "and move on to the next point, with the occasional **bold phrase** for emphasis and an "
    "`inline_code()` reference to a function or a file name, so the renderer sees a realistic mix "
    "of plain words and light formatting in every paragraph it parses."
)
# A reply of about 220 tokens per cycle: prose paragraphs, a list and one fenced code block.
_MD_BLOCKS = [
    " " + _PROSE,
    "\n\n" + _PROSE,
    "\n\n- a first point with *emphasis*\n- a second point with `code`\n- a third point\n\n",
    _PROSE,
    "\n\n```python\ndef handler(event):\n    total = 0\n    for item in event.items:\n"
    "        total += item.value\n    return total\n```\n\n",
    _PROSE,
]


THINK_STYLES = ("content", "reasoning", "tags", "split", "close")
"""How the scripted model sends its thinking: `delta.reasoning_content` (DeepSeek, vLLM, llama.cpp),
`delta.reasoning` (Ollama, OpenRouter), inline `<think>…</think>` in the content, the same with the tags
split across chunks mid-tag, or only a closing `</think>` (a template that put `<think>` in the prompt)."""


_THOUGHT = (
    "The user wants to know how batching keeps a long reply smooth. Let me think about what the "
    "page actually does with each update: it re-renders the message's markdown, so fewer, larger "
    "updates cost less. But the first words should still appear at once, or the reply feels slow. "
    "So: send the first token immediately, then group the rest, and cap the updates per second. "
    "I should also mention that a very long reply continues in a new message. "
)


def think_tokens(count: int, kind: str = "words") -> list[str]:
    """The thinking a script sends; tests use it to know the exact expected thinking."""
    if kind == "prose":
        words = re.findall(r"\s*\S+", _THOUGHT)
        return [words[i % len(words)] for i in range(count)]
    return [f" t{i:05d}" for i in range(count)]


def _thinking_chunks(script: Script) -> list[dict[str, Any]]:
    """The deltas of the script's thinking, in its style."""
    tokens = think_tokens(script.think, script.think_kind)
    if script.think_style == "content":
        return [{"reasoning_content": token} for token in tokens]
    if script.think_style == "reasoning":
        return [{"content": "", "reasoning": token} for token in tokens]
    pieces = {
        "tags": (["<think>"], ["</think>\n\n"]),
        "split": (["\n<thi", "nk>"], ["</th", "ink>", "\n\n"]),
        "close": ([], ["\n</think>\n\n"]),
    }[script.think_style]
    return [{"content": piece} for piece in [*pieces[0], *tokens, *pieces[1]]]


def member_tokens(member: str, count: int) -> list[str]:
    """The words a team member answers with: its name in every one."""
    return [f" {member}-{i:04d}" for i in range(count)]


@dataclass
class Span:
    """One request: who asked (the member, or ""), when it arrived and when its answer ended."""

    member: str
    start: float
    end: float | None = None
    complete: bool = False  # the whole answer was sent (not cut, failed or closed by the client)


def text_tokens(script: Script) -> list[str]:
    """The script's own text as tokens: a word each, or `chars` characters each."""
    text = base64.b64decode(script.text_b64).decode() if script.text_b64 else script.text
    if script.chars > 0:
        return [text[i : i + script.chars] for i in range(0, len(text), script.chars)]
    return re.findall(r"\s*\S+|\s+", text)


def script_tokens(count: int, kind: str = "words") -> list[str]:
    """The tokens a script sends; tests use it to know the exact expected text."""
    if kind == "words":
        return [f" w{i:05d}" for i in range(count)]
    tokens: list[str] = []
    i = 0
    while len(tokens) < count:
        block = _MD_BLOCKS[i % len(_MD_BLOCKS)]
        tokens.extend(re.findall(r"\s*\S+|\s+", block))
        tokens.append(f" m{i:05d}")
        i += 1
    tokens = tokens[:count]
    if tokens:
        tokens[-1] = " END."  # a unique last word, to see when the whole reply is on the page
    return tokens


# Arguments no model should send, but one may (or a prompt injection may make it).
ARG_PRESETS = {
    "deep": '{"a":' * 1000 + "1" + "}" * 1000,  # 6 KB, beyond json's recursion limit
    "huge": json.dumps({"expression": "1+" * 75_000 + "1"}),  # 150 KB (send it with shape=whole)
    "junk": '{"expression": "\ud800\udfff\ud800"}\x00\xff\u0000{{{',  # lone surrogates, NULs, trailing junk
    "list": "[1, 2, 3]",  # JSON, but not an object
}
# The scripted server's own token count: stricter than smart-agent's estimate (3 letters per
# token), so a request smart-agent thought would fit can still be refused, as with a real tokenizer.
CHARS_PER_TOKEN = 2


def _tool_calls(script: Script) -> list[dict[str, Any]]:
    calls = []
    exprs = [script.expr, script.expr2] if script.parallel else [script.expr]
    for index, expr in enumerate(exprs):
        arguments = ARG_PRESETS[script.args_preset] if script.args_preset else ""
        arguments = arguments or script.args_raw or json.dumps({"expression": expr})
        calls.append({"index": index, "id": f"call_{index}_x", "name": script.tool, "arguments": arguments})
    return calls


def _tool_chunks(script: Script) -> list[dict[str, Any]]:
    """The tool calls as the awkward chunk sequences real servers send."""
    calls = _tool_calls(script)
    if script.shape == "whole":
        return [
            {
                "message": {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "index": c["index"],
                            "id": c["id"],
                            "type": "function",
                            "function": {"name": c["name"], "arguments": c["arguments"]},
                        }
                    ],
                }
            }
            for c in calls
        ]
    heads = [
        {
            "delta": {
                "role": "assistant",
                "tool_calls": [
                    {
                        "index": c["index"],
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": None if script.shape == "null" else ""},
                    }
                ],
            }
        }
        for c in calls
    ]
    if script.shape == "null":
        return heads
    pieces = [[c["arguments"][i : i + 3] for i in range(0, len(c["arguments"]), 3)] for c in calls]
    tails = []
    for step in range(max(len(p) for p in pieces)):  # interleave the calls' fragments
        for c, p in zip(calls, pieces, strict=True):
            if step < len(p):
                tails.append(
                    {"delta": {"tool_calls": [{"index": c["index"], "function": {"arguments": p[step]}}]}}
                )
    return heads + tails


def _event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
    """One SSE `data:` line holding a chat.completion.chunk."""
    payload = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL_ID,
        "choices": choices,
        **extra,
    }
    return f"data: {json.dumps(payload)}\n\n".encode()


def _completion(message: dict[str, Any], finish: str) -> JSONResponse:
    """A whole (non-streaming) chat.completion answer."""
    choice = {"index": 0, "message": message, "finish_reason": finish}
    return JSONResponse(
        {"id": "chatcmpl-scripted", "object": "chat.completion", "model": MODEL_ID, "choices": [choice]}
    )


def _raw_chunk(choice: dict[str, Any]) -> bytes:
    return _event([{"index": 0, "finish_reason": None, **choice}])


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"role": "assistant", "content": content}
    return _event([{"index": 0, "delta": delta, "finish_reason": finish}])


def usage_of(script: Script, answer_tokens: int) -> dict[str, Any]:
    """The usage the scripted server reports for a reply: prompt 5, the tokens it sent."""
    completion = answer_tokens + script.think
    usage: dict[str, Any] = {
        "prompt_tokens": 5,
        "completion_tokens": completion,
        "total_tokens": 5 + completion,
    }
    if script.think:
        usage["completion_tokens_details"] = {"reasoning_tokens": script.think}
    return usage


def _usage_chunk(script: Script | None = None, answer_tokens: int = 5) -> bytes:
    return _event([], usage=usage_of(script or Script(), answer_tokens))


def request_tokens(messages: list[dict[str, Any]]) -> int:
    """The scripted server's token count of a request's messages."""
    chars = 0
    for message in messages:
        chars += len(str(message.get("content") or ""))
        for call in message.get("tool_calls") or ():
            chars += len(str(call.get("function", {}).get("arguments") or ""))
    return -(-chars // CHARS_PER_TOKEN)


def _asks_usage(body: dict[str, Any], script: Script) -> bool:
    """Whether to end the stream with a usage chunk: asked (`stream_options`), as OpenAI does, or scripted."""
    options = body.get("stream_options")
    return bool(script.usage or (isinstance(options, dict) and options.get("include_usage")))


def _bad_request(message: str, code: str | None = None) -> JSONResponse:
    error = {"message": message, "type": "invalid_request_error", "param": "messages", "code": code}
    return JSONResponse({"error": error}, status_code=400)


def text_of(content: Any) -> str:
    """A message's text: the string, or its text parts joined."""
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return str(content)


def _images(content: Any) -> list[dict[str, Any]]:
    return (
        [p for p in content if isinstance(p, dict) and p.get("type") == "image_url"]
        if isinstance(content, list)
        else []
    )


_DATA_URL = re.compile(r"data:image/(png|jpeg|gif|webp);base64,([A-Za-z0-9+/]+={0,2})")


def content_error(messages: list[dict[str, Any]]) -> str | None:
    """What OpenAI says of malformed content parts: each part text or image_url, an image a data URL
    of a PNG, JPEG, GIF or WebP in valid base64 (or an http(s) URL), only in user messages."""
    for i, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        if message.get("role") != "user" and _images(content):
            return f"Invalid 'messages[{i}]': image_url parts are only allowed in user messages."
        for j, part in enumerate(content):
            where = f"messages[{i}].content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                continue
            if kind != "image_url":
                return f"Invalid '{where}.type': expected one of 'text' or 'image_url'."
            url = (
                (part.get("image_url") or {}).get("url") if isinstance(part.get("image_url"), dict) else None
            )
            if not isinstance(url, str):
                return f"Missing required parameter: '{where}.image_url.url'."
            if url.startswith(("http://", "https://")):
                continue
            match = _DATA_URL.fullmatch(url)
            try:
                valid = match is not None and len(base64.b64decode(match.group(2), validate=True)) > 0
            except binascii.Error:
                valid = False
            if not valid:
                return f"Invalid '{where}.image_url.url': expected a base64 data URL of an image type."
    return None


def history_error(messages: list[dict[str, Any]]) -> str | None:
    """What OpenAI says about a history whose tool calls and tool results do not pair up."""
    waiting: set[str] = set()
    for message in messages:
        if message.get("role") == "tool":
            if message.get("tool_call_id") not in waiting:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'."
                )
            waiting.discard(message["tool_call_id"])
            continue
        if waiting:
            break
        waiting = {call.get("id") for call in message.get("tool_calls") or ()}
    if waiting:
        return (
            "An assistant message with 'tool_calls' must be followed by tool messages responding "
            f"to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
            f"{', '.join(sorted(waiting))}"
        )
    return None


class _Cut(Exception):
    """Raised inside the body generator so the server drops the connection mid-stream."""


@dataclass
class ScriptedServer:
    """The server, its default script, and the requests it received."""

    default: Script = field(default_factory=Script)
    requests: list[dict[str, Any]] = field(default_factory=list)
    stream_ends: list[float] = field(default_factory=list)  # wall-clock time of each last token
    think_starts: list[float] = field(default_factory=list)  # wall-clock time of each first thinking
    text_starts: list[float] = field(default_factory=list)  # wall-clock time of each first text token
    spans: list[Span] = field(default_factory=list)  # every chat request, in arrival order (monotonic)
    span_ended: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""
    models: tuple[str, ...] | None = MODELS  # None: no /v1/models (HTTP 404), any model is served

    def app(self) -> Starlette:
        """The Starlette app."""
        return Starlette(
            routes=[
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
            ]
        )

    async def _models(self, request: Request) -> Response:
        if self.models is None:
            return JSONResponse({"error": {"message": "not found"}}, status_code=404)
        return JSONResponse({"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]})

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        if self.models is not None and body.get("model") not in self.models:
            error = {
                "message": f'model "{body.get("model")}" not found, try pulling it first',
                "type": "api_error",
            }
            return JSONResponse({"error": error}, status_code=404)
        messages = body.get("messages", [])
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
        script = Script.parse(text_of(messages[last_user]["content"]) if last_user >= 0 else "", self.default)
        system = "\n".join(str(m.get("content")) for m in messages if m.get("role") == "system")
        member = _MEMBER.search(system)
        if member:
            script = Script.parse(f"#script {member.group(2)}", script)
        span = Span(member.group(1) if member else "", time.monotonic())
        self.spans.append(span)
        response = await self._answer(body, messages, last_user, script, span)
        if not isinstance(response, StreamingResponse):
            span.end, span.complete = time.monotonic(), response.status_code == 200
        return response

    async def _answer(
        self, body: dict[str, Any], messages: list[dict[str, Any]], last_user: int, script: Script, span: Span
    ) -> Response:
        since_user = messages[last_user + 1 :]
        rounds_done = sum(1 for m in since_user if m.get("role") == "assistant" and m.get("tool_calls"))
        tool_results = [str(m.get("content")) for m in since_user if m.get("role") == "tool"]
        unanswered = history_error(messages) or content_error(messages)
        if unanswered:
            return _bad_request(unanswered)
        if not script.vision and any(_images(m.get("content")) for m in messages):
            return _bad_request("Invalid content type. image_url is only supported by certain models.")
        if script.ctx and request_tokens(messages) > script.ctx:
            if script.ctx_empty and body.get("stream"):
                return StreamingResponse(iter([b""]), media_type="text/event-stream")
            return _bad_request(
                f"This model's maximum context length is {script.ctx} tokens. However, your messages "
                f"resulted in {request_tokens(messages)} tokens. Please reduce the length of the messages.",
                "context_length_exceeded",
            )
        if script.status != 200:
            return JSONResponse(
                {"error": {"message": f"scripted failure {script.status}", "type": "scripted"}},
                status_code=script.status,
            )
        for refused, name in (
            (script.effort_refused, "reasoning_effort"),
            (script.options_refused, "stream_options"),
        ):
            if refused and name in body:
                error = {"message": f"Unrecognized request argument supplied: {name}", "param": name}
                return JSONResponse({"error": {**error, "type": "invalid_request_error"}}, status_code=400)
        if script.no_stream and body.get("stream"):
            return JSONResponse(
                {"error": {"message": "stream is not supported", "param": "stream"}},
                status_code=400,
            )
        calling = bool(script.tool) and rounds_done < script.rounds
        if tool_results and not calling:
            tokens = ["Result:"] + [f" {r}" for r in tool_results]
        elif script.text or script.text_b64:
            tokens = text_tokens(script)
        elif span.member:
            tokens = member_tokens(span.member, script.tokens)
        else:
            tokens = script_tokens(script.tokens, script.kind)
        if not body.get("stream") and calling:
            calls = [
                {"id": c["id"], "type": "function", "function": {k: c[k] for k in ("name", "arguments")}}
                for c in _tool_calls(script)
            ]
            return _completion({"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls")
        if calling:
            return StreamingResponse(
                self._spanned(span, self._stream_tools(script, _asks_usage(body, script))),
                media_type="text/event-stream",
            )
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": "".join(tokens)}
            if script.think:
                message["reasoning_content"] = "".join(think_tokens(script.think))
            return _completion(message, "stop")
        return StreamingResponse(
            self._spanned(span, self._stream(script, tokens, _asks_usage(body, script))),
            media_type="text/event-stream",
        )

    async def _spanned(self, span: Span, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            async for chunk in body:
                yield chunk
            span.complete = True
        finally:
            with self.span_ended:
                span.end = time.monotonic()
                self.span_ended.notify_all()

    def wait_ended(self, spans: list[Span], timeout: float) -> bool:
        """Block until every one of `spans` has ended (the server's thread sets them); False on timeout."""
        with self.span_ended:
            return self.span_ended.wait_for(lambda: all(s.end is not None for s in spans), timeout)

    async def _stream_tools(self, script: Script, usage: bool) -> AsyncIterator[bytes]:
        for choice in _tool_chunks(script):
            yield _raw_chunk(choice)
        yield _raw_chunk({"delta": {}, "finish_reason": "tool_calls"})
        if usage:
            yield _usage_chunk()
        yield b"data: [DONE]\n\n"

    async def _stream(self, script: Script, tokens: list[str], usage: bool) -> AsyncIterator[bytes]:
        if script.first_delay:
            await asyncio.sleep(script.first_delay)
        start = time.monotonic()
        thinking = _thinking_chunks(script) if script.think else []
        for i, token in enumerate([*thinking, *tokens]):
            if i == script.cut:
                raise _Cut("scripted connection cut")
            if i == script.error_at:
                yield b'data: {"error": {"message": "scripted mid-stream failure"}}\n\n'
                return
            if i == script.malformed_at:
                yield b"data: {this is not json\n\n"
            if i == script.stall_at:
                await asyncio.sleep(script.stall)
            if script.rate > 0:
                delay = start + i / script.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if isinstance(token, dict):
                if i == 0:
                    self.think_starts.append(time.time())
                yield _event([{"index": 0, "delta": token, "finish_reason": None}])
            else:
                if i == len(thinking):
                    self.text_starts.append(time.time())
                yield _chunk(f" c{i}@{time.time():.6f}" if script.kind == "clock" else token)
        self.stream_ends.append(time.time())
        if script.no_finish:  # cut off: 2 is how llama-cpp-python ends an interrupted reply
            if script.no_finish == 2:
                yield b"data: [DONE]\n\n"
            return
        yield _chunk(None, "stop")
        if usage:
            yield _usage_chunk(script, len(tokens))
        yield b"data: [DONE]\n\n"


@contextmanager
def serve(default: Script | None = None, models: tuple[str, ...] | None = MODELS) -> Iterator[ScriptedServer]:
    """Run a ScriptedServer on a free 127.0.0.1 port in a background thread (`models` None: a server
    without `/v1/models`)."""
    server = ScriptedServer(default=default or Script(), models=models)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(server.app(), log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the scripted server did not start")
        time.sleep(0.01)
    server.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield server
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        sock.close()


if __name__ == "__main__":
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    uvicorn.run(ScriptedServer().app(), host="127.0.0.1", port=port, log_level="warning")
