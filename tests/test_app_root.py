"""The Chainlit app root the app runs on: its own face, its translations, and the top-level copy of it."""

from __future__ import annotations

import importlib.util
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from smart_agent.web.chainlit_root import SHIPPED_ROOT
from tests.chat_page import ChatPage
from tests.harness import ROOT, clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer
from tools.app_root import KEYS, login_texts

_spec = importlib.util.find_spec("chainlit")
assert _spec is not None and _spec.submodule_search_locations
CHAINLIT_TRANSLATIONS = Path(_spec.submodule_search_locations[0]) / "translations"
SHIPPED_TRANSLATIONS = SHIPPED_ROOT / ".chainlit" / "translations"


def _tree(folder: Path) -> dict[str, bytes]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_top_level_chainlit_folder_and_welcome_text_when_compared_then_exact_copies_of_the_app_root() -> None:
    # The app runs on the packaged app root; the top-level copy is where Chainlit users look.
    # Fix a failure with `python tools/app_root.py sync`.
    assert _tree(ROOT / ".chainlit") == _tree(SHIPPED_ROOT / ".chainlit")
    assert (ROOT / "chainlit.md").read_bytes() == (SHIPPED_ROOT / "chainlit.md").read_bytes()


def test_translations_when_compared_with_chainlits_then_one_each_and_only_the_login_texts_differ() -> None:
    # Chainlit copies a translation it misses into the app root's (linked, read-only) folder: every
    # one of its files must have a counterpart. Fix a failure with `python tools/app_root.py translations`.
    theirs = sorted(p.name for p in CHAINLIT_TRANSLATIONS.glob("*.json"))
    assert sorted(p.name for p in SHIPPED_TRANSLATIONS.iterdir()) == theirs
    for name in theirs:
        original = _flat(json.loads((CHAINLIT_TRANSLATIONS / name).read_text(encoding="utf-8")))
        shipped = _flat(json.loads((SHIPPED_TRANSLATIONS / name).read_text(encoding="utf-8")))
        assert {k: v for k, v in shipped.items() if k not in KEYS} == {
            k: v for k, v in original.items() if k not in KEYS
        }, name
        assert {k: shipped[k] for k in KEYS} == login_texts(name.removesuffix(".json")), name


@pytest.mark.parametrize("language", sorted(p.stem for p in CHAINLIT_TRANSLATIONS.glob("*.json")))
def test_login_texts_when_read_in_any_language_then_a_user_name_and_a_human_refusal(language: str) -> None:
    texts = login_texts(language)
    label = texts["auth.login.form.email.label"]
    assert label and "@" not in label and "mail" not in label.lower() and "邮箱" not in label
    assert texts["auth.login.errors.credentialssignin"] == texts["auth.login.errors.credentialsSignin"]
    for key in ("auth.login.errors.credentialssignin", "auth.login.errors.toomanysignins"):
        assert texts[key] and not re.fullmatch(r"[a-z]+", texts[key]), (language, key)


@pytest.mark.e2e
def test_app_when_started_clean_and_opened_then_its_own_face_and_a_log_without_warnings(
    browser: Browser, scripted: ScriptedServer, tmp_path: Path
) -> None:
    env = clean_env(OPENAI_API_KEY="test-key")
    flags = ("--base-url", scripted.url, "--model", MODEL_ID)
    with running_app(*flags, env=env, log_dir=tmp_path) as (url, _):
        chat = ChatPage.open(browser, url)
        try:
            page = chat.page
            assert page.title() == "smart-agent"
            logo = page.locator("img.logo").first
            logo.wait_for(timeout=10_000)
            assert logo.evaluate("(img) => img.complete && img.naturalWidth") > 0
            chat.send("#script tokens=5")
            chat.wait_turns()
        finally:
            chat.close()
        for theme in ("light", "dark"):
            with urllib.request.urlopen(f"{url}/logo?theme={theme}", timeout=10) as response:
                assert response.headers["Content-Type"] == "image/png"
                assert response.read() == (SHIPPED_ROOT / "public" / f"logo_{theme}.png").read_bytes()
        with urllib.request.urlopen(f"{url}/favicon", timeout=10) as response:
            assert response.headers["Content-Type"].startswith("image/svg+xml")
            assert response.read() == (SHIPPED_ROOT / "public" / "favicon.svg").read_bytes()
        log = (tmp_path / f"app-{url.rsplit(':', 1)[1]}.log").read_text()
    assert "smart-agent: chat UI at" in log
    for noise in ("WARNING", "ERROR", "Traceback", "Missing custom logo", "Translated markdown file"):
        assert noise not in log, log
