"""Open written reports in headless Chromium: every image loads, the page is not blank, and
the Jupyter fragment restyles nothing outside its own container.

Skipped when Chromium is not installed (``.ci/run`` installs Debian's ``chromium``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from test_report import doors

from behavioral import report as rp
from behavioral.auditing import audit_demonstrations
from behavioral.sampling import sample_demonstrations
from behavioral.tabular import soft_bellman

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

# Appended to a copy of the page: once everything has loaded, write one line per <img>
# (its natural size) into the DOM, which --dump-dom then prints.
PROBE = """
<script>
window.addEventListener("load", () => {
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = Array.from(document.images)
    .map((img) => `img ${img.complete ? 1 : 0} ${img.naturalWidth} ${img.naturalHeight}`)
    .join("\\n") + `\\nbody ${document.body.innerText.trim().length}`;
  document.body.appendChild(out);
});
</script>
"""


def chromium(*args: str, user_dir: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={user_dir}",
            "--virtual-time-budget=10000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def audits() -> list:
    seeker = 5 * doors().objectives["right_door"]
    out = []
    for split, same in (("train", True), ("deploy", False)):
        m = doors(same=same)
        _, _, pi = soft_bellman(m, seeker)
        demos = sample_demonstrations(m, pi, 40, np.random.default_rng(7))
        out.append(audit_demonstrations(m, demos, metadata={"split": split}))
    return out


@pytest.fixture(scope="module")
def reports(audits: list, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("browser")
    single = audits[1].save(root / "single")
    comparison = rp.write_comparison_report(audits, root / "comparison")
    return {"single": single / "report.html", "comparison": comparison / "report.html"}


@pytest.mark.parametrize("which", ["single", "comparison"])
def test_every_image_loads(reports: dict[str, Path], which: str, tmp_path: Path) -> None:
    page = reports[which]
    html = page.read_text(encoding="utf-8")
    n_images = html.count("<img ")
    assert n_images >= 3
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = chromium("--dump-dom", probe.as_uri(), user_dir=tmp_path / "profile")
    assert proc.returncode == 0, proc.stderr[-2000:]
    match = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, proc.stdout[-2000:]
    lines = match.group(1).strip().splitlines()
    images = [line.split() for line in lines if line.startswith("img ")]
    assert len(images) == n_images
    for _, complete, width, height in images:
        assert complete == "1" and int(width) > 50 and int(height) > 50
    body = int(lines[-1].split()[1])
    assert body > 500  # the verdict, reason, table and captions are there as text


def test_screenshot_is_not_blank(reports: dict[str, Path], tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    proc = chromium(
        "--window-size=1200,2000",
        f"--screenshot={shot}",
        reports["single"].as_uri(),
        user_dir=tmp_path / "profile",
    )
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    img = matplotlib.image.imread(shot)[..., :3]
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    # not blank: many distinct colours, and a good share of non-white pixels
    non_white = np.mean(np.any(img < 0.95, axis=-1))
    assert non_white > 0.05
    colours = np.unique((img[::4, ::4] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50


# A host page (a notebook, say) with its own table, heading and code; the probe prints the
# computed style of each of them, and of the fragment's own table header.
HOST = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<h1 id="h1">host</h1><h2 id="h2">host</h2><table id="table"><tr><th id="th">a</th>
<td id="td">b</td></tr></table><code id="code">x</code>
FRAGMENT
<script>
window.addEventListener("load", () => {
  const props = ["fontSize", "fontFamily", "borderTopWidth", "backgroundColor", "padding",
                 "marginTop", "borderBottomWidth", "borderCollapse", "color"];
  const line = (label, el) => label + " " + props.map((p) => getComputedStyle(el)[p]).join("|");
  const ids = ["h1", "h2", "table", "th", "td", "code"];
  const lines = ids.map((id) => line(id, document.getElementById(id)));
  const own = document.querySelector(".behavioral-report th");
  if (own) lines.push(line("own-th", own));
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = lines.join("\\n");
  document.body.appendChild(out);
});
</script></body></html>
"""


def host_styles(fragment: str, tmp_path: Path, name: str) -> dict[str, str]:
    page = tmp_path / f"{name}.html"
    page.write_text(HOST.replace("FRAGMENT", fragment), encoding="utf-8")
    proc = chromium("--dump-dom", page.as_uri(), user_dir=tmp_path / f"profile-{name}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    match = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, proc.stdout[-2000:]
    return dict(line.split(" ", 1) for line in match.group(1).strip().splitlines())


def test_notebook_fragment_restyles_nothing_outside_it(audits: list, tmp_path: Path) -> None:
    """Rendered in a browser next to a host page's own elements (as in Jupyter), the
    fragment's style sheet leaves them exactly as they were, and styles its own table."""
    bare = host_styles("", tmp_path, "bare")
    with_fragment = host_styles(audits[1]._repr_html_(), tmp_path, "with")
    own = with_fragment.pop("own-th")
    assert with_fragment == bare
    assert own.split("|")[2] == "1px"  # the report's table is styled (a 1px border)
    assert bare["th"].split("|")[2] == "0px"  # the host's is not


def test_active_audit_report_loads_in_chromium(tmp_path: Path) -> None:
    """An active audit's report: its design section's figures load like every other."""
    import behavioral
    from behavioral.environments import make_env
    from behavioral.policies import SoftOptimalPolicy

    env = make_env("behavioral/RedDoors-v0", split="train", kwargs={"size": 5})
    a = behavioral.audit(
        SoftOptimalPolicy("red_door", beta=5.0), env, episodes=12, design="active", seed=0,
        n_bootstrap=20, design_options={"pool": 16, "roots": 4, "search_children": 8},
    )  # fmt: skip
    html = (a.save(tmp_path / "r") / "report.html").read_text(encoding="utf-8")
    assert "Levels chosen by the audit" in html
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = chromium("--dump-dom", probe.as_uri(), user_dir=tmp_path / "profile")
    assert proc.returncode == 0, proc.stderr[-2000:]
    match = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, proc.stdout[-2000:]
    images = [x.split() for x in match.group(1).strip().splitlines() if x.startswith("img ")]
    assert len(images) == html.count("<img ") >= 5
    assert all(c == "1" and int(w) > 50 and int(h) > 50 for _, c, w, h in images)
