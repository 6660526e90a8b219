"""The API's runs with images, end to end: past the 2 MiB body cap within the limits, refused naming
the field otherwise, and the model gets the image as an image_url part."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.api_client import read_all, text_of
from tests.harness import clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer


@pytest.fixture(scope="module")
def base(scripted: ScriptedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One app for the module."""
    env = clean_env(OPENAI_API_KEY="test-key")
    log_dir: Path = tmp_path_factory.mktemp("api-attachments")
    with running_app("--base-url", scripted.url, "--model", MODEL_ID, env=env, log_dir=log_dir) as (url, _):
        yield url


def _noise_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(out, "PNG")
    return out.getvalue()


def test_run_when_image_within_limits_over_2_mib_then_model_gets_image_part(
    base: str, scripted: ScriptedServer
) -> None:
    image = _noise_png(1200, 1000)  # about 3.6 MB, 4.8 MB as base64: over the general 2 MiB cap
    url = f"data:image/png;base64,{base64.b64encode(image).decode()}"
    content = [
        {"type": "text", "text": "describe #script text=an_image"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    response = httpx.post(
        f"{base}/api/v1/runs", json={"messages": [{"role": "user", "content": content}]}, timeout=60
    )
    assert response.status_code == 201, response.text
    assert text_of(read_all(base, response.json()["id"])) == "an_image"
    parts = scripted.requests[-1]["messages"][-1]["content"]
    assert [part["type"] for part in parts] == ["text", "image_url"]
    sent = Image.open(io.BytesIO(base64.b64decode(parts[1]["image_url"]["url"].split(",", 1)[1])))
    assert sent.size == (1200, 1000)


def test_openai_route_when_image_within_limits_over_2_mib_then_the_model_gets_it_too(
    base: str, scripted: ScriptedServer
) -> None:
    # Every route whose body starts a run has the runs API's body cap (web/security.py RUN_PATHS).
    image = _noise_png(1200, 1000)
    url = f"data:image/png;base64,{base64.b64encode(image).decode()}"
    content = [
        {"type": "text", "text": "describe #script text=seen"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    body = {"model": "smart-agent", "messages": [{"role": "user", "content": content}]}
    response = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "seen"
    parts = scripted.requests[-1]["messages"][-1]["content"]
    assert [part["type"] for part in parts] == ["text", "image_url"]


def test_run_when_image_part_is_not_an_image_then_400_naming_the_field(base: str) -> None:
    url = f"data:image/png;base64,{base64.b64encode(b'<svg onload=alert(1)>').decode()}"
    content = [{"type": "image_url", "image_url": {"url": url}}]
    response = httpx.post(
        f"{base}/api/v1/runs", json={"messages": [{"role": "user", "content": content}]}, timeout=30
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "messages[0].content[0].image_url.url"
    assert "cannot be read" in error["message"]
