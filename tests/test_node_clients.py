"""The stock protocol clients install from the pinned lock file and run under Node 20."""

from __future__ import annotations

from tests.node_clients import run_node

PROBE = """
import { readFileSync } from 'node:fs';
const payload = JSON.parse(readFileSync(0, 'utf8'));
const ai = await import('ai');
const agui = await import('@ag-ui/client');
const version = (name) => JSON.parse(readFileSync(`node_modules/${name}/package.json`, 'utf8')).version;
console.log(JSON.stringify({
  echo: payload.echo,
  node: process.versions.node.split('.')[0],
  ai: version('ai'),
  agui: version('@ag-ui/client'),
  names: [typeof ai.DefaultChatTransport, typeof ai.readUIMessageStream, typeof ai.uiMessageChunkSchema,
          typeof agui.HttpAgent],
}));
"""


def test_node_clients_when_installed_then_the_pinned_versions_load_under_node_20() -> None:
    found = run_node(PROBE, {"echo": "é"})
    assert found == {
        "echo": "é",
        "node": "20",
        "ai": "6.0.333",
        "agui": "1.0.0",
        "names": ["function", "function", "function", "function"],
    }
