"""Start N `smart-agent chainlit` instances on loopback behind HAProxy; Ctrl-C stops them all.

    SMART_AGENT_DATABASE_URL=postgresql://... CHAINLIT_AUTH_SECRET=... \\
      python -m deploy.start --bind 0.0.0.0:8080 --public-origin https://chat.example.com \\
      --ports 8001,8002 -- --base-url http://127.0.0.1:11434/v1 --model llama3.2

Every instance gets this process's environment (the shared database, JWT secret and Redis), chat
history on, and the public origin added to SMART_AGENT_ALLOWED_ORIGINS. See deploy/README.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from smart_agent.cli.options import parse_port
from smart_agent.config import ConfigError, load_settings
from smart_agent.urls import parse_origin
from smart_agent.web.origins import is_loopback

TEMPLATE = Path(__file__).with_name("haproxy.cfg")
HAPROXY = "/usr/sbin/haproxy"
SERVERS_LINE = re.compile(r"^([ \t]*)@SERVERS@[ \t]*$", re.MULTILINE)
STICKY_LINE = re.compile(r"^\s*cookie SA_INSTANCE .*\n", re.MULTILINE)
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
_WILDCARDS = {"0.0.0.0", "::", "[::]", "*", ""}


class DeployError(Exception):
    """A flag or setting is not allowed; the message names it in one line (exit 2)."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while the instances were still starting."""


class StartError(DeployError):
    """A process did not start or HAProxy refused its config; the message says where to look (exit 1)."""


def render(template: str, ports: Sequence[int], *, sticky: bool = True) -> str:
    """The HAProxy config for instances on these loopback ports; `sticky=False` only for measuring."""
    indent = SERVERS_LINE.search(template)
    if indent is None:
        raise DeployError(f"{TEMPLATE} has no @SERVERS@ line")
    lines = [
        f"{indent.group(1)}server app{i} 127.0.0.1:{port}" + (f" cookie app{i}" if sticky else "")
        for i, port in enumerate(ports, 1)
    ]
    rendered = SERVERS_LINE.sub(lambda _: "\n".join(lines), template)
    return rendered if sticky else STICKY_LINE.sub("", rendered)


def haproxy_env(bind: str, public_origin: str) -> dict[str, str]:
    """The variables the config template reads."""
    return {"SA_BIND": bind, "SA_PUBLIC_HOST": urlsplit(public_origin).netloc}


def public_origin_for(bind: str, given: str | None) -> str:
    """The origin browsers use: the one given, else http://BIND (a wildcard bind needs one given)."""
    if given:
        try:
            return parse_origin(given)
        except ValueError as exc:
            raise DeployError(f"--public-origin {given!r} {exc}") from None
    host = bind.rpartition(":")[0]
    if host in _WILDCARDS:
        raise DeployError(
            f"--bind {bind} listens on every address: name browsers' origin with --public-origin"
        )
    return parse_origin(f"http://{bind}")


def parse_ports(text: str) -> list[int]:
    """`8001,8002` as ports; DeployError naming the value otherwise."""
    refused = DeployError(f"--ports {text!r} must be distinct TCP ports separated by commas, e.g. 8001,8002")
    try:
        ports = [parse_port(part) for part in text.split(",")]
    except (ValueError, ConfigError):
        raise refused from None
    if len(set(ports)) != len(ports):
        raise refused
    return ports


def instance_env(public_origin: str) -> dict[str, str]:
    """This process's environment, checked, plus history on and the public origin allowed."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise DeployError(str(exc)) from None
    if not (settings.database_url or "").startswith(("postgresql", "postgres:")):
        raise DeployError(
            "SMART_AGENT_DATABASE_URL must be a postgresql:// URL that every instance shares "
            "(chat threads must outlive the instance that served them)"
        )
    if not settings.auth_secret:
        raise DeployError("CHAINLIT_AUTH_SECRET must be set (32+ characters), the same for every instance")
    env = dict(os.environ)
    env["SMART_AGENT_HISTORY"] = "1"
    env["SMART_AGENT_ALLOWED_ORIGINS"] = ",".join(dict.fromkeys([*settings.allowed_origins, public_origin]))
    return env


def check_login(bind: str, env: dict[str, str]) -> None:
    """Refuse a public --bind while no account exists.

    The instances listen on loopback, where the app signs in the local user without a password for
    as long as no account exists (docs/history.md, 'Login'); behind a public HAProxy that would be anyone.
    """
    if is_loopback(bind.rpartition(":")[0]):
        return
    listed = subprocess.run(
        [sys.executable, "-m", "smart_agent", "users", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if listed.returncode != 0:
        raise DeployError(f"cannot list the accounts: {listed.stderr.strip()}")
    if not listed.stdout.strip():
        raise DeployError(
            f"--bind {bind} would let anyone who reaches it chat as the local user, signed in without a "
            "password while no account exists: add one first with `smart-agent users add NAME` (same "
            "SMART_AGENT_DATABASE_URL), see docs/history.md, 'Login'"
        )


def _answers(url: str, host: str) -> bool:
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Child:
    """A process this script started, with its name and log."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path


