"""Naming a history database must not import Chainlit before the launcher sets its app root."""

import subprocess
import sys

from tests.harness import ROOT, clean_env

_CHECK = """
import sys
from smart_agent.config import load_settings
settings = load_settings(dotenv_path=None)
assert settings.database_url, settings
print(sorted(m for m in sys.modules if m.split(".")[0] == "chainlit"))
"""


def test_settings_when_a_database_url_is_given_then_chainlit_is_not_imported_yet() -> None:
    # Chainlit reads CHAINLIT_APP_ROOT once, when imported: launch.py refuses to start after that.
    env = clean_env(SMART_AGENT_DATABASE_URL="postgresql://app@127.0.0.1:5432/chat")
    env.pop("CHAINLIT_APP_ROOT", None)
    result = subprocess.run(
        [sys.executable, "-c", _CHECK], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
