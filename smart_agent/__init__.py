"""smart-agent: stream LLM replies smoothly into a Chainlit chat UI."""

__version__ = "0.1.0"

import logging as _logging

# A library's logs go where the application sends them: without its handlers (the CLI's commands
# other than `chainlit`), Python's last-resort handler must not print them on stderr.
_logging.getLogger("smart_agent").addHandler(_logging.NullHandler())
