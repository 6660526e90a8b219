"""The settings the launcher hands to the Chainlit app it runs in this process: parsed once, whole."""

from __future__ import annotations

from smart_agent.config import Settings, load_settings

_handed: list[Settings] = []


def hand_over(settings: Settings) -> None:
    """Give the app these settings; the launcher calls it just before Chainlit loads the app."""
    _handed[:] = [settings]


def handed_settings() -> Settings:
    """The launcher's settings; when the app was started another way (`chainlit run`), the environment's."""
    return _handed[0] if _handed else load_settings()
