"""A team's members and its synthesiser: the shape every team has, built in or read from a file."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Member:
    """One agent of the team: its name, system prompt and, optionally, its own model."""

    name: str
    prompt: str
    model: str | None = None


@dataclass(frozen=True)
class TeamDefinition:
    """The members, who work on every message, and the synthesiser, who writes the answer."""

    members: tuple[Member, ...]
    synthesiser_prompt: str
    synthesiser_model: str | None = None
