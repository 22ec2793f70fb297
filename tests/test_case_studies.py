"""The teaching case studies in ``analyses/`` run as scripts in fast mode, write their
figures and a page, and the page states the verdicts the run printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from behavioral.auditing import VERDICTS

ROOT = Path(__file__).resolve().parents[1]
VERDICT_LINE = re.compile(
    r"^verdict (?P<label>.+?): (?P<verdict>\w+)(?: \(proxy: (?P<proxy>\w+)\))?$"
)
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")

# case script -> the labels of the audits it must print a verdict for
CASES = {
    "case_optimized_vs_optimizer.py": ("cap", "planner"),
    "case_red_doors.py": (
        "pseudo on train",
        "pseudo on deploy",
        "robust on train",
        "robust on deploy",
    ),
    "case_joshua.py": (
        "inner on train",
        "inner on deploy",
        "outer on train",
        "outer on deploy",
        "inner on deploy, with water_pots",
    ),
}

EXPECTED = {
    "case_optimized_vs_optimizer.py": {"cap": "unexplained", "planner": "aligned"},
    "case_red_doors.py": {
        "pseudo on train": "indistinguishable",
        "robust on train": "indistinguishable",
    },
}


def run_case(script: str, out: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    env = dict(os.environ, PYTHONWARNINGS="ignore", MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "analyses" / script), "--fast", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    verdicts = {}
    for line in proc.stdout.splitlines():
        m = VERDICT_LINE.match(line)
        if m:
            verdicts[m["label"]] = m["verdict"]
    return proc, verdicts


@pytest.fixture(scope="module", params=sorted(CASES))
def case_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp(request.param.removesuffix(".py")) / "out"
    proc, verdicts = run_case(request.param, out)
    return request.param, out, proc, verdicts


def test_page_and_figures_written(case_run) -> None:
    _, out, _, _ = case_run
    readme = (out / "README.md").read_text(encoding="utf-8")
    images = IMAGE.findall(readme)
    assert len(images) >= 3, images
    for rel in images:
        path = out / rel
        assert path.suffix == ".png" and path.is_file(), rel
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", rel
    # every PNG written is described on the page (directly, or as a full side-by-side report)
    for png in out.rglob("*.png"):
        rel = png.relative_to(out).as_posix()
        assert rel in images or f"{png.parent.name}/report.html" in readme, rel


def test_page_states_the_printed_verdicts(case_run) -> None:
    script, out, proc, verdicts = case_run
    assert set(verdicts) == set(CASES[script]), proc.stdout
    readme = (out / "README.md").read_text(encoding="utf-8")
    for label, verdict in verdicts.items():
        assert verdict in VERDICTS
        assert f"{label}: **{verdict}**" in readme, (label, verdict)
    if "using a stand-in" in proc.stdout:
        assert "STAND-IN" in readme
    # Verdicts fixed by construction, whatever the seed or episode count: the bottle cap
    # pursues nothing, the planner pursues the exit on levels where it is not red, and on
    # RedDoors' train split exit == red door on every level (EPIC distance 0).
    for label, verdict in EXPECTED.get(script, {}).items():
        assert verdicts[label] == verdict, (label, proc.stdout)
