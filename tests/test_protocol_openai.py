"""OpenAI's chat completions end to end: the real app and the scripted model, driven by `openai`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from smart_agent.api.keys import KEYS_FILE, KeyStore
from smart_agent.api.openai_schema import (
    ModelChoice,
    UnknownModelError,
    choose_model,
    model_ids,
    parse_chat_request,
)
from tests.api_client import read_all, read_to_end
from tests.harness import clean_env, running_app
from tests.scripted_server import (
    MODEL_ID,
    OTHER_MODEL,
    Script,
    ScriptedServer,
    member_tokens,
    script_tokens,
    think_tokens,
    usage_of,
)

MEMBERS = ("alpha", "beta")
MAX_RUNS = 3


@pytest.fixture(scope="module", params=["memory", "redis"])
def app(
    request: pytest.FixtureRequest, scripted: ScriptedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """One app per run log (memory, Redis), with an API key and a two-member team; its URL and the key."""
    log_dir = tmp_path_factory.mktemp("openai")
    (log_dir / "data").mkdir()
    key = KeyStore(log_dir / "data" / KEYS_FILE).add("client")
    team = log_dir / "team.toml"
    members = "".join(
        f'[[members]]\nname = "{n}"\nprompt = "You are {n}.\\n#member {n}"\n\n' for n in MEMBERS
    )
    team.write_text(members + '[synthesiser]\nprompt = "Answer.\\n#member synth"\n')
    env = clean_env(
        OPENAI_API_KEY="test-key",
        SMART_AGENT_DATA_DIR=str(log_dir / "data"),
        SMART_AGENT_API_MAX_RUNS=str(MAX_RUNS),
    )
    if request.param == "redis":
        env["SMART_AGENT_REDIS_URL"] = request.getfixturevalue("redis_server").url
    flags = ("--base-url", scripted.url, "--model", MODEL_ID, "--team-config", str(team))
    with running_app(*flags, env=env, log_dir=log_dir) as (url, _):
        yield url, key


@pytest.fixture
def client(app: tuple[str, str]) -> Iterator[openai.OpenAI]:
    """The stock client, pointed at the app as Open WebUI or LibreChat would be."""
    with openai.OpenAI(base_url=f"{app[0]}/v1", api_key=app[1], max_retries=0, timeout=60) as made:
        yield made


def _chunks(
    client: openai.OpenAI, content: str, model: str = "smart-agent", **extra: object
) -> list[ChatCompletionChunk]:
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": content}],
        stream=True,
        **extra,  # type: ignore[call-overload]
    )
    return list(stream)


def _joined(chunks: list[ChatCompletionChunk], field: str) -> str:
    return "".join(getattr(c.choices[0].delta, field, None) or "" for c in chunks if c.choices)


def test_stream_when_the_model_calls_a_tool_then_only_the_exact_answer_reaches_the_client(
    client: openai.OpenAI,
) -> None:
    chunks = _chunks(client, "#script tool=calculator expr=6*7 tokens=5")

    assert _joined(chunks, "content") == "Result: 42"
    assert all(c.choices and not c.choices[0].delta.tool_calls for c in chunks), "tools ran on the server"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-run_")
    assert {c.model for c in chunks} == {"smart-agent"}
    assert all(c.usage is None for c in chunks), "usage only when asked"


def test_whole_when_the_model_calls_a_tool_then_one_completion_with_the_answer_and_usage(
    client: openai.OpenAI,
) -> None:
    completion = client.chat.completions.create(
        model="smart-agent",
        messages=[{"role": "user", "content": "#script tool=calculator expr=6*7 tokens=5"}],
    )

    assert completion.object == "chat.completion"
    (choice,) = completion.choices
    assert choice.message.content == "Result: 42" and not choice.message.tool_calls
    assert choice.finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_stream_when_the_model_thinks_then_reasoning_content_apart_and_first(client: openai.OpenAI) -> None:
    chunks = _chunks(client, "#script think=40 think_style=reasoning tokens=20 rate=600")

    assert _joined(chunks, "reasoning_content") == "".join(think_tokens(40))
    assert _joined(chunks, "content") == "".join(script_tokens(20))
    kinds = [
        "reasoning" if getattr(c.choices[0].delta, "reasoning_content", None) else "text"
        for c in chunks
        if c.choices
        and (c.choices[0].delta.content or getattr(c.choices[0].delta, "reasoning_content", None))
    ]
    assert kinds == sorted(kinds) and kinds[0] == "reasoning", "all the thinking, then the answer"
    assert not any(
        c.choices[0].delta.content and getattr(c.choices[0].delta, "reasoning_content", None)
        for c in chunks
        if c.choices
    ), "a chunk carries text or thinking, never both"


def test_whole_when_the_model_thinks_inline_then_reasoning_content_and_the_answer_apart(
    client: openai.OpenAI,
) -> None:
    completion = client.chat.completions.create(
        model="smart-agent",
        messages=[{"role": "user", "content": "#script think=30 think_style=tags tokens=9"}],
    )

    message = completion.choices[0].message
    assert message.content == "".join(script_tokens(9)).lstrip()
    assert getattr(message, "reasoning_content", None) == "".join(think_tokens(30))


def test_usage_when_asked_with_stream_options_then_a_last_chunk_without_choices_has_the_servers_counts(
    client: openai.OpenAI,
) -> None:
    chunks = _chunks(client, "#script think=12 tokens=7", stream_options={"include_usage": True})

    *rest, last = chunks
    served = usage_of(Script(think=12), 7)
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens == served["prompt_tokens"]
    assert last.usage.completion_tokens == served["completion_tokens"]
    assert last.usage.total_tokens == served["total_tokens"]
    assert last.usage.completion_tokens_details is not None
    assert last.usage.completion_tokens_details.reasoning_tokens == 12
    assert all(c.usage is None for c in rest) and rest[-1].choices[0].finish_reason == "stop"


def test_models_when_listed_then_each_profile_alone_and_on_each_backend_model(
    client: openai.OpenAI, scripted: ScriptedServer
) -> None:
    ids = [model.id for model in client.models.list()]

    assert ids == [
        "smart-agent",
        "smart-agent-team",
        f"smart-agent/{MODEL_ID}",
        f"smart-agent/{OTHER_MODEL}",
        f"smart-agent-team/{MODEL_ID}",
        f"smart-agent-team/{OTHER_MODEL}",
    ]
    assert client.models.retrieve(f"smart-agent/{OTHER_MODEL}").id == f"smart-agent/{OTHER_MODEL}"
    chunks = _chunks(client, "#script tokens=4 text=on_the_other_model", model=f"smart-agent/{OTHER_MODEL}")
    assert _joined(chunks, "content") == "on_the_other_model"
    assert {c.model for c in chunks} == {f"smart-agent/{OTHER_MODEL}"}
    asked = [r for r in scripted.requests if "on_the_other_model" in str(r.get("messages"))]
    assert asked and {r["model"] for r in asked} == {OTHER_MODEL}


@pytest.mark.parametrize("model", ["gpt-4o", f"smart-agent/not-{MODEL_ID}", "smart-agent-crew"])
def test_model_when_unknown_then_404_in_openais_shape_naming_it(client: openai.OpenAI, model: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])

    assert caught.value.body == {
        "message": caught.value.body["message"],  # type: ignore[index]
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    assert repr(model) in caught.value.message


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "smart-agent"}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": "smart-agent", "messages": [{"role": "user", "content": ""}]}, "messages[0].content"),
        ({"model": "smart-agent", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        (
            {"model": "smart-agent", "messages": [{"role": "tool", "content": "5", "tool_call_id": "c"}]},
            "messages[0].role",
        ),
        ({"model": "smart-agent", "messages": [{"role": "assistant", "content": "hi"}]}, "messages[0].role"),
        (
            {"model": "smart-agent", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"},
            "stream",
        ),
        ({"model": "smart-agent", "messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
        (
            {
                "model": "smart-agent",
                "messages": [{"role": "user", "content": "hi"}],
                "stream_options": {"include_usage": True},
            },
            "stream_options",
        ),
        (
            {
                "model": "smart-agent",
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "function"}],
            },
            "tools",
        ),
    ],
)
def test_body_when_invalid_then_400_in_openais_shape_naming_the_field(
    app: tuple[str, str], body: dict[str, object], param: str
) -> None:
    response = httpx.post(
        f"{app[0]}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {app[1]}"}, timeout=30
    )

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert error["message"].startswith(f"{param}: ")


def test_key_when_missing_or_wrong_then_401_in_openais_shape(app: tuple[str, str]) -> None:
    with openai.OpenAI(base_url=f"{app[0]}/v1", api_key="sa-wrong", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError) as caught:
            wrong.models.list()
    assert caught.value.body["code"] == "invalid_key"  # type: ignore[index]
    response = httpx.post(f"{app[0]}/v1/chat/completions", json={}, timeout=30)
    assert response.status_code == 401 and response.json()["error"]["code"] == "missing_key"


def test_team_when_asked_by_model_id_then_members_work_and_the_synthesis_is_the_exact_answer(
    client: openai.OpenAI, scripted: ScriptedServer
) -> None:
    before = len(scripted.spans)
    chunks = _chunks(client, "What should we build?", model="smart-agent-team")

    assert _joined(chunks, "content") == "".join(member_tokens("synth", 20))
    assert {span.member for span in scripted.spans[before:]} == {*MEMBERS, "synth"}
    whole = client.chat.completions.create(
        model=f"smart-agent-team/{MODEL_ID}", messages=[{"role": "user", "content": "And then?"}]
    )
    assert whole.choices[0].message.content == "".join(member_tokens("synth", 20))


def test_disconnect_when_the_client_leaves_mid_stream_then_the_run_is_cancelled(
    app: tuple[str, str], client: openai.OpenAI
) -> None:
    stream = client.chat.completions.create(
        model="smart-agent",
        messages=[{"role": "user", "content": "#script tokens=5000 rate=200"}],
        stream=True,
    )
    seen = [chunk for chunk, _ in zip(stream, range(5), strict=False)]
    stream.close()  # the client goes away mid-answer

    run_id = seen[0].id.removeprefix("chatcmpl-")
    events = read_all(app[0], run_id, headers={"Authorization": f"Bearer {app[1]}"})
    assert events[-1].kind == "error" and events[-1].data["code"] == "cancelled"
    assert sum(1 for event in events if event.kind == "token") < 5000


def test_model_failure_when_mid_stream_then_the_partial_text_then_an_error_the_client_raises(
    client: openai.OpenAI,
) -> None:
    received: list[ChatCompletionChunk] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(
            model="smart-agent",
            messages=[{"role": "user", "content": "#script tokens=50 cut=10 rate=200"}],
            stream=True,
        ):
            received.append(chunk)

    assert _joined(received, "content") == "".join(script_tokens(10))
    assert caught.value.body["code"] == "model_error"  # type: ignore[index]


def test_model_failure_when_not_streamed_then_502_in_openais_shape_with_the_run_id(
    client: openai.OpenAI,
) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="smart-agent", messages=[{"role": "user", "content": "#script tokens=50 cut=10"}]
        )

    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "model_error" and caught.value.body["type"] == "server_error"  # type: ignore[index]
    assert caught.value.response.headers["X-Smart-Agent-Run-Id"].startswith("run_")


@pytest.mark.timing  # cancelled means ended well before the answer's 25 s
def test_disconnect_when_the_client_leaves_before_a_whole_answer_then_the_model_request_stops(
    app: tuple[str, str], scripted: ScriptedServer
) -> None:
    before = len(scripted.spans)
    body = {"model": "smart-agent", "messages": [{"role": "user", "content": "#script tokens=5000 rate=200"}]}
    with pytest.raises(httpx.ReadTimeout):  # the client gives up: its connection closes
        httpx.post(
            f"{app[0]}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {app[1]}"},
            timeout=2,
        )

    spans = scripted.spans[before:]
    assert spans, "the run asked the model"
    assert scripted.wait_ended(spans, 10), "the answer takes 25 s unless the run was cancelled"
    assert not any(span.complete for span in spans)


def test_limits_when_a_key_runs_too_many_at_once_then_429_in_openais_shape_with_retry_after(
    app: tuple[str, str], client: openai.OpenAI
) -> None:
    streams = [
        client.chat.completions.create(
            model="smart-agent",
            messages=[{"role": "user", "content": "#script tokens=2000 rate=50"}],
            stream=True,
        )
        for _ in range(MAX_RUNS)
    ]
    try:
        firsts = [next(iter(stream)) for stream in streams]
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(
                model="smart-agent", messages=[{"role": "user", "content": "one more"}]
            )
    finally:
        for stream in streams:
            stream.close()

    assert caught.value.body["code"] == "limit_exceeded"  # type: ignore[index]
    assert caught.value.response.headers["Retry-After"].isdigit()
    for first in firsts:  # each run ends, cancelled by its client leaving: the key's slots are free again
        ended = read_to_end(
            app[0], first.id.removeprefix("chatcmpl-"), headers={"Authorization": f"Bearer {app[1]}"}
        )
        assert (ended[-1].kind, ended[-1].data.get("code")) == ("error", "cancelled"), ended[-3:]


def test_schema_when_openai_fields_come_then_developer_is_system_parts_join_and_extras_are_ignored() -> None:
    body = {
        "model": "smart-agent",
        "temperature": 0.2,
        "user": "someone",
        "messages": [
            {
                "role": "developer",
                "content": [{"type": "text", "text": "Be "}, {"type": "text", "text": "brief."}],
            },
            {"role": "user", "content": "Hi", "name": "ann"},
            {"role": "assistant", "content": "Hello.", "reasoning_content": "greet"},
            {"role": "user", "content": [{"type": "text", "text": "Again"}]},
        ],
    }
    chat = parse_chat_request(json.dumps(body).encode(), 10_000, None)

    assert chat.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": [{"type": "text", "text": "Again"}]},
    ]
    assert chat.model == ModelChoice("smart-agent", False, None)
    assert not chat.stream and not chat.include_usage


def test_model_ids_when_backend_models_have_slashes_then_the_profile_is_the_first_part() -> None:
    assert choose_model("smart-agent-team/meta-llama/Llama-3") == ModelChoice(
        "smart-agent-team/meta-llama/Llama-3", True, "meta-llama/Llama-3"
    )
    assert model_ids(("a/b",)) == [
        "smart-agent",
        "smart-agent-team",
        "smart-agent/a/b",
        "smart-agent-team/a/b",
    ]
    for unknown in ("smart-agent/", "smart-agent/ ", "team/x", "Smart-Agent"):
        with pytest.raises(UnknownModelError):
            choose_model(unknown)
