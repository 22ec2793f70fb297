"""Tests of the report: the views behind the maps, the plots, the pages and the written files.

Each defect a reader could misread (issue 13) has a test here where a test can see it: titles
carry the policy's name, outcomes are in the env's words on shared scales, flat maps say they
are flat, walls are drawn one way, landmarks are labelled, the residual map does not paint the
recovered reward's peak blue, nuisances and unusual values are explained, episode counts agree,
p-values never print as 0, the details table has no empty header and the Jupyter CSS is scoped.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import re
import sys

import matplotlib.collections
import matplotlib.colors
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from doors_model import doors
from matplotlib.figure import Figure

from behavioral import TabularModel
from behavioral import report as rp
from behavioral.auditing import audit_demonstrations
from behavioral.irl.maxent import Demonstration
from behavioral.report import figures, labels, levels, pages, text, views
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


def bumpy_corridor(n: int = 5) -> TabularModel:
    """A corridor of n cells (0, 1) .. (0, n) with a door at each end, each its own absorbing
    state in its own cell ((0, 0) the exit, (0, n + 1) the right door).

    Actions: left, right, stay, bump (walk into the wall: stay, feature ``bump``).
    """
    S, A = n + 2, 4
    left, right = n, n + 1
    P = np.zeros((S, A, S))
    F = np.zeros((S, A, 3))
    for s in range(n):
        P[s, 0, left if s == 0 else s - 1] = 1
        P[s, 1, right if s == n - 1 else s + 1] = 1
        P[s, 2, s] = 1
        P[s, 3, s] = 1
        F[s, 3, 2] = 1
    F[0, 0, 0] = 1
    F[n - 1, 1, 1] = 1
    P[left, :, left] = 1
    P[right, :, right] = 1
    init = np.zeros(S)
    init[n // 2] = 1
    return TabularModel(
        transitions=P,
        initial_state_dist=init,
        horizon=8,
        features=F,
        feature_names=("exit", "right_door", "bump"),
        objectives={"exit": F[..., 0], "right_door": F[..., 1]},
        base="exit",
        cells=np.array([[0, c + 1] for c in range(n)] + [[0, 0], [0, n + 1]]),
    )


def png_size(data: bytes) -> tuple[int, int]:
    img = matplotlib.image.imread(io.BytesIO(data), format="png")
    return img.shape[0], img.shape[1]


@pytest.fixture(scope="module")
def proxy_audit():
    m = doors()
    return audit_demonstrations(m, expert(m, 5 * m.objectives["right_door"], 40, seed=1), seed=0)


@pytest.fixture(scope="module")
def reddoors_audit():
    """A red-door seeker on RedDoors deploy, audited from the env (episodes table, frames)."""
    import gymnasium as gym

    from behavioral.auditing import audit
    from behavioral.policies import SoftOptimalPolicy

    env = gym.make("behavioral/RedDoors-v0", split="deploy")
    return audit(SoftOptimalPolicy("red_door", beta=5.0), env, episodes=4, seed=0, n_bootstrap=50)


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


def test_canonical_residual_ignores_shaping_scale_and_shift() -> None:
    m = doors()
    layout = rp.level_layout(m)
    base = m.objectives["exit"]
    rng = np.random.default_rng(0)
    phi = rng.normal(size=m.n_states)
    # R'(s, a, s') = 2.5 R(s, a) + phi(s') - phi(s) + 0.3 (discount 1): the same canonical
    # reward as R, so the same Z-scores everywhere: nothing beyond the base objective.
    shaped = 2.5 * base[:, :, None] + phi[None, None, :] - phi[:, None, None] + 0.3
    same = rp.canonical_residual(m, shaped, base, layout, arrival=False)
    finite = same.grid[np.isfinite(same.grid)]
    assert finite.size == 7
    np.testing.assert_allclose(finite, 0.0, atol=1e-9)
    assert same.correlation == pytest.approx(1.0)
    # Uncorrelated or opposed rewards: nothing of the base objective is subtracted, the
    # residual is the recovered reward's own Z map.
    zero = np.zeros_like(base)
    own = rp.canonical_residual(m, -base, zero, layout, arrival=False)
    flipped = rp.canonical_residual(m, -base, base, layout, arrival=False)
    assert flipped.correlation == pytest.approx(-1.0)
    np.testing.assert_allclose(flipped.grid, own.grid, atol=1e-12)
    z_base = rp.canonical_residual(m, base, zero, layout, arrival=False).grid
    np.testing.assert_allclose(own.grid, -z_base, atol=1e-12)
    assert np.nanmax(np.abs(z_base)) > 0.5
    # The right door's reward is higher than the exit's where the right door is entered.
    other = rp.canonical_residual(m, m.objectives["right_door"], base, layout, arrival=False)
    assert other.grid[0, 6] > 0.5 and other.grid[0, 6] == np.nanmax(other.grid)


def test_residual_does_not_paint_the_recovered_peak_blue() -> None:
    """A recovered reward = 3 x exit - a cost per bump peaks at the exit; so does the exit
    objective. A plain difference of Z-scores painted the exit as the most negative cell
    (the sparse exit reward has the larger Z-score there); the residual leaves it near 0."""
    m = bumpy_corridor()
    layout = rp.level_layout(m)
    exit_r = m.objectives["exit"]
    recovered = 3 * exit_r - m.features[..., 2]
    peak = np.unravel_index(np.nanargmax(rp.cell_values(m, recovered, layout)), layout.shape)
    assert peak == (0, 0)  # the exit door's cell
    res = rp.canonical_residual(m, recovered, exit_r, layout)
    assert res.correlation > 0.5
    assert abs(res.grid[peak]) < 0.2
    assert res.grid[peak] > np.nanmin(res.grid)


def test_walls_are_the_cells_without_states() -> None:
    m = corridor3().replace(cells=np.array([[0, 0], [0, 0], [1, 1]]))
    layout = rp.level_layout(m, grid_shape=(2, 3))
    np.testing.assert_array_equal(layout.walls(), [[False, True, True], [True, False, True]])


def test_color_scale_says_when_a_map_is_flat() -> None:
    """Near-constant maps are not stretched to full contrast: they say what they are."""
    cells = np.array([[-10.700, -10.692, np.nan], [-10.696, -10.699, -10.700]])
    near = levels.color_scale(cells, spread=6.57)
    assert near.flat is not None and near.flat.startswith("nearly the same in every cell")
    assert "-10.700" in near.flat and "-10.692" in near.flat
    assert near.vmax - near.vmin == pytest.approx(2 * 6.57)  # the reward's own spread
    same = levels.color_scale(np.full((2, 2), 0.2), spread=0.4)
    assert same.flat == "the same in every cell: 0.2"
    constant = levels.color_scale(np.full((2, 2), 3.0), spread=0.0)
    assert constant.flat == "constant on this level: 3"
    normal = levels.color_scale(np.array([[0.0, 1.0]]), spread=0.3)
    assert normal.flat is None and (normal.vmin, normal.vmax) == (0.0, 1.0)
    # a difference worth 5% of the spread is drawn at full contrast
    assert levels.color_scale(np.array([[0.0, 0.05]]), spread=1.0).flat is None
    assert levels.color_scale(np.full((1, 2), np.nan), spread=1.0).flat is not None
    assert levels.diverging_scale(np.array([[0.1, -0.2]])).vmax == 1.0  # pale below 1 sd
    assert levels.diverging_scale(np.array([[3.0, -0.2]])).vmin == -3.0


def test_landmarks_label_where_a_feature_fires() -> None:
    m = bumpy_corridor()
    layout = rp.level_layout(m)
    marks = rp.landmarks(m, layout, {"exit": "exit door"})
    # the doors fire in one cell each; bump fires in every corridor cell: not a landmark
    assert [(k.row, k.col, k.label) for k in marks] == [(0, 0, "exit door"), (0, 6, "right door")]
    assert rp.landmarks(doors(), rp.level_layout(doors())) == ()  # no cells: no landmarks


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
    assert text.md("1. a list? *no*") == "1\\. a list? \\*no\\*"


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


def css_selectors(page: str) -> list[str]:
    """Every selector of every rule in the page's <style> elements."""
    out = []
    for css in re.findall(r"<style>(.*?)</style>", page, re.S):
        for block in css.split("}"):
            if "{" in block:
                out += [sel.strip() for sel in block.split("{", 1)[0].split(",") if sel.strip()]
    return out


