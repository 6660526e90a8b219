"""smart-agent: stream LLM replies smoothly into a Chainlit chat UI."""

__version__ = "0.1.0"