class Deployment:
    """The instances and the balancer; `stop()` ends them all, the balancer first."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []
        self.changed = threading.Event()
        self.stopping = threading.Event()

    def spawn(self, name: str, command: list[str], env: dict[str, str]) -> Child:
        """Start a process in its own session (so Ctrl-C reaches only this script), logging to a file."""
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                command,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        child = Child(name, process, log)
        self.children.append(child)
        threading.Thread(target=self._watch, args=(child,), daemon=True).start()
        return child

    def _watch(self, child: Child) -> None:
        child.process.wait()
        self.changed.set()

    def wait_ready(self, child: Child, url: str, host: str, deadline: float) -> None:
        """Wait until `url` answers 200 with this Host, or fail naming the child and its log."""
        while not _answers(url, host):
            if self.stopping.is_set():
                raise Interrupted
            if child.process.poll() is not None:
                code = child.process.returncode
                raise StartError(f"{child.name} exited with {code} while starting; see {child.log}")
            if time.monotonic() > deadline:
                raise StartError(
                    f"{child.name} did not answer {url} in {START_TIMEOUT_S:g} s; see {child.log}"
                )
            time.sleep(0.2)  # a child process's readiness shows only as answering HTTP

    def stop(self) -> None:
        """SIGTERM every child, the balancer first; SIGKILL those still running after the grace time."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()


def _say(text: str) -> None:
    print(f"deploy: {text}", flush=True)


def run(args: argparse.Namespace) -> int:
    """Start everything, then supervise until a signal or until nothing is left to serve."""
    ports = parse_ports(args.ports)
    public = public_origin_for(args.bind, args.public_origin)
    env = instance_env(public)
    check_login(args.bind, env)
    haproxy = shutil.which(args.haproxy) or args.haproxy
    if not Path(haproxy).exists():
        raise DeployError(f"{args.haproxy} is missing: apt-get install -y haproxy")
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="smart-agent-deploy-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    config = log_dir / "haproxy.cfg"
    config.write_text(render(TEMPLATE.read_text(), ports))
    proxy_env = {**os.environ, **haproxy_env(args.bind, public)}
    check = subprocess.run(
        [haproxy, "-c", "-f", str(config)], env=proxy_env, capture_output=True, text=True, timeout=30
    )
    if check.returncode != 0:
        alerts = [line for line in (check.stderr + check.stdout).splitlines() if "ALERT" in line]
        raise StartError(f"haproxy refused {config}: {alerts[0] if alerts else check.returncode}")

    deployment = Deployment(log_dir)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        deployment.stopping.set()
        deployment.changed.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        program = [sys.executable, "-m", "smart_agent", "chainlit", "--headless", "--host", "127.0.0.1"]
        # All at once: concurrent starts against one empty database are safe (migrations take a
        # PostgreSQL advisory lock, smart_agent/history/migrate.py).
        apps = [
            deployment.spawn(f"app{i}", [*program, "--port", str(port), *args.flags], env)
            for i, port in enumerate(ports, 1)
        ]
        for app, port in zip(apps, ports, strict=True):
            deployment.wait_ready(app, f"http://127.0.0.1:{port}/health", f"127.0.0.1:{port}", deadline)
            _say(f"{app.name} (pid {app.process.pid}) at http://127.0.0.1:{port}, log {app.log}")
        proxy = deployment.spawn("haproxy", [haproxy, "-db", "-f", str(config)], proxy_env)
        local = args.bind.replace("0.0.0.0:", "127.0.0.1:", 1)  # a wildcard bind answers on loopback too
        deployment.wait_ready(proxy, f"http://{local}/health", proxy_env["SA_PUBLIC_HOST"], deadline)
        _say(f"haproxy (pid {proxy.process.pid}) on {args.bind}, log {proxy.log}")
        _say(f"serving {public} through {len(apps)} instances; Ctrl-C stops them all")
        return _supervise(deployment, proxy, apps)
    except Interrupted:
        _say("stopped while starting")
        return 130
    finally:
        deployment.stop()


def _supervise(deployment: Deployment, proxy: Child, apps: list[Child]) -> int:
    """Report instances that end; return once asked to stop (0) or when nothing can serve (1)."""
    reported: set[str] = set()
    while True:
        deployment.changed.wait()
        deployment.changed.clear()
        if deployment.stopping.is_set():
            _say("stopping")
            return 0
        for child in [proxy, *apps]:
            if child.process.returncode is not None and child.name not in reported:
                reported.add(child.name)
                _say(f"{child.name} exited with {child.process.returncode}; see {child.log}")
        if proxy.process.poll() is not None or all(app.process.poll() is not None for app in apps):
            _say("nothing left to serve: stopping")
            return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags and run; a bad value exits 2 with one line."""
    parser = argparse.ArgumentParser(
        prog="python -m deploy.start",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bind", default="127.0.0.1:8080", help="HAProxy's public address:port")
    parser.add_argument("--public-origin", help="the origin browsers use (default http://BIND)")
    parser.add_argument("--ports", default="8001,8002", help="one loopback port per instance")
    parser.add_argument(
        "--log-dir", help="for the logs and the rendered haproxy.cfg (default: a new temp folder)"
    )
    parser.add_argument("--haproxy", default=HAPROXY, help="the HAProxy binary")
    parser.add_argument("flags", nargs="*", help="after --: flags for every `smart-agent chainlit`")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except DeployError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, StartError) else 2


if __name__ == "__main__":
    sys.exit(main())
