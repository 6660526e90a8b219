"""The SSE API: routes, keys, limits and metrics, served by the chat app itself."""