def test_notebook_css_is_scoped_to_its_container(proxy_audit) -> None:
    """The Jupyter fragment restyles nothing outside itself: every rule is under
    ``.behavioral-report`` (no bare table, th, td, h1, h2 or code rules)."""
    frag = proxy_audit._repr_html_()
    assert frag.startswith('<div class="behavioral-report">') and frag.endswith("</div>")
    selectors = css_selectors(frag)
    assert len(selectors) > 10
    assert all(sel.startswith(".behavioral-report") for sel in selectors), selectors
    bare = {"table", "th", "td", "h1", "h2", "h3", "code", "body", "figure", "img"}
    assert not bare & {sel.split()[0] for sel in selectors}


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
    assert summary["policy"] == "seeker"
    assert [(a["base"], a["proxies"]) for a in summary["audits"]] == [("exit", ["right_door"])] * 2
    with pytest.raises(FileExistsError):
        rp.write_comparison_report(audits, out)
    rp.write_comparison_report(audits, out, overwrite=True, title="<seeker> & co")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<title>&lt;seeker&gt; &amp; co</title>" in page and "<seeker>" not in page
    with pytest.raises(ValueError, match="at least two"):
        rp.write_comparison_report(audits[:1], tmp_path / "one")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_reddoors_level_is_rendered_and_the_exit_lights_up(reddoors_audit) -> None:
    result = reddoors_audit
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


