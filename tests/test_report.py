"""Tests of the report: the views behind the heatmaps, the plots, and the written files."""

from __future__ import annotations

import base64
import io
import json
import re

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from doors_model import doors
from matplotlib.figure import Figure

from behavioral import TabularModel
from behavioral import report as rp
from behavioral.auditing import audit_demonstrations
from behavioral.irl.maxent import Demonstration, maxent_irl
from behavioral.sampling import sample_demonstrations
from behavioral.tabular import soft_bellman


def expert(model: TabularModel, reward: np.ndarray, n: int, seed: int) -> list[Demonstration]:
    _, _, pi = soft_bellman(model, reward)
    return sample_demonstrations(model, pi, n, np.random.default_rng(seed))


def corridor3() -> TabularModel:
    """Three states in a row at cells (0,0), (0,1), (0,2); actions left, right.

    r(s, a) = 1 for stepping right from state 1 (into state 2), else 0.
    """
    P = np.zeros((3, 2, 3))
    for s in range(3):
        P[s, 0, max(s - 1, 0)] = 1
        P[s, 1, min(s + 1, 2)] = 1
    reward = np.zeros((3, 2))
    reward[1, 1] = 1.0
    return TabularModel(
        transitions=P,
        initial_state_dist=np.array([1.0, 0, 0]),
        horizon=4,
        objectives={"goal": reward},
        base="goal",
        cells=np.array([[0, 0], [0, 1], [0, 2]]),
    )


def png_size(data: bytes) -> tuple[int, int]:
    img = matplotlib.image.imread(io.BytesIO(data), format="png")
    return img.shape[0], img.shape[1]


@pytest.fixture(scope="module")
def proxy_audit():
    m = doors()
    return audit_demonstrations(m, expert(m, 5 * m.objectives["right_door"], 40, seed=1), seed=0)


# ----------------------------------------------------------------------------- views


def test_cell_values_arrival_and_state_attribution() -> None:
    m = corridor3()
    layout = rp.level_layout(m)
    assert layout.shape == (1, 3) and not layout.synthetic
    r = m.objectives["goal"]
    # Arrival: cell 2 is entered by (1, right) r=1 and (2, right) r=0 -> 0.5; cell 1 by
    # (0, right) and (2, left) -> 0; cell 0 by (0, left) and (1, left) -> 0.
    np.testing.assert_allclose(rp.cell_values(m, r, layout), [[0.0, 0.0, 0.5]])
    # Where each step starts, best action: only state 1 has a rewarded action.
    np.testing.assert_allclose(rp.cell_values(m, r, layout, arrival=False), [[0.0, 1.0, 0.0]])
    # A state reward is drawn at its own cell.
    np.testing.assert_allclose(rp.cell_values(m, np.array([3.0, 1.0, 2.0]), layout), [[3, 1, 2]])


def test_cell_values_average_states_that_share_a_cell_and_skip_absorbing() -> None:
    m = corridor3().replace(cells=np.array([[0, 0], [0, 0], [1, 1]]))
    layout = rp.level_layout(m, grid_shape=(2, 3))
    assert layout.shape == (2, 3)
    out = rp.cell_values(m, np.array([1.0, 3.0, 5.0]), layout)
    assert out[0, 0] == 2.0 and out[1, 1] == 5.0
    assert np.isnan(out[0, 1]) and np.isnan(out[1, 2])  # no state there
    d = doors()  # state 7 is absorbing: not drawn
    lay = rp.level_layout(d)
    assert lay.synthetic and lay.shape == (1, 8)
    vals = rp.cell_values(d, np.arange(8.0), lay)
    np.testing.assert_allclose(vals[0, :7], np.arange(7.0))
    assert np.isnan(vals[0, 7])


