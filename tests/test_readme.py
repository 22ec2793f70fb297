"""Every ```python block of README.md runs as written, in a fresh interpreter.

The README's conventions (HTML comments, invisible on the rendered page, on the lines
directly above a block's opening fence; its last section states them for contributors):

- ``<!-- continues -->``: the block continues the previous one (it runs after it, in the same
  interpreter). Any other block must be self-contained.
- ``<!-- slow -->``: the block takes minutes (the prose says how long); the program it
  belongs to is marked ``slow``.

A *program* is a self-contained block and the blocks that continue it; each runs once, in a
subprocess of this interpreter, from an empty temporary directory (whatever it writes lands
there, never in the repository). Inside a block, a line ending in ``# -> TEXT`` states what
that line prints: ``TEXT`` must be a line of the program's output, in the order of the
``# ->`` lines.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

MARKER = re.compile(r"^<!--\s*(?P<words>[\w\s-]+?)\s*-->$")
KNOWN_MARKERS = frozenset({"continues", "slow"})
FENCE = re.compile(r"^```(?P<lang>\S*)\s*$")
EXPECT = re.compile(r"#\s*->\s*(?P<text>.+?)\s*$")


@dataclasses.dataclass(frozen=True)
class Block:
    """One ```python block: its first code line's number, its code and its markers."""

    line: int
    code: str
    markers: frozenset[str]


@dataclasses.dataclass(frozen=True)
class Program:
    """A self-contained block and the blocks that continue it."""

    blocks: tuple[Block, ...]

    @property
    def code(self) -> str:
        return "\n".join(b.code for b in self.blocks)

    @property
    def slow(self) -> bool:
        return any("slow" in b.markers for b in self.blocks)

    @property
    def expected(self) -> list[str]:
        return [
            m["text"] for b in self.blocks for m in map(EXPECT.search, b.code.splitlines()) if m
        ]

    @property
    def name(self) -> str:
        return "README.md:" + "+".join(str(b.line) for b in self.blocks)


def parse_blocks(text: str) -> list[Block]:
    """Every ```python block of ``text`` with the markers on the lines just above it.

    Raises:
        ValueError: an unknown marker, or an unclosed fence.
    """
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise ValueError(f"README.md:{i + 1}: unclosed code fence")
        if fence["lang"] == "python":
            markers: set[str] = set()
            j = i - 1
            while j >= 0 and (m := MARKER.match(lines[j].strip())):
                markers.update(m["words"].split())
                j -= 1
            unknown = markers - KNOWN_MARKERS
            if unknown:
                raise ValueError(f"README.md:{i}: unknown marker(s) {sorted(unknown)}")
            blocks.append(Block(i + 2, "\n".join(lines[i + 1 : end]) + "\n", frozenset(markers)))
        i = end + 1
    return blocks


def programs(blocks: list[Block]) -> list[Program]:
    """Group blocks into programs (a block marked ``continues`` joins the previous one)."""
    groups: list[list[Block]] = []
    for b in blocks:
        if "continues" in b.markers:
            if not groups:
                raise ValueError(f"README.md:{b.line}: the first block cannot continue")
            groups[-1].append(b)
        else:
            groups.append([b])
    return [Program(tuple(g)) for g in groups]


def in_order(expected: list[str], output: list[str]) -> list[str]:
    """The expected lines not found in ``output`` in order (empty when all are)."""
    missing, pos = [], 0
    for text in expected:
        try:
            pos = output.index(text, pos) + 1
        except ValueError:
            missing.append(text)
    return missing


PROGRAMS = programs(parse_blocks(README.read_text(encoding="utf-8")))


def test_parser_reads_markers_and_continuations() -> None:
    text = (
        "x\n```python\na = 1\n```\n<!-- continues -->\n<!-- slow -->\n```python\n"
        "print(a)  # -> 1\n```\n```bash\nls\n```\n```python\nb = 2\n```\n"
    )
    progs = programs(parse_blocks(text))
    assert [len(p.blocks) for p in progs] == [2, 1]
    assert progs[0].slow and not progs[1].slow
    assert progs[0].expected == ["1"]
    assert progs[0].code == "a = 1\n\nprint(a)  # -> 1\n"
    with pytest.raises(ValueError, match="unknown marker"):
        parse_blocks("<!-- contineus -->\n```python\npass\n```\n")
    with pytest.raises(ValueError, match="cannot continue"):
        programs(parse_blocks("<!-- continues -->\n```python\npass\n```\n"))
    with pytest.raises(ValueError, match="unclosed"):
        parse_blocks("```python\npass\n")


def test_in_order_checks_order_and_presence() -> None:
    assert in_order(["a", "c"], ["a", "b", "c"]) == []
    assert in_order(["c", "a"], ["a", "b", "c"]) == ["a"]
    assert in_order(["d"], ["a"]) == ["d"]


def test_readme_has_the_expected_blocks() -> None:
    # the quick audit, your own objectives, environments, datasets, PPO training, EPIC, MaxEnt
    assert len(PROGRAMS) >= 7
    assert sum(p.slow for p in PROGRAMS) >= 1  # PPO training
    assert all(p.expected for p in PROGRAMS if not p.slow), "every fast block checks an output"


def run_program(program: Program, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    script = cwd / "readme_block.py"
    script.write_text(program.code, encoding="utf-8")
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, script.name],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


@pytest.mark.parametrize(
    "program",
    [pytest.param(p, id=p.name, marks=[pytest.mark.slow] if p.slow else []) for p in PROGRAMS],
)
def test_readme_block_runs_as_written(program: Program, tmp_path: Path) -> None:
    proc = run_program(program, tmp_path, timeout=3600 if program.slow else 600)
    assert proc.returncode == 0, f"{program.name} failed:\n{proc.stderr[-4000:]}"
    output = [line.strip() for line in proc.stdout.splitlines()]
    missing = in_order(program.expected, output)
    assert not missing, f"{program.name}: expected lines {missing} not in output:\n{proc.stdout}"


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, markup and punctuation dropped,
    spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_github_slug() -> None:
    assert github_slug("Comparing rewards: EPIC (`behavioral.compare`)") == (
        "comparing-rewards-epic-behavioralcompare"
    )
    assert github_slug("Does the audit get it right? The detection suite") == (
        "does-the-audit-get-it-right-the-detection-suite"
    )


def test_readme_contents_links_point_at_headings() -> None:
    text = README.read_text(encoding="utf-8")
    outside_code = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    headings = {github_slug(h) for h in re.findall(r"^#{1,6} (.+)$", outside_code, flags=re.M)}
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert links, "the README has a contents list"
    assert not [a for a in links if a not in headings], sorted(headings)
