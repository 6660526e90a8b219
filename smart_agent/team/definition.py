"""The team file (TOML) read and checked, the team a chat uses, and how many members work at once."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from smart_agent.config import ConfigError, Settings
from smart_agent.team.default import DEFAULT_TEAM
from smart_agent.team.members import Member, TeamDefinition

MAX_MEMBERS = 16
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _-]{0,39}")


class TeamConfigError(ConfigError):
    """The team file cannot be used; the message names the file and the problem."""


def _text(table: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = table.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} needs `{key}` as a non-empty string")
    return value.strip()


def parse_team(data: dict[str, Any]) -> TeamDefinition:
    """The team a parsed TOML document defines; ValueError names what is wrong."""
    unknown = set(data) - {"members", "synthesiser"}
    if unknown:
        raise ValueError(f"unknown table(s) {', '.join(sorted(unknown))} (allowed: members, synthesiser)")
    raw_members = data.get("members")
    if not isinstance(raw_members, list) or not raw_members:
        raise ValueError("it needs at least one [[members]] table")
    if len(raw_members) > MAX_MEMBERS:
        raise ValueError(f"it has {len(raw_members)} members; at most {MAX_MEMBERS} are allowed")
    members: list[Member] = []
    for number, raw in enumerate(raw_members, 1):
        where = f"member {number}"
        if not isinstance(raw, dict):
            raise ValueError(f"{where} must be a [[members]] table")
        extra = set(raw) - {"name", "prompt", "model"}
        if extra:
            raise ValueError(
                f"{where} has unknown key(s) {', '.join(sorted(extra))} (allowed: name, prompt, model)"
            )
        name = _text(raw, "name", where)
        assert name is not None
        if not _NAME.fullmatch(name):
            raise ValueError(f"{where}'s name {name!r} must be 1-40 letters, digits, spaces, '-' or '_'")
        if any(member.name.lower() == name.lower() for member in members):
            raise ValueError(f"two members are named {name!r}")
        prompt = _text(raw, "prompt", f"member {name!r}")
        assert prompt is not None
        members.append(Member(name, prompt, _text(raw, "model", f"member {name!r}", required=False)))
    synthesiser = data.get("synthesiser")
    if not isinstance(synthesiser, dict):
        raise ValueError("it needs a [synthesiser] table with a `prompt`")
    extra = set(synthesiser) - {"prompt", "model"}
    if extra:
        raise ValueError(
            f"[synthesiser] has unknown key(s) {', '.join(sorted(extra))} (allowed: prompt, model)"
        )
    prompt = _text(synthesiser, "prompt", "[synthesiser]")
    assert prompt is not None
    return TeamDefinition(
        tuple(members), prompt, _text(synthesiser, "model", "[synthesiser]", required=False)
    )


def load_team(path: str | Path) -> TeamDefinition:
    """The team defined in the TOML file at `path`; TeamConfigError names the file and the problem."""
    where = f"the team file {str(path)!r} (SMART_AGENT_TEAM_CONFIG or --team-config)"
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise TeamConfigError(f"cannot read {where}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TeamConfigError(f"{where} is not valid TOML: {exc}") from None
    try:
        return parse_team(data)
    except ValueError as exc:
        raise TeamConfigError(f"{where}: {exc}") from None


def team_for(settings: Settings) -> TeamDefinition:
    """The team these settings name: the file's, else the built-in one."""
    if settings.team_config:
        return load_team(settings.team_config)
    return DEFAULT_TEAM


def concurrency(settings: Settings, team: TeamDefinition) -> int:
    """Members working at once: the setting, else all of them, or 1 for the embedded model (a small
    model on the CPU: members take turns, each at full speed, and the server's other slot stays
    free for another chat)."""
    if settings.team_concurrency is not None:
        return min(settings.team_concurrency, len(team.members))
    return 1 if settings.uses_embedded_model else len(team.members)