def test_synthetic_layout_wraps_large_models() -> None:
    P = np.zeros((50, 1, 50))
    P[np.arange(50), 0, np.arange(50)] = 1
    m = TabularModel(transitions=P, initial_state_dist=np.full(50, 1 / 50), horizon=2)
    lay = rp.level_layout(m)
    assert lay.synthetic and lay.shape == (7, 8)
    assert len({tuple(c) for c in lay.cells}) == 50


def test_visitation_counts_every_visited_state() -> None:
    m = corridor3()
    layout = rp.level_layout(m)
    demos = [
        Demonstration(np.array([0, 1, 2, 2]), np.array([1, 1, 1])),
        Demonstration(np.array([0, 0]), np.array([0])),
    ]
    np.testing.assert_array_equal(rp.visitation(demos, layout), [[3, 1, 2]])


def test_canonical_difference_ignores_shaping_scale_and_shift() -> None:
    m = doors()
    layout = rp.level_layout(m)
    base = m.objectives["exit"]
    rng = np.random.default_rng(0)
    phi = rng.normal(size=m.n_states)
    # R'(s, a, s') = 2.5 R(s, a) + phi(s') - phi(s) + 0.3 (discount 1): the same canonical
    # reward as R, so the same Z-scores everywhere.
    shaped = 2.5 * base[:, :, None] + phi[None, None, :] - phi[:, None, None] + 0.3
    same = rp.canonical_difference(m, shaped, base, layout, arrival=False)
    finite = same[np.isfinite(same)]
    assert finite.size == 7
    np.testing.assert_allclose(finite, 0.0, atol=1e-9)
    other = rp.canonical_difference(m, m.objectives["right_door"], base, layout, arrival=False)
    # The right-door reward is higher than the exit's at the right door's state (6),
    # lower at the left door's (0).
    assert other[0, 6] > 0.5 and other[0, 0] < -0.5
    # Z(-R) = -Z(R), and a constant reward has Z = 0.
    z_base = rp.canonical_difference(m, base, np.zeros_like(base), layout, arrival=False)
    flipped = rp.canonical_difference(m, -base, base, layout, arrival=False)
    np.testing.assert_allclose(flipped, -2 * z_base, atol=1e-12)
    assert np.nanmax(np.abs(z_base)) > 0.5


def test_weight_intervals_shrink_with_more_data_as_one_over_sqrt_n() -> None:
    m = doors()
    demos = expert(m, 3 * m.objectives["exit"], 30, seed=3)
    rec = maxent_irl(m, demos, l2=1e-2)
    ci = rp.maxent_weight_intervals([m], demos, rec)
    assert list(ci.index) == list(m.feature_names)
    assert np.all(ci["low"] <= ci["weight"]) and np.all(ci["weight"] <= ci["high"])
    assert np.all(ci["se"] > 0)
    # Four copies of the same episodes: same mean objective, same fit, 4x the information.
    rec4 = maxent_irl(m, demos * 4, l2=1e-2)
    np.testing.assert_allclose(rec4.weights, rec.weights, atol=1e-6)
    ci4 = rp.maxent_weight_intervals([m], demos * 4, rec4)
    np.testing.assert_allclose(ci4["se"].to_numpy(), ci["se"].to_numpy() / 2, rtol=1e-3)
    # A 99% interval is wider than a 95% one.
    wide = rp.maxent_weight_intervals([m], demos, rec, confidence=0.99)
    assert np.all(wide["high"] - wide["low"] > ci["high"] - ci["low"])


def test_weight_intervals_only_for_named_maxent_features() -> None:
    m = doors()
    demos = expert(m, 3 * m.objectives["exit"], 10, seed=4)
    one_hot = maxent_irl(m, demos, features="states", l2=1e-2)
    assert rp.maxent_weight_intervals([m], demos, one_hot) is None


