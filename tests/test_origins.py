"""Which origins and Host values the app answers to, derived from --host, --port and the setting."""

from __future__ import annotations

import pytest

from smart_agent.web.origins import app_origins, host_values, is_loopback


def test_origins_when_wildcard_host_then_loopback_names_and_configured_proxy_only() -> None:
    origins = app_origins("0.0.0.0", 8000, ("https://chat.example.com",))
    assert origins == (
        "http://127.0.0.1:8000",
        "http://localhost:8000",
        "http://[::1]:8000",
        "https://chat.example.com",
    )
    assert host_values(origins) == {
        "127.0.0.1:8000",
        "localhost:8000",
        "[::1]:8000",
        "chat.example.com",
        "chat.example.com:443",
    }


@pytest.mark.parametrize(
    ("host", "added"),
    [("192.168.1.5", "http://192.168.1.5:8000"), ("fd00::5", "http://[fd00::5]:8000"), ("::", None)],
)
def test_origins_when_specific_host_then_it_is_added(host: str, added: str | None) -> None:
    origins = app_origins(host, 8000)
    assert origins[:3] == ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000")
    assert origins[3:] == ((added,) if added else ())


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback_when_asked_then_only_this_machine(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
