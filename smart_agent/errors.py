"""The errors smart-agent raises; their messages are written for the person using it."""


class SmartAgentError(Exception):
    """Base of smart-agent's own errors."""


class ModelError(SmartAgentError):
    """The model backend failed; the message says what happened and what to do."""


class LocalModelError(SmartAgentError):
    """The embedded llama.cpp server could not be started."""


class HistoryError(SmartAgentError):
    """The chat history store failed; the message names the operation and the cause."""


class HistoryAccessError(HistoryError):
    """The acting user may not touch this thread, step, element or feedback."""


class AccountError(SmartAgentError):
    """An account name or password is not allowed, or the name is taken or unknown."""


class SecretFileError(SmartAgentError):
    """The JWT secret file cannot be created or read, or others may read it."""


class ListenError(SmartAgentError):
    """The chat UI cannot listen on its host and port (in use, not allowed, not this machine's)."""