# ----------------------------------------------------------------------------- what a reader sees


def test_reddoors_maps_label_the_doors_and_draw_walls_one_way(reddoors_audit) -> None:
    """Every map of a level labels the exit and the red decoy (the env's words) and paints
    the cells without states in the wall colour -- the coverage map included."""
    level = reddoors_audit.demonstrations[0].level
    fig, _ = figures.level_figure(reddoors_audit, level)
    maps = [ax for ax in fig.axes if ax.get_title()]  # not the colour bars
    assert len(maps) == 6  # level, coverage, exit, red_door, recovered, residual
    wall = matplotlib.colors.to_rgba(rp.plots.WALL_COLOR)
    layout = rp.level_layout(reddoors_audit.levels[level], (9, 9))
    for ax in maps:
        labels_drawn = {t.get_text() for t in ax.texts}
        assert {"exit", "red decoy"} <= labels_drawn, (ax.get_title(), labels_drawn)
    for ax in maps[1:]:  # the heatmaps: walls painted from the layout
        painted = [im.get_array() for im in ax.images]
        assert painted, ax.get_title()
        rgba = np.asarray(painted[-1])
        np.testing.assert_array_equal(np.all(rgba == wall, axis=-1), layout.walls())


def test_flat_maps_say_so(reddoors_audit) -> None:
    """A reward that is the same in every cell is drawn as such, with words on the map."""
    level = reddoors_audit.demonstrations[0].level
    model = reddoors_audit.levels[level]
    flat = np.full((model.n_states, model.n_actions), 0.2)
    layout = rp.level_layout(model, (9, 9))
    scale = rp.color_scale(rp.cell_values(model, flat, layout), levels.reward_spread(model, flat))
    assert scale.flat == "constant on this level: 0.2"
    fig = rp.plot_heatmap(rp.cell_values(model, flat, layout), scale=scale)
    assert any("constant on this level" in t.get_text() for t in fig.axes[0].texts)


def test_outcomes_in_the_envs_words_on_shared_scales(reddoors_audit) -> None:
    figs, captions = figures.audit_figures(reddoors_audit, max_levels=1)
    fig = figs["outcomes.png"]
    panels = [ax for ax in fig.axes if ax.get_yticklabels()]
    rows = {ax.get_title(loc="left"): [t.get_text() for t in ax.get_yticklabels()] for ax in panels}
    assert rows["return per episode"] == ["exit (base)", "red_door (proxy)"]
    shares = rows["share of episodes"]
    # every end the env declares, in its words -- "left by the exit" even at 0 -- and the
    # door colours, with "red decoy" on deploy; no raw column names
    assert {"left by the exit", "entered another door", "timed out"} <= set(shares)
    assert "entered the red decoy" in shares
    assert not [r for rs in rows.values() for r in rs if "outcome" in r or "_color" in r]
    for ax in panels:  # one x-scale per panel, never a 0-0.05 axis around zeros
        lo, hi = ax.get_xlim()
        assert lo <= 0.0 and hi >= 0.9, (ax.get_title(loc="left"), lo, hi)
        assert "0" in {t.get_text() for t in ax.texts} or hi > 0
    share_ax = next(ax for ax in panels if ax.get_title(loc="left") == "share of episodes")
    assert share_ax.get_xlim() == (0.0, 1.0)
    assert "share of episodes ending each way" in captions["outcomes.png"]


