"""The documentation: the README is a short front page whose links resolve, and the site builds strictly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MKDOCS = Path(sys.executable).parent / "mkdocs"  # the venv's, pinned in the test extras

# [text](target) and ![alt](target); the target ends at whitespace (a title may follow) or ")".
_LINK = re.compile(r"(!?)\[[^\]]*\]\(([^)\s]+)[^)]*\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def _links(markdown: str) -> list[tuple[bool, str]]:
    """(is_image, target) of every Markdown link outside fenced code."""
    text = _FENCE.sub("", markdown)
    return [(bang == "!", target) for bang, target in _LINK.findall(text)]


def _relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith(("#", "/"))


def test_readme_when_read_then_a_front_page_of_at_most_150_lines() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move the details into docs/"


def test_readme_when_its_first_commands_read_then_make_run_and_make_test() -> None:
    first_block = re.search(r"^```sh\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands[:2] == ["make run", "make test"]


def test_readme_when_links_followed_then_every_relative_one_is_a_file() -> None:
    links = _links(README.read_text(encoding="utf-8"))
    relative = [target for _, target in links if _relative(target)]
    assert any(target.startswith("docs/") for target in relative)  # the front page links into the docs
    missing = [target for target in relative if not (ROOT / target.split("#")[0]).is_file()]
    assert missing == []


def test_images_when_referenced_from_readme_or_docs_then_they_exist() -> None:
    pages = [README, *sorted(DOCS.glob("*.md"))]
    missing = []
    count = 0
    for page in pages:
        for is_image, target in _links(page.read_text(encoding="utf-8")):
            if is_image and _relative(target):
                count += 1
                if not (page.parent / target).is_file():
                    missing.append(f"{page.relative_to(ROOT)}: {target}")
    assert count >= 10  # the screenshots and plots are referenced, so this checks something
    assert missing == []


def test_site_when_built_strictly_then_it_succeeds_with_nav_and_images(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's banner about its successor
    built = subprocess.run(
        [str(MKDOCS), "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    home = (site / "index.html").read_text(encoding="utf-8")
    for page in ("api", "architecture", "configuration", "history", "library", "performance", "security"):
        assert f'href="{page}.html"' in home, page
    performance = (site / "performance.html").read_text(encoding="utf-8")
    assert 'src="render-pacing.png"' in performance
    assert (site / "render-pacing.png").is_file()
    assert (site / "screens" / "desktop-light-first-reply.png").is_file()
