"""Attachments in headless Chromium against the real app: what reaches the model, what is refused and
why, who may fetch a stored file, and a reopened chat showing it again."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import Browser

from smart_agent.attachments.content import CUT_NOTE
from tests.attachment_files import png, png_bomb
from tests.chat_page import ChatPage
from tests.conftest import AppFactory
from tests.harness import clean_env
from tests.login_helpers import add_account
from tests.scripted_server import MODEL_ID, ScriptedServer

NOTES = "# Shopping\n- apples\n- pears\n"


def _attach(chat: ChatPage, *files: tuple[str, str, bytes]) -> None:
    """Choose files in the composer's file picker, as a user does, and wait until each is uploaded."""
    with chat.page.expect_response(lambda r: "/project/file" in r.url, timeout=30_000) as last:
        chat.page.set_input_files(
            "#upload-button-input",
            files=[{"name": name, "mimeType": mime, "buffer": data} for name, mime, data in files],
        )
    assert last.value.status == 200, last.value.text()
    if len(files) > 1:  # the others were sent alongside: wait until the page shows them all done
        chat.page.wait_for_function("() => !document.querySelector('#chat-submit[disabled]')")


def _toast(chat: ChatPage, text: str) -> None:
    chat.page.locator("[data-sonner-toast]", has_text=text).first.wait_for(timeout=10_000)


def _error_text(chat: ChatPage, needle: str) -> str:
    handle = chat.page.wait_for_function(
        """(needle) => [...document.querySelectorAll('.message-content')].map((e) => e.textContent)
            .find((t) => t.includes(needle)) || false""",
        arg=needle,
        timeout=30_000,
    )
    return str(handle.json_value())


def _user_parts(request: dict[str, Any]) -> list[dict[str, Any]]:
    content = request["messages"][-1]["content"]
    assert request["messages"][-1]["role"] == "user"
    return content if isinstance(content, list) else [{"type": "text", "text": content}]


def test_attach_when_text_file_and_image_then_model_gets_marked_text_and_image_part(
    browser: Browser, scripted_app: Any, scripted: ScriptedServer
) -> None:
    url = scripted_app()
    chat = ChatPage.open(browser, url)
    try:
        _attach(chat, ("notes.md", "text/markdown", NOTES.encode()), ("red.png", "image/png", png(40, 30)))
        before = len(scripted.requests)
        chat.send("What is in these? #script text=seen_both")
        chat.wait_text("seen_both")
        parts = _user_parts(scripted.requests[-1])
        assert len(scripted.requests) == before + 1
        assert [p["type"] for p in parts] == ["text", "image_url"]
        assert (
            parts[0]["text"]
            == f"What is in these? #script text=seen_both\n\nAttached file notes.md:\n```\n{NOTES}\n```"
        )
        url_ = parts[1]["image_url"]["url"]
        assert url_.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(url_.split(",", 1)[1])))
        assert image.size == (40, 30)
        assert image.convert("RGB").getpixel((5, 5)) == (200, 30, 30)
        # The page shows the attachments with the message.
        chat.page.locator('[data-step-type="user_message"] img').first.wait_for(timeout=10_000)
    finally:
        chat.close()


def test_attach_when_only_text_file_then_model_gets_plain_string_content(
    browser: Browser, scripted_app: Any, scripted: ScriptedServer
) -> None:
    chat = ChatPage.open(browser, scripted_app())
    try:
        _attach(chat, ("data.csv", "text/csv", b"a,b\n1,2\n"))
        chat.send("sum it #script text=csv_seen")
        chat.wait_text("csv_seen")
        content = scripted.requests[-1]["messages"][-1]["content"]
        assert content == "sum it #script text=csv_seen\n\nAttached file data.csv:\n```\na,b\n1,2\n\n```"
    finally:
        chat.close()


def test_attach_when_model_refuses_images_then_readable_message_and_chat_goes_on(
    browser: Browser, scripted_app: Any, scripted: ScriptedServer
) -> None:
    chat = ChatPage.open(browser, scripted_app())
    try:
        _attach(chat, ("red.png", "image/png", png()))
        chat.send("look #script vision=0")
        text = _error_text(chat, "does not take images")
        assert "send it without images" in text
        chat.wait_turns(1)
        chat.send("and now? #script text=still_here")
        chat.wait_text("still_here")
        sent = scripted.requests[-1]["messages"]
        assert all(isinstance(m["content"], str) for m in sent)  # the refused image is not sent again
    finally:
        chat.close()


