"""Judging attached files and building the model's content: limits, content over names, bombs, cuts."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from smart_agent.api.schema import RequestError, parse_run_request
from smart_agent.attachments.content import CUT_NOTE, room_for_files, user_content
from smart_agent.attachments.files import AttachmentError, Limits, judge, read_attachment, read_bounded
from smart_agent.config import ConfigError, load_settings
from smart_agent.llm.context import IMAGE_TOKENS, estimate_tokens, message_tokens
from tests.attachment_files import png, png_bomb

LIMITS = Limits(max_bytes=100_000, max_files=2, extensions=("txt", "md", "png", "jpg"))


def _data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def test_judge_when_text_file_then_kept_as_text() -> None:
    attachment = judge("notes.md", "# Notes\nünïcode\n".encode(), LIMITS)
    assert (attachment.mime, attachment.text, attachment.is_image) == (
        "text/plain",
        "# Notes\nünïcode\n",
        False,
    )


def test_judge_when_image_then_decoded_and_reencoded_as_png() -> None:
    jpeg = io.BytesIO()
    Image.new("RGB", (3000, 1500), (0, 90, 200)).save(jpeg, "JPEG")
    attachment = judge("photo.jpg", jpeg.getvalue(), Limits(10_000_000, 1, ("jpg",)))
    image = Image.open(io.BytesIO(attachment.data))
    assert (attachment.mime, image.format, image.size) == ("image/png", "PNG", (2048, 1024))


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("tool.exe", b"MZ", "files of type .exe are not accepted"),
        ("README", b"text", "files of type .(none) are not accepted"),
        ("photo.png", b"<svg onload='alert(1)'/>", "its content is not a PNG, JPEG, GIF or WebP image"),
        ("notes.txt", png(), "its content is an image"),
        ("notes.txt", b"\x00\x01binary", "its content is not text (UTF-8)"),
        ("notes.txt", b"\xff\xfe\xfa", "its content is not text (UTF-8)"),
        ("big.txt", b"a" * 100_001, "it has 100,001 bytes, over the limit of 100,000"),
        ("bomb.png", png_bomb(), "the image has more pixels than the limit of 40,000,000"),
        (
            "tall.png",
            png_bomb(7_000),
            "the image is 7,000 x 7,000 pixels, over the limit of 40,000,000 pixels",
        ),
        ("cut.png", png()[:40], "the image cannot be read"),
    ],
)
def test_judge_when_file_is_refused_then_reason_says_why(name: str, data: bytes, reason: str) -> None:
    limits = Limits(max_bytes=200_000, max_files=2, extensions=("txt", "png")) if "bomb" in name else LIMITS
    if name == "big.txt":
        limits = LIMITS
    with pytest.raises(AttachmentError) as refused:
        judge(name, data, limits)
    assert str(refused.value) == reason


def test_read_bounded_when_file_is_over_the_limit_then_refused_from_its_size(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    with path.open("wb") as file:
        file.truncate(50_000_000)  # sparse: refused by its size, never read into memory
    with pytest.raises(AttachmentError, match="50,000,000 bytes, over the limit of 100,000"):
        read_bounded(path, LIMITS.max_bytes)
    small = tmp_path / "notes.md"
    small.write_text("hello")
    assert read_attachment("notes.md", small, LIMITS).text == "hello"
    assert os.path.getsize(path) == 50_000_000


def test_user_content_when_text_files_only_then_one_string_with_marked_files() -> None:
    files = [judge("a.md", b"alpha", LIMITS), judge("b.txt", b"has ``` inside", LIMITS)]
    built = user_content("Read these", files, room=1_000)
    assert built.content == (
        "Read these\n\nAttached file a.md:\n```\nalpha\n```\n\n"
        "Attached file b.txt:\n````\nhas ``` inside\n````"
    )
    assert built.notices == [] and built.text == built.content


@pytest.mark.parametrize("unit", ["x", "{},"])  # letters, and punctuation that costs a token a mark
def test_user_content_when_files_exceed_room_then_cut_to_fit_with_notice(unit: str) -> None:
    body = unit * 2_000
    built = user_content("", [judge("long.txt", body.encode(), LIMITS)], room=200)
    assert isinstance(built.content, str)
    kept = built.content.removeprefix("Attached file long.txt:\n```\n").removesuffix(f"\n{CUT_NOTE}\n```")
    assert body.startswith(kept) and 0 < len(kept) < len(body)
    assert estimate_tokens(built.content) <= 200  # the whole piece fits the room, marks included
    assert built.notices == [
        f"long.txt was cut to {len(kept):,} of its {len(body):,} characters to fit the model's context."
    ]


def test_user_content_when_image_then_text_part_and_image_url_part() -> None:
    image = judge("red.png", png(), LIMITS)
    built = user_content("What is this?", [image], room=1_000)
    assert built.content == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": _data_url(image.data)}},
    ]
    assert message_tokens({"role": "user", "content": built.content}) < IMAGE_TOKENS + 20
    assert room_for_files(10_000, "abc", [image]) == 10_000 // 3 - 1 - IMAGE_TOKENS


def test_settings_when_attachment_values_given_then_validated() -> None:
    settings = load_settings(
        environ={"SMART_AGENT_ATTACHMENT_MAX_MB": "2", "SMART_AGENT_ATTACHMENT_TYPES": ".TXT, md,png"},
        dotenv_path=None,
    )
    assert (settings.attachment_max_mb, settings.attachment_types) == (2, ("txt", "md", "png"))
    assert Limits.from_settings(settings).max_bytes == 2_000_000
    for name, value in (
        ("SMART_AGENT_ATTACHMENT_TYPES", "txt,../x"),
        ("SMART_AGENT_ATTACHMENT_MAX_FILES", "0"),
    ):
        with pytest.raises(ConfigError, match=name):
            load_settings(environ={name: value}, dotenv_path=None)


def _run(*parts: object, role: str = "user") -> bytes:
    return json.dumps({"messages": [{"role": role, "content": list(parts)}]}).encode()


def test_api_parts_when_text_and_image_then_image_reencoded_as_png() -> None:
    jpeg = io.BytesIO()
    Image.new("RGB", (20, 10), (10, 200, 10)).save(jpeg, "JPEG")
    body = _run(
        {"type": "text", "text": "see"},
        {"type": "image_url", "image_url": {"url": _data_url(jpeg.getvalue(), "image/jpeg")}},
    )
    content = parse_run_request(body, 1_000, LIMITS).messages[0]["content"]
    assert content[0] == {"type": "text", "text": "see"}
    url = content[1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size == (20, 10)


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        (_run(), "messages[0].content", 400),
        (_run("text"), "messages[0].content[0]", 400),
        (_run({"type": "audio"}), "messages[0].content[0].type", 400),
        (_run({"type": "text", "text": 3}), "messages[0].content[0]", 400),
        (
            _run({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}),
            "messages[0].content[0].image_url.url",
            400,
        ),
        (
            _run({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}),
            "messages[0].content[0].image_url.url",
            400,
        ),
        (
            _run({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}),
            "messages[0].content[0].image_url.url",
            400,
        ),
        (
            _run({"type": "image_url", "image_url": {"url": _data_url(png_bomb(20_000))}}),
            "messages[0].content[0].image_url.url",
            400,
        ),
        (
            _run({"type": "image_url", "image_url": {"url": _data_url(b"\x89PNG" + b"0" * 120_000)}}),
            "messages[0].content[0].image_url.url",
            413,
        ),
        (
            _run(*[{"type": "image_url", "image_url": {"url": _data_url(png())}}] * 3),
            "messages[0].content",
            400,
        ),
        (_run({"type": "text", "text": "x" * 1_001}), "messages[0].content", 413),
        (_run({"type": "text", "text": "hi"}, role="assistant"), "messages[0].content", 400),
    ],
)
def test_api_parts_when_malformed_then_refused_naming_the_field(body: bytes, field: str, status: int) -> None:
    with pytest.raises(RequestError) as refused:
        parse_run_request(body, 1_000, LIMITS)
    assert (refused.value.field, refused.value.status) == (field, status)


def test_api_parts_when_no_limits_then_images_refused() -> None:
    body = _run({"type": "image_url", "image_url": {"url": _data_url(png())}})
    with pytest.raises(RequestError, match="images are not accepted"):
        parse_run_request(body, 1_000)