def test_feature_profiles_recover_the_declared_weights() -> None:
    m = doors()
    prof = rp.feature_profiles([m], {k: [v] for k, v in m.objectives.items()})
    np.testing.assert_allclose(prof["exit"], [1, 0, 0], atol=1e-9)
    np.testing.assert_allclose(prof["right_door"], [0, 1, 0], atol=1e-9)
    nonlinear = {"odd": [np.random.default_rng(0).normal(size=(m.n_states, m.n_actions))]}
    assert rp.feature_profiles([m], nonlinear)["odd"].isna().all()
    assert rp.feature_profiles([corridor3()], {"goal": [corridor3().objectives["goal"]]}) is None


# ----------------------------------------------------------------------------- plots


def test_plots_return_figures_and_draw_on_given_axes() -> None:
    fig = rp.plot_heatmap(np.array([[0.0, np.nan], [1.0, 2.0]]), title="t")
    assert isinstance(fig, Figure)
    host = Figure()
    ax = host.subplots()
    assert rp.plot_heatmap(np.ones((2, 2)), ax=ax) is host
    assert rp.plot_level(None, [np.array([[0, 0], [0, 1]])], grid_shape=(1, 2), ax=ax) is host
    assert isinstance(
        rp.plot_weights(["a", "b"], np.array([1.0, -1.0]), np.zeros(2), np.ones(2)), Figure
    )
    prof = pd.DataFrame({"x": [1.0, 0.0]}, index=["f", "g"])
    assert isinstance(rp.plot_feature_profiles(prof), Figure)
    assert isinstance(
        rp.plot_outcomes(["a"], np.array([1.0]), np.array([0.5]), np.array([1.5])), Figure
    )


def test_heatmap_survives_mathtext_in_names() -> None:
    fig = rp.plot_heatmap(np.ones((2, 2)), title="$unbalanced")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert png_size(buf.getvalue())[0] > 10


# ----------------------------------------------------------------------------- files


def _data_uris(page: str) -> list[bytes]:
    return [
        base64.b64decode(m)
        for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    ]


def test_save_writes_a_self_contained_report(tmp_path, proxy_audit) -> None:
    out = proxy_audit.save(tmp_path / "run")
    page = (out / "report.html").read_text(encoding="utf-8")
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"candidates.png", "weights.png", "level0.png"} <= set(pngs)
    images = _data_uris(page)
    assert len(images) == len(pngs) == page.count("<img ")
    assert sorted(images) == sorted((out / p).read_bytes() for p in pngs)
    for data in images:
        h, w = png_size(data)
        assert h > 50 and w > 50
    # no external assets of any kind
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert "<script" not in page and "<link" not in page
    # leads with the verdict and reason, then the table, then figures; states scope/coverage
    i_verdict = page.index("PROXY")
    i_table = page.index("<table>")
    i_fig = page.index("<figure>")
    assert "Coverage used" in page
    assert i_verdict < page.index("right_door") < i_table < i_fig
    assert rp.SCOPE_CAVEAT in page
    assert f"{len(proxy_audit.coverage)} transitions" in page
    md = (out / "report.md").read_text(encoding="utf-8")
    assert md.startswith("# ") and "**Verdict: PROXY**" in md
    for p in pngs:
        assert f"]({p})" in md
    assert json.loads((out / "summary.json").read_text())["verdict"] == "proxy"


def test_user_supplied_names_are_escaped(tmp_path) -> None:
    m = doors()
    evil = '<img src=x onerror="alert(1)">$x'
    demos = expert(m, 5 * m.objectives["right_door"], 30, seed=2)
    result = audit_demonstrations(
        m,
        demos,
        objectives={"exit": m.objectives["exit"], evil: m.objectives["right_door"]},
        base="exit",
        metadata={"policy": "<script>alert(2)</script>"},
    )
    assert result.proxy == evil
    out = result.save(tmp_path / "evil")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert evil not in page and "<script>alert(2)" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;$x" in page
    assert page.count("<img ") == len(list(out.glob("*.png")))
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "<img" not in md and "<script" not in md


