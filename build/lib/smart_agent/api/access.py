"""Who may use the API: a Bearer key when keys exist, else only a loopback-bound app, openly."""

from __future__ import annotations

import logging

from smart_agent.api.keys import KeyFileError, KeyStore

log = logging.getLogger("smart_agent.api")

OPEN = ""
"""The principal of a request in the open loopback mode (no keys configured)."""


class AccessError(Exception):
    """A request the API refuses: the HTTP status, a stable code for clients and a readable message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        """The response headers the refusal needs: a 401 says which scheme to use (RFC 6750)."""
        return {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}


def _bearer(authorization: str | None) -> str | None:
    """The key of an `Authorization: Bearer KEY` header (scheme case-insensitive, RFC 7235)."""
    if not authorization:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return None
    return key


class Access:
    """The API's access rule, for the routes to call once per request."""

    def __init__(self, keys: KeyStore, loopback: bool) -> None:
        self._keys = keys
        self._loopback = loopback

    def authorize(self, authorization: str | None) -> str:
        """The principal (the key's name; OPEN without keys on loopback), or AccessError.

        The route answers with the error's status, headers and a JSON body of its code and
        message; messages never repeat the key.
        """
        try:
            if not self._keys.configured():
                if self._loopback:
                    return OPEN
                raise AccessError(
                    403,
                    "api_disabled",
                    "The API is off: the app serves a non-loopback address and has no API keys. "
                    "Create one with `smart-agent api-keys add NAME` and send it as "
                    "`Authorization: Bearer KEY`.",
                )
            key = _bearer(authorization)
            if key is None:
                raise AccessError(
                    401,
                    "missing_key",
                    "This API needs a key: send `Authorization: Bearer KEY` "
                    "(keys are made with `smart-agent api-keys add NAME`).",
                )
            name = self._keys.verify(key)
        except KeyFileError as exc:
            # The file's path and problem are for the operator's log, not for API clients.
            log.error("%s", exc)
            raise AccessError(
                500, "key_store_error", "The server cannot read its API keys; its log says why."
            ) from None
        if name is None:
            raise AccessError(401, "invalid_key", "The API key is not valid (unknown or removed).")
        return name