def test_env_words_and_plain_labels() -> None:
    deploy = labels.env_display_names("behavioral/RedDoors-v0", "deploy")
    assert deploy["red_door"] == "red decoy"
    assert labels.env_display_names("behavioral/RedDoors-v0", "train")["red_door"] == "red door"
    water = labels.env_display_names("behavioral/WaterPlants-v0", "deploy")
    assert water["outcome.drowned_plants"] == "drowned plants"
    assert water["outcome.flooded_cells"] == "flooded cells"
    assert labels.plain_label("return.exit") == "return of exit"
    assert labels.plain_label("outcome.flooded_cells") == "flooded cells"
    assert labels.plain_label("outcome=other_door") == "outcome: other door"
    assert labels.label("outcome.pours", {}) == "pours"


def test_names_read_from_files_import_nothing() -> None:
    """An env id is looked up in gymnasium's registry, never imported: ``module:Env`` ids
    (which gym.make would import) name nothing here."""
    sys.modules.pop("this", None)
    assert labels.env_display_names("this:Zen-v0") == {}
    m = doors()
    demos = expert(m, 5 * m.objectives["exit"], 5, seed=0)
    a = audit_demonstrations(
        m, demos, metadata={"env_id": "this:Zen-v0", "env_kwargs": {}}, n_bootstrap=20
    )
    assert rp.level_frame(a, 0) is None
    assert "this" not in sys.modules


def test_titles_carry_the_policys_name(tmp_path, proxy_audit) -> None:
    assert views.policy_name({"policy_name": "reddoors-train", "policy": "PPO(...)"}) == (
        "reddoors-train"
    )
    sb3 = "PPO(ActorCriticPolicy) [env_id='behavioral/RedDoors-v0', split='train', total_timesteps=300000, seed=0]"
    assert views.policy_name({"policy": sb3}) == "PPO trained on RedDoors-v0 train, seed 0"
    planner = "SoftOptimalPolicy(objective='red_door', beta=5.0)"
    assert views.policy_name({"policy": planner}) == "planner:red_door:5"
    eps = "EpsilonGreedyPolicy(objective='exit', epsilon=0.1, discount=0.9)"
    assert views.policy_name({"policy": eps}) == "epsilon-greedy:exit:0.1"
    assert views.policy_name({}) == "demonstrations"
    assert len(views.policy_name({"policy": "x" * 500})) == 60
    assert views.policy_slug("zoo: <evil>/../name") == "zoo-evil-..-name"
    named = dataclasses.replace(
        proxy_audit,
        metadata={**proxy_audit.metadata, "policy": sb3, "policy_name": "reddoors-train"},
    )
    out = named.save(tmp_path / "run")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<title>Audit of reddoors-train on tabular levels</title>" in page
    assert "<h1>Audit of reddoors-train" in page
    assert "ActorCriticPolicy" not in page.split("<h2>Details</h2>")[0]
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# Audit of reddoors-train")


def test_nuisances_and_unusual_values_are_explained(proxy_audit) -> None:
    head, _, notes, _ = pages._candidate_table(proxy_audit)
    explained = {term for term, _ in notes}
    for column in ("β", "living reward", "discount", "lapse"):
        if column in head:
            assert column in explained, column
    c = views.candidate_views(proxy_audit)[0]
    assert c.beta_max is not None and c.beta_max > 0  # the fit's bound is known
    odd = [
        dataclasses.replace(c, name="a", beta=633.0, beta_max=633.0),
        dataclasses.replace(c, name="b", lapse=0.524),
        dataclasses.replace(c, name="d", beta=0.0, living_reward=-24.1),
        dataclasses.replace(c, name="e", explained=1.04),
    ]
    ev = dataclasses.replace(views.evidence_view(proxy_audit), p_vs_null=0.0)
    lines = text.unusual_values(odd, ev)
    assert any(line.startswith("β = 633 is at the fit's upper bound") for line in lines)
    assert any(line.startswith("lapse 0.524: under b, more than half") for line in lines)
    assert any(line.startswith("β = 0: d does not help") for line in lines)
    assert any(line.startswith("living reward -24.1 with β = 0") for line in lines)
    assert any(line.startswith("explained 1.04 > 1") for line in lines)
    assert any(line.startswith("p < 1e-16") for line in lines)
    ordinary = dataclasses.replace(c, beta=2.0, lapse=0.1, living_reward=-0.3, explained=0.8)
    calm = dataclasses.replace(ev, p_vs_null=1e-3, p_recovered_vs_best=0.5)
    assert text.unusual_values([ordinary], calm) == []


def test_p_values_never_print_as_zero(tmp_path, proxy_audit) -> None:
    assert text.fmt_p(0.0) == "p < 1e-16"
    assert text.fmt_p(2.3e-99) == "p < 1e-16"
    assert text.fmt_p(3.2e-9) == "p = 3.2e-09"
    assert text.fmt_p(0.018) == "p = 0.018"
    assert text.fmt_p(float("nan")) == "p = n/a"
    page = (proxy_audit.save(tmp_path / "run") / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"p = 0(?![.\d])", page)
    assert "(p < 1e-16)" in page or "(p = " in page


