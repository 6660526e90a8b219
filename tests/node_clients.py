"""The protocols' stock Node clients (tests/node/package.json): installed once, then run as scripts.

`npm ci` installs the pinned versions of package-lock.json from the registry (npm's cache makes a
second install offline); a missing Node or npm fails the test, never skips it. xdist workers share
one install, under a file lock.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).resolve().parent / "node"
INSTALL_SECONDS = 300.0
RUN_SECONDS = 120.0


def node_modules() -> Path:
    """Install the clients of tests/node/package-lock.json (once per checkout) and return the folder."""
    for program in ("node", "npm"):
        if shutil.which(program) is None:
            raise RuntimeError(f"{program} is missing: the protocol tests need Node 20 and npm")
    stamp = NODE_DIR / "node_modules" / ".installed-lock.json"
    lock = (NODE_DIR / "package-lock.json").read_text(encoding="utf-8")
    with (NODE_DIR / ".install.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # the other xdist worker waits for this install
        if not stamp.exists() or stamp.read_text(encoding="utf-8") != lock:
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"],
                cwd=NODE_DIR,
                check=True,
                capture_output=True,
                timeout=INSTALL_SECONDS,
            )
            stamp.write_text(lock, encoding="utf-8")
    return NODE_DIR / "node_modules"


def run_node(script: str, payload: dict[str, Any], timeout: float = RUN_SECONDS) -> Any:
    """Run `script` (ES module source) with Node in tests/node, `payload` as JSON on stdin; return
    the JSON it prints last on stdout. A non-zero exit fails with its stderr."""
    node_modules()
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=NODE_DIR,
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise AssertionError(f"node exited {done.returncode}: {done.stderr[-4000:]}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise AssertionError(f"node printed nothing; stderr: {done.stderr[-4000:]}")
    return json.loads(lines[-1])
