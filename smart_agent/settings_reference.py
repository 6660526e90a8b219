"""The configuration reference (docs/configuration.md), made from the settings model so it cannot drift.

Run `python -m smart_agent.settings_reference` after changing a setting; a test checks the page.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from smart_agent.config import Settings
from smart_agent.oauth import OAUTH_PROVIDER_VARS
from smart_agent.setting import allowed, default_text, source, value_type

PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

_INTRO = """\
# Configuration

<!-- Made by `python -m smart_agent.settings_reference` from the settings model in
smart_agent/config.py: change the model, then run it again. A test checks this page. -->

Every setting is read once, when smart-agent starts, from the first of these that has it:

1. a command-line flag (`smart-agent chainlit --batch-size 10`);
2. the environment (`SMART_AGENT_BATCH_SIZE=10`);
3. a `.env` file in the folder smart-agent is started from (`.env.example` lists every variable);
4. the default.

A value that is not allowed stops smart-agent with exit code 2 and one line naming the value,
where it came from and what is allowed. The chat app receives the settings from the launcher in
the same process, which also exports them as these variables. A switch is written `1` or `0`
(`true`/`false`, `yes`/`no` and `on`/`off` work too).
"""


def _cell(text: str) -> str:
    """`text` safe in a Markdown table cell: no column breaks, no HTML tags."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _default(name: str) -> str:
    info = Settings.model_fields[name]
    if value_type(info)[0] is bool and source(info).default_text is None:
        return "`1`" if info.default else "`0`"
    shown = default_text(info)
    if shown is None:
        return "unset"
    return _cell(shown) if source(info).default_text is not None else f"`{shown}`"


def _flag(name: str) -> str:
    spec = source(Settings.model_fields[name])
    if spec.flag is None:
        return ""
    return f"`{spec.flag} {spec.metavar}`" if spec.metavar else f"`{spec.flag}`"


def _variable(name: str) -> str:
    spec = source(Settings.model_fields[name])
    return f"`{spec.env}`, else `{spec.fallback_env}`" if spec.fallback_env else f"`{spec.env}`"


def _settings() -> list[str]:
    sections: dict[str, list[str]] = {}
    for name, info in Settings.model_fields.items():
        spec = source(info)
        if spec.env is None:
            continue  # only the launcher sets it
        sections.setdefault(spec.section, []).append(
            f"| {_variable(name)} | {_flag(name)} | {_default(name)} | {_cell(allowed(info))} "
            f"| {_cell(info.description or '')} |"
        )
    lines: list[str] = []
    for section, rows in sections.items():
        title = "`smart-agent ask`" if section == "ask" else section
        lines += ["", f"## {title}", "", "| Variable | Flag | Default | Allowed | What it does |"]
        lines += ["| --- | --- | --- | --- | --- |", *rows]
    return lines


def _commands() -> list[str]:
    from smart_agent.cli import app
    from smart_agent.cli.options import help_text

    lines = ["", "## Flags by command", ""]
    lines += ["Each command's flags; those that are not settings above are described here.", ""]
    # Typer carries its own Click: its commands are read by their attributes.
    commands: list[tuple[str, Any]] = []
    for name, command in sorted(getattr(typer.main.get_command(app), "commands", {}).items()):
        if hasattr(command, "commands"):
            commands += [(f"{name} {sub}", cmd) for sub, cmd in sorted(command.commands.items())]
        else:
            commands.append((name, command))
    for name, command in commands:
        options = [param for param in command.params if param.param_type_name == "option"]
        lines.append(f"- `smart-agent {name}`: " + ", ".join(f"`{opt.opts[0]}`" for opt in options))
        for option in options:
            is_setting = option.name in Settings.model_fields and option.help == help_text(option.name)
            if option.help and not is_setting:
                lines.append(f"    - `{option.opts[0]}`: {_cell(option.help)}")
    return lines


def _oauth() -> list[str]:
    lines = ["", "## Login through OAuth", ""]
    lines += [
        "Chainlit reads these variables itself (from the environment only); smart-agent only asks",
        "whether a provider is set up. A provider is on once all of its variables are set.",
        "",
        "| Provider | Variables |",
        "| --- | --- |",
    ]
    for provider, names in OAUTH_PROVIDER_VARS.items():
        lines.append(f"| `{provider}` | {', '.join(f'`{name}`' for name in names)} |")
    return lines


def reference() -> str:
    """The configuration reference page, in Markdown."""
    return "\n".join([_INTRO.rstrip("\n"), *_settings(), *_commands(), *_oauth()]) + "\n"


def main() -> None:
    """Write the page (or with --check, exit 1 if the committed one differs)."""
    text = reference()
    if "--check" in sys.argv[1:]:
        sys.exit(0 if PAGE.read_text() == text else 1)
    PAGE.write_text(text)


if __name__ == "__main__":
    main()
