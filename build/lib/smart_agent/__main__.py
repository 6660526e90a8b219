"""`python -m smart_agent` runs the CLI."""

from smart_agent.cli import app

app()
