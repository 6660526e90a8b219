"""Chainlit log lines that report nothing wrong with this app, kept out of its log."""

from __future__ import annotations

import logging

# Chainlit 2.12 `markdown.get_markdown_str` warns "Translated markdown file for <language> not
# found. Defaulting to chainlit.md." on every page load (GET /project/settings) in a language
# without its own chainlit_<language>.md. smart-agent ships one welcome text for every language on
# purpose, so the warning would only teach operators to ignore warnings.
_EXPECTED = ("Translated markdown file for ",)


class _Expected(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(_EXPECTED))


def install() -> None:
    """Drop Chainlit's expected warnings from its logger (idempotent)."""
    logger = logging.getLogger("chainlit")
    if not any(isinstance(f, _Expected) for f in logger.filters):
        logger.addFilter(_Expected())