def test_attach_when_over_limit_wrong_type_or_bomb_then_refused_with_reason_and_nothing_sent(
    browser: Browser, start_app: AppFactory, scripted: ScriptedServer
) -> None:
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_ATTACHMENT_MAX_MB="1")
    url = start_app("--base-url", scripted.url, "--model", MODEL_ID, env=env)
    chat = ChatPage.open(browser, url)
    try:
        # Over the size limit, and a type not accepted: the page refuses them and says why.
        chat.page.set_input_files(
            "#upload-button-input",
            files=[{"name": "big.txt", "mimeType": "text/plain", "buffer": b"a" * 1_200_000}],
        )
        _toast(chat, "larger than 1 MB")
        chat.page.set_input_files(
            "#upload-button-input",
            files=[{"name": "tool.exe", "mimeType": "application/octet-stream", "buffer": b"MZ\x90\x00"}],
        )
        _toast(chat, "File type must be")
        # A name the page accepts with content that is not what it says, and a decompression bomb:
        # the server judges the bytes and refuses before anything goes to the model.
        before = len(scripted.requests)
        _attach(chat, ("photo.png", "image/png", b"<svg onload='alert(1)'></svg>"))
        chat.send("first")
        assert "photo.png: its content is not a PNG, JPEG, GIF or WebP image" in _error_text(
            chat, "photo.png"
        )
        chat.wait_turns(1)
        _attach(chat, ("bomb.png", "image/png", png_bomb()))
        chat.send("second")
        assert "bomb.png: the image has more pixels than the limit" in _error_text(chat, "bomb.png")
        chat.wait_turns(2)
        assert len(scripted.requests) == before
        threads = chat.page.evaluate(
            """async () => (await fetch('/project/threads', {method: 'POST', credentials: 'include',
                headers: {'content-type': 'application/json'},
                body: JSON.stringify({pagination: {first: 20}, filter: {}})})).json()"""
        )
        assert threads["data"] == []  # refused messages, and their files, are not kept
        # The server refuses a body over the upload cap itself, whatever a client claims.
        status = chat.page.evaluate(
            """async () => {
                const form = new FormData();
                form.append('file', new Blob([new Uint8Array(1200000)], {type: 'text/plain'}), 'big.txt');
                const sid = [...document.cookie.split('; ')].length;  // any value: refused before lookup
                const r = await fetch('/project/file?session_id=x' + sid, {method: 'POST', body: form,
                    credentials: 'include'});
                return r.status;
            }"""
        )
        assert status == 413
    finally:
        chat.close()


def _thread_id(chat: ChatPage) -> str:
    """The chat's thread, from the address Chainlit's page moves to after the first message."""
    chat.page.wait_for_url(re.compile(r"/thread/[0-9a-f-]+$"), timeout=30_000)
    return chat.page.url.rsplit("/", 1)[-1]


def _stored_elements(chat: ChatPage) -> list[dict[str, Any]]:
    """The thread's stored elements once there are any: Chainlit writes them in a task of its own,
    after the reply (a CI-like run read the thread before they had landed)."""
    handle = chat.page.wait_for_function(
        """async (id) => {
            const thread = await (await fetch(`/project/thread/${id}`, {credentials: 'include'})).json();
            return thread.elements && thread.elements.length ? thread.elements : null;
        }""",
        arg=_thread_id(chat),
        polling=200,
        timeout=30_000,
    )
    elements: list[dict[str, Any]] = handle.json_value()
    return elements


def _fetch(chat: ChatPage, path: str) -> dict[str, Any]:
    result: dict[str, Any] = chat.page.evaluate(
        """async (path) => {
            const r = await fetch(path, {credentials: 'include'});
            return {status: r.status, type: r.headers.get('content-type'),
                    nosniff: r.headers.get('x-content-type-options'), body: await r.text()};
        }""",
        path,
    )
    return result


