"""Smoke test: the core benchmark runs end to end at its small ``--quick`` sizes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "analyses" / "benchmarks" / "maxent_core.py"


def test_maxent_core_benchmark_quick() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # One row per CliffWorld size: wall and CPU times of both, and the two ratios.
    timing = r"\s+([\d.]+)ms\s+([\d.]+)ms\s+(\d+)x"
    row = r"^\s+(\d+)x(\d+)\s+\d+\s+\d+" + timing + r"\s+\|" + timing + "$"
    rows = re.findall(row, out, re.M)
    assert [(w, h) for w, h, *_ in rows] == [("7", "4"), ("15", "6")]
    for _, _, *values in rows:
        times = [float(v) for i, v in enumerate(values) if i % 3 != 2]
        ratios = [int(v) for i, v in enumerate(values) if i % 3 == 2]
        assert all(t > 0 for t in times) and all(r >= 1 for r in ratios)
    assert re.search(r"cold: soft_bellman .* total [\d.]+s", out)
    assert re.search(r"warm: soft_bellman .* total [\d.]+s", out)
    assert "MaxEnt IRL gradient step" in out and "second call" in out
