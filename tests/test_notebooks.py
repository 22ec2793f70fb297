"""The walkthrough notebook is committed executed and in sync with its script; it
re-executes (nbclient) to the same verdicts; every percent-cell script in ``analyses/``
opens as a notebook through jupytext.

The notebook is generated from ``analyses/walkthrough.py``::

    jupytext --to notebook analyses/walkthrough.py
    jupyter-execute --inplace analyses/walkthrough.ipynb
"""

from __future__ import annotations

import base64
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
ANALYSES = ROOT / "analyses"
SCRIPT = ANALYSES / "walkthrough.py"
NOTEBOOK = ANALYSES / "walkthrough.ipynb"

#: Small enough to read on the repository page.
MAX_NOTEBOOK_BYTES = 250_000
MAX_IMAGES = 4
#: The story the notebook tells: lines its outputs must contain, in this order.
STORY = (
    "verdict: indistinguishable",
    "verdict: proxy | proxy: red_door",
)
#: Verdicts of the "auditing your own policy" section (text of the final table).
OWN_POLICY_VERDICTS = ("aligned", "avoid_cliff", "unexplained")


def cell_sources(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def text_outputs(nb: nbformat.NotebookNode) -> list[str]:
    """Every line of the notebook's text outputs (streams and plain-text results)."""
    lines: list[str] = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                lines += out.text.splitlines()
            elif out.output_type in ("execute_result", "display_data"):
                lines += out.data.get("text/plain", "").splitlines()
    return lines


def check_executed(nb: nbformat.NotebookNode) -> None:
    """Every code cell ran once, in order, without an error; the story is in the outputs."""
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    lines = text_outputs(nb)
    positions = [lines.index(s) for s in STORY]  # ValueError names a missing line
    assert positions == sorted(positions)
    last = code[-1].outputs[-1].data["text/plain"]
    for verdict in OWN_POLICY_VERDICTS:
        assert verdict in last, (verdict, last)


def test_committed_walkthrough_matches_its_script() -> None:
    committed = nbformat.read(NOTEBOOK, as_version=4)
    from_script = jupytext.read(SCRIPT)
    assert cell_sources(committed) == cell_sources(from_script), (
        "analyses/walkthrough.ipynb is out of date: regenerate it from walkthrough.py "
        "(see this module's docstring)"
    )


def test_committed_walkthrough_is_executed_and_small() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    check_executed(nb)
    assert NOTEBOOK.stat().st_size <= MAX_NOTEBOOK_BYTES
    images = [
        base64.b64decode(o.data["image/png"])
        for c in nb.cells
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert 0 < len(images) <= MAX_IMAGES
    assert all(img.startswith(b"\x89PNG") for img in images)


@pytest.mark.parametrize(
    "script", sorted(p.name for p in ANALYSES.glob("*.py") if p.name.startswith(("case_", "walk")))
)
def test_percent_scripts_open_as_notebooks(script: str) -> None:
    nb = jupytext.read(ANALYSES / script)
    nbformat.validate(nb)
    kinds = [c.cell_type for c in nb.cells]
    assert kinds.count("markdown") >= 2 and kinds.count("code") >= 2, kinds
    # and back: the notebook's code is the script's code
    again = jupytext.reads(jupytext.writes(nb, fmt="py:percent"), fmt="py:percent")
    assert cell_sources(again) == cell_sources(nb)


@pytest.mark.slow
def test_walkthrough_re_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbclient import NotebookClient

    monkeypatch.setenv("WALKTHROUGH_OUT", str(tmp_path / "out"))
    nb = jupytext.read(SCRIPT)
    NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(ANALYSES)}}
    ).execute()
    check_executed(nb)
    assert (tmp_path / "out" / "deploy" / "report.html").is_file()
    assert (tmp_path / "out" / "comparison" / "report.html").is_file()
    # the committed outputs are the ones this run gives (the story's lines, same order)
    committed = nbformat.read(NOTEBOOK, as_version=4)
    story = [line for line in text_outputs(nb) if line.startswith("verdict:")]
    assert story == [line for line in text_outputs(committed) if line.startswith("verdict:")]
