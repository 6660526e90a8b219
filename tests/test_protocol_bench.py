"""The protocol benchmark's quick mode runs end to end: every protocol measured, every reply exact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.protocol_bench import PROTOCOLS, Reader
from tests.harness import ROOT


@pytest.mark.slow
def test_quick_mode_when_run_then_every_protocol_has_a_row_and_every_client_text_is_exact(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.protocol_bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((tmp_path / "protocol_bench_quick.json").read_text())
    assert [row["protocol"] for row in rows] == list(PROTOCOLS)
    for row in rows:
        assert row["log"] == "memory"
        assert row["errors"] == [], row
        assert row["exact"] == row["clients"] == 5, row
        assert row["tokens"] == 5 * row["tokens_per_reply"], row
        assert row["app_cpu_s"] >= 0 and row["latency_ms_p99"] >= row["latency_ms_p50"] >= 0, row
    table = (tmp_path / "protocol_bench_quick.md").read_text()
    for protocol in PROTOCOLS:
        assert f"| memory | {protocol} | 5 / 5 |" in table


def test_exact_when_a_token_is_missing_repeated_or_foreign_then_not_exact() -> None:
    whole = " c0@1.5 c1@1.6 c2@1.7"
    for text, ended, exact in (
        (whole, "done", True),
        (whole, "error", False),
        (" c0@1.5 c2@1.7", "done", False),
        (" c0@1.5 c1@1.6 c1@1.6 c2@1.7", "done", False),
        (whole + " extra", "done", False),
    ):
        reader = Reader(ended=ended)
        reader.add(text)
        assert reader.exact(3) is exact, text
        assert len(reader.latencies_ms) == len(text.split()) - text.count("extra")
