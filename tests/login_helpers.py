"""Signing in to the real app as the page does: accounts through the CLI, cookies from POST /login."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.harness import ROOT, clean_env


def add_account(data_dir: Path, name: str, password: str) -> None:
    """`smart-agent users add NAME` on this data folder, the password piped in."""
    users(data_dir, "add", name, stdin=password)


def users(data_dir: Path, *args: str, stdin: str = "") -> None:
    """Run `smart-agent users ARGS` on this data folder; fails unless it succeeds."""
    done = subprocess.run(
        [sys.executable, "-m", "smart_agent", "users", *args, "--data-dir", str(data_dir)],
        input=stdin.encode(),
        capture_output=True,
        cwd=ROOT,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()


def cookie_headers(url: str, response: httpx.Response) -> dict[str, str]:
    """The request headers that carry the cookies `response` set (and the app's Origin)."""
    cookies = "; ".join(f"{name}={value}" for name, value in response.cookies.items())
    return {"Cookie": cookies, "Origin": url}


async def password_login(url: str, name: str, password: str) -> httpx.Response:
    """POST /login with the form fields the page sends."""
    async with httpx.AsyncClient(base_url=url, timeout=30, headers={"Origin": url}) as http:
        return await http.post("/login", data={"username": name, "password": password})


async def signed_in(url: str, name: str, password: str) -> dict[str, str]:
    """The headers of a user signed in by password; fails if the sign-in is refused."""
    response = await password_login(url, name, password)
    assert response.status_code == 200, response.text
    return cookie_headers(url, response)


async def call(
    url: str, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
) -> httpx.Response:
    """One HTTP request to the app with these headers (default: only the Origin)."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        return await http.request(method, path, headers=headers or {"Origin": url}, json=body)