def test_stored_attachment_when_other_user_fetches_then_not_found_and_owner_gets_it_inert(
    browser: Browser, start_app: AppFactory, scripted: ScriptedServer, tmp_path: Path
) -> None:
    add_account(tmp_path / "data", "alice", "alice's password")
    add_account(tmp_path / "data", "bob", "bob's password")
    env = clean_env(OPENAI_API_KEY="test-key")
    url = start_app("--base-url", scripted.url, "--model", MODEL_ID, env=env)
    alice = ChatPage.open(browser, url, login=("alice", "alice's password"))
    bob = ChatPage.open(browser, url, login=("bob", "bob's password"))
    try:
        page_html = b"<html><body><script>document.title='ran'</script></body></html>"
        _attach(alice, ("page.html", "text/html", page_html))
        alice.send("keep this #script text=kept")
        alice.wait_text("kept")
        alice.wait_turns(1)
        elements = _stored_elements(alice)
        assert len(elements) == 1 and elements[0]["url"].startswith("/smart-agent/attachments/")
        mine = _fetch(alice, elements[0]["url"])
        assert mine["status"] == 200 and mine["body"] == page_html.decode()
        assert mine["type"] == "text/plain; charset=utf-8" and mine["nosniff"] == "nosniff"
        theirs = _fetch(bob, elements[0]["url"])
        assert theirs["status"] == 404 and page_html.decode() not in theirs["body"]
        # Chainlit's own route for the live session's copy answers as inertly.
        live = alice.page.locator('[data-step-type="user_message"] a[href*="/project/file/"]').first
        session_copy = _fetch(alice, str(live.get_attribute("href", timeout=10_000)))
        assert session_copy["status"] == 200 and session_copy["body"] == page_html.decode()
        assert session_copy["type"] == "text/plain; charset=utf-8" and session_copy["nosniff"] == "nosniff"
    finally:
        alice.close()
        bob.close()


def test_reopened_chat_when_app_restarted_then_attachment_shown_and_model_gets_the_same_text(
    browser: Browser, start_app: AppFactory, scripted: ScriptedServer, tmp_path: Path
) -> None:
    env = clean_env(OPENAI_API_KEY="test-key")
    flags = ("--base-url", scripted.url, "--model", MODEL_ID)
    url = start_app(*flags, env=env)
    chat = ChatPage.open(browser, url)
    try:
        _attach(chat, ("notes.md", "text/markdown", NOTES.encode()), ("red.png", "image/png", png(40, 30)))
        chat.send("remember #script text=first_answer")
        chat.wait_text("first_answer")
        chat.wait_turns(1)
        first = scripted.requests[-1]["messages"][-1]["content"]
        thread_id = _thread_id(chat)
    finally:
        chat.close()
    second_url = start_app(*flags, env=env)  # a new process: the first one's .files/ are gone
    chat = ChatPage.open(browser, second_url)
    try:
        chat.page.locator(f"#thread-{thread_id}").click(timeout=30_000)  # reopened from the sidebar
        chat.page.wait_for_url(f"**/thread/{thread_id}", timeout=30_000)
        image = chat.page.locator('[data-step-type="user_message"] img').first
        image.wait_for(timeout=30_000)
        chat.page.wait_for_function(
            "(img) => img.complete && img.naturalWidth === 40", arg=image.element_handle()
        )
        chat.page.locator("text=notes.md").first.wait_for(timeout=10_000)
        chat.send("again #script text=second_answer")
        chat.wait_text("second_answer")
        rebuilt = scripted.requests[-1]["messages"]
        user_turns = [m for m in rebuilt if m["role"] == "user"]
        assert user_turns[0]["content"] == first  # the same text and image parts as the first time
    finally:
        chat.close()


def test_attach_when_text_file_exceeds_context_then_cut_with_visible_notice(
    browser: Browser, start_app: AppFactory, scripted: ScriptedServer
) -> None:
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_CONTEXT_TOKENS="1024")
    url = start_app("--base-url", scripted.url, "--model", MODEL_ID, env=env)
    chat = ChatPage.open(browser, url)
    try:
        _attach(chat, ("long.txt", "text/plain", ("line of text\n" * 2_000).encode()))
        chat.send("summarise #script text=cut_seen")
        chat.wait_text("cut_seen")
        notice = _error_text(chat, "long.txt was cut to")
        assert "of its 26,000 characters to fit the model's context" in notice
        content = scripted.requests[-1]["messages"][-1]["content"]
        assert content.startswith("summarise #script text=cut_seen\n\nAttached file long.txt:\n```\nline of")
        assert content.endswith(f"{CUT_NOTE}\n```") and len(content) < 3_000
    finally:
        chat.close()
