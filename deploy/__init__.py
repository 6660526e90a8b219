"""The multi-instance recipe: HAProxy in front of several smart-agent instances (see README.md here)."""
