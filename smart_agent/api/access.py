"""TEMPORARY stand-in until the keys branch lands: open on loopback."""

from __future__ import annotations


class AccessError(Exception):
    """A request the access rule refuses."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Access:
    """Open on loopback, closed elsewhere."""

    def __init__(self, keys: object, loopback: bool) -> None:
        self.loopback = loopback

    def authorize(self, authorization: str | None) -> str:
        """The principal."""
        if not self.loopback:
            raise AccessError(403, "api_disabled", "no keys")
        return ""