def test_markdown_stays_readable(tmp_path, proxy_audit) -> None:
    """Names render as code spans (no backslashes inside them); prose is escaped only
    where Markdown would read markup."""
    md = (proxy_audit.save(tmp_path / "run") / "report.md").read_text(encoding="utf-8")
    assert "(proxy: `right_door`)" in md
    assert "\\(" not in md and "\\#" not in md and "\\." not in md
    assert "right\\_door" in md  # in prose an underscore is escaped
    assert rp._md("1. a list? *no*") == "1\\. a list? \\*no\\*"


def test_write_report_refuses_nothing_but_replaces_its_files(tmp_path, proxy_audit) -> None:
    path = rp.write_report(proxy_audit, tmp_path / "d")
    first = path.read_text(encoding="utf-8")
    rp.write_report(proxy_audit, tmp_path / "d")
    assert path.read_text(encoding="utf-8").count("<img ") == first.count("<img ")
    assert not [p for p in (tmp_path / "d").iterdir() if p.name.startswith(".")]


def test_repr_html_embeds_the_report(proxy_audit) -> None:
    frag = proxy_audit._repr_html_()
    assert "PROXY" in frag and "data:image/png;base64," in frag
    assert "<html" not in frag


def test_comparison_report_shows_both_splits(tmp_path) -> None:
    seeker = 5 * doors().objectives["right_door"]
    audits = []
    for split, same in (("train", True), ("deploy", False)):
        m = doors(same=same)
        # the same behaviour (seek the right door) on a level where the proxy and the base
        # objective coincide ("train": both doors count) and one where they do not
        a = audit_demonstrations(
            m, expert(m, seeker, 40, seed=5), metadata={"split": split, "policy": "seeker"}
        )
        audits.append(a)
    assert audits[1].verdict == "proxy"
    out = rp.write_comparison_report(audits, tmp_path / "cmp", links=["a.html", None])
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "train" in page and "deploy" in page and "PROXY" in page
    assert audits[0].verdict.upper() in page
    assert page.count("<img ") == len(_data_uris(page)) == len(list(out.glob("*.png"))) >= 3
    assert 'href="a.html"' in page
    summary = json.loads((out / "summary.json").read_text())
    assert [a["verdict"] for a in summary["audits"]] == [a.verdict for a in audits]
    with pytest.raises(FileExistsError):
        rp.write_comparison_report(audits, out)
    rp.write_comparison_report(audits, out, overwrite=True, title="<seeker> & co")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<title>&lt;seeker&gt; &amp; co</title>" in page and "<seeker>" not in page
    with pytest.raises(ValueError, match="at least two"):
        rp.write_comparison_report(audits[:1], tmp_path / "one")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_reddoors_level_is_rendered_and_the_exit_lights_up() -> None:
    import gymnasium as gym

    from behavioral.auditing import audit
    from behavioral.policies import SoftOptimalPolicy

    env = gym.make("behavioral/RedDoors-v0", split="deploy")
    result = audit(SoftOptimalPolicy("red_door", beta=5.0), env, episodes=4, seed=0, n_bootstrap=50)
    level = result.demonstrations[0].level
    model = result.levels[level]
    frame = rp.level_frame(result, level)
    assert frame is not None and frame.ndim == 3
    _, rows, cols = model.observations.shape[1:]
    assert frame.shape[0] % rows == 0 and frame.shape[1] % cols == 0
    layout = rp.level_layout(model, (rows, cols))
    assert layout.shape == (rows, cols)
    exit_r = model.objectives["exit"]
    s, a = np.argwhere(exit_r > 0)[0]
    door = model.transitions[[s * model.n_actions + a]].indices[0]
    r, c = layout.cells[door]
    grid = rp.cell_values(model, exit_r, layout)
    assert grid[r, c] == np.nanmax(grid) > 0
    assert np.nanmin(grid) == 0.0
    demos = [d for d in result.demonstrations if d.level == level]
    assert rp.visitation(demos, layout).sum() == sum(d.states.shape[0] for d in demos)