def test_details_table_has_no_empty_header_row(tmp_path, proxy_audit) -> None:
    page = (proxy_audit.save(tmp_path / "run") / "report.html").read_text(encoding="utf-8")
    details = page.split("<h2>Details</h2>")[1]
    assert "<thead>" not in details.split("</table>")[0]
    assert not re.search(r"<th[^>]*>\s*</th>", page)
    assert '<th scope="row">best candidate</th>' in details


def test_episode_counts_are_said_the_same_way_everywhere(proxy_audit) -> None:
    """40 episodes on one level, 20 trajectories drawn: the map's title and the caption say
    the same thing ("all 40 episodes; 20 drawn"), never "20 of 40" in one and "40" in the
    other."""
    assert text.episodes_text(100, 100, 20) == "all 100 episodes; 20 drawn"
    assert text.episodes_text(12, 100, 12) == "12 of the 100 episodes"
    assert text.episodes_text(1, 1, 1) == "the only episode"
    fig, count = figures.level_figure(proxy_audit, 0)
    assert count == "all 40 episodes; 20 drawn"
    assert fig.axes[0].get_title() == f"level 0: {count}"
    _, captions = figures.audit_figures(proxy_audit, max_levels=1)
    assert captions["level0.png"].startswith(f"Level 0 ({count})")


def test_glance_draws_zero_bars_and_unit_axes_for_all_zero_panels() -> None:
    import pandas as pd

    returns = pd.DataFrame(
        {
            "label": ["train", "deploy", "train", "deploy"],
            "objective": ["exit", "exit", "none", "none"],
            "mean": [1.0, 0.0, 0.0, 0.0],
            "low": [1.0, 0.0, 0.0, 0.0],
            "high": [1.0, 0.0, 0.0, 0.0],
        }
    )
    adv = pd.DataFrame(
        {
            "label": ["train", "deploy"],
            "proxy": ["p", "p"],
            "delta": [-2.6e-9, 2.0],
            "low": [-1e-8, 1.5],
            "high": [1e-8, 2.5],
        }
    )
    fig = rp.plot_split_comparison(
        ["train", "deploy"], ["indistinguishable", "proxy"], returns, adv
    )
    exit_ax, none_ax, adv_ax = fig.axes
    for ax in (exit_ax, none_ax, adv_ax):
        # each bar's top is a thick stroke in the bar's colour (a zero bar is visible)
        strokes = [
            c
            for c in ax.collections
            if isinstance(c, matplotlib.collections.LineCollection) and max(c.get_linewidths()) >= 3
        ]
        assert strokes, ax.get_title()
        assert ax.get_ylim()[0] < 0  # room below 0 for the stroke
    assert {t.get_text() for t in exit_ax.texts} == {"1", "0"}
    assert none_ax.get_ylim() == (-0.15, 1.0)  # all zero: a unit axis
    assert [t.get_text() for t in adv_ax.texts] == ["0", "2"]  # round-off of 0 says 0


def test_demo_index_page_is_self_contained_and_escaped(tmp_path, proxy_audit) -> None:
    (tmp_path / "a&b" / "comparison").mkdir(parents=True)
    glance = rp.save_png(rp.plot_heatmap(np.eye(3)), tmp_path / "a&b" / "comparison" / "glance.png")
    assert glance == "glance.png"
    rows = [("a&b", "env<1>", "train", proxy_audit), ("a&b", "env<1>", "deploy", proxy_audit)]
    page_path = rp.write_demo_index(
        tmp_path, rows, {"a&b": "about <b>"}, episodes=20, seed=3, use_zoo=False
    )
    page = page_path.read_text(encoding="utf-8")
    assert page.count("<img ") == 1 and len(_data_uris(page)) == 1
    assert "<script" not in page and not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert "a&amp;b" in page and "env&lt;1&gt;" in page and "about &lt;b&gt;" in page
    assert 'href="a&amp;b/train/report.html"' in page
    assert "20 episodes (seed 3)" in page and "planners" in page
    assert all(sel.startswith(".behavioral-report") or sel == "body" for sel in css_selectors(page))
    md = (tmp_path / "index.md").read_text(encoding="utf-8")
    assert "| a&amp;b | env&lt;1&gt; | train | **proxy (right\\_door)** |" in md
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
