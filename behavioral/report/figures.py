"""The figures of an audit: each assembled from the views, the level arrays and the plots.

:func:`audit_figures` returns every figure of a report with its caption (file names are
fixed, never derived from user-supplied names); :func:`level_figure` draws one level's
maps; :func:`comparison_figure` puts one policy's audits on several splits side by side.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from behavioral.irl.intervals import maxent_weight_intervals
from behavioral.report import views
from behavioral.report.labels import env_display_names, label
from behavioral.report.levels import (
    ColorScale,
    LevelLayout,
    canonical_residual,
    cell_values,
    color_scale,
    diverging_scale,
    feature_profiles,
    grid_shape,
    landmarks,
    level_layout,
    reward_spread,
    visitation,
)
from behavioral.report.plots import (
    DPI,
    plot_candidates,
    plot_evidence,
    plot_expected_evidence,
    plot_feature_profiles,
    plot_frame,
    plot_heatmap,
    plot_level,
    plot_outcomes,
    plot_split_comparison,
    plot_weights,
)
from behavioral.report.text import episodes_text

if TYPE_CHECKING:
    from behavioral.auditing import Audit

__all__ = [
    "MAX_PATHS",
    "audit_figures",
    "comparison_figure",
    "design_figures",
    "env_frame",
    "level_figure",
    "level_frame",
    "levels_to_show",
]

#: Trajectories drawn over a level (the others are counted, not drawn).
MAX_PATHS = 20
#: Share-of-episodes panels run from 0 to 1.
_SHARES = "share of episodes"
_RETURNS = "return per episode"
_COUNTS = "outcome at the end of an episode (mean)"


def level_frame(audit: Audit, level: int) -> np.ndarray | None:
    """The env's ``rgb_array`` frame at the start of the first episode on ``level``.

    The env is re-made from the audit's env id and kwargs and reset with the episode's
    recorded ``reset_seed`` (and its recorded level spec, for levels an active audit
    played). Only ids already in gymnasium's registry are made (an id such as
    ``some.module:Env-v0``, read from a file, would make gymnasium import that module).
    None when that is not possible (no env id or seed, an env without ``rgb_array``
    rendering, or a render that fails). Minigrid envs are drawn by Minigrid's own
    renderer, without the shading of the agent's view.
    """
    return _rendered_level(audit, level)[0]


def _grid_of(env: Any) -> tuple[int, int] | None:
    """(rows, cols) of a Minigrid env's whole grid (border walls included): the frame
    covers it, and extracted models' cells are its (row, col)."""
    import sys

    if "minigrid" not in sys.modules:
        return None
    from minigrid.minigrid_env import MiniGridEnv

    u = env.unwrapped
    return (int(u.grid.height), int(u.grid.width)) if isinstance(u, MiniGridEnv) else None


def _rendered_level(audit: Audit, level: int) -> tuple[np.ndarray | None, tuple[int, int] | None]:
    """:func:`level_frame` and the (rows, cols) of the grid the frame covers, if known."""
    run = views.run_view(audit)
    first = next((i for i, d in enumerate(audit.demonstrations) if d.level == level), None)
    if first is None:
        return None, None
    return _frame_and_grid(
        run.env_id,
        run.env_kwargs,
        seed=views.reset_seed(audit, first),
        spec=views.level_spec(audit, first),
    )


#: The longest level spec rendered (canonical JSON).
_MAX_SPEC_CHARS = 1 << 16


def env_frame(
    env_id: str | None,
    env_kwargs: Mapping[str, Any],
    *,
    seed: int | None = None,
    spec: str | None = None,
    split: str | None = None,
) -> np.ndarray | None:
    """The first frame of a level: the env ``env_id`` (with ``env_kwargs``, and ``split``
    if given) reset with ``seed``, or at the level spec ``spec`` (canonical JSON, parsed
    and validated by the env's ``parse_level``). None when it cannot be rendered."""
    return _frame_and_grid(env_id, env_kwargs, seed=seed, spec=spec, split=split)[0]


def _frame_and_grid(
    env_id: str | None,
    env_kwargs: Mapping[str, Any],
    *,
    seed: int | None = None,
    spec: str | None = None,
    split: str | None = None,
) -> tuple[np.ndarray | None, tuple[int, int] | None]:
    """:func:`env_frame` and the (rows, cols) of the Minigrid grid it covers, if any."""
    import gymnasium as gym

    if not env_id or gym.registry.get(env_id) is None or (seed is None and spec is None):
        return None, None
    if spec is not None and len(spec) > _MAX_SPEC_CHARS:
        return None, None
    kwargs = {**dict(env_kwargs), **({"split": split} if split else {})}
    try:
        env = gym.make(env_id, render_mode="rgb_array", **kwargs)
    except Exception:  # the report must not fail because the env cannot be re-made
        return None, None
    try:
        options = None
        if spec is not None:
            options = {"level": env.unwrapped.parse_level(json.loads(spec))}
        env.reset(seed=seed, options=options)
        shape = _grid_of(env)
        if shape is not None:
            env.unwrapped.highlight = False  # Minigrid shades the agent's view by default
        frame = env.render()
    except Exception:  # an env whose rendering fails: draw the layout instead
        return None, None
    finally:
        env.close()
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] not in (3, 4):
        return None, None
    return frame, shape


def levels_to_show(audit: Audit, max_levels: int) -> list[int]:
    """The ``max_levels`` levels with most episodes (ties: lower index first)."""
    counts = np.bincount([d.level for d in audit.demonstrations], minlength=len(audit.levels))
    order = sorted(range(len(counts)), key=lambda i: (-counts[i], i))
    return [i for i in order if counts[i] > 0][:max_levels]


def _map_note(layout: LevelLayout, state_action: bool) -> str:
    """How the reward maps of a level are drawn, in a few words."""
    arrival = not layout.synthetic
    where = ""
    if state_action:
        where = "drawn where each step leads" if arrival else "best action in each state"
    many = bool(np.bincount(layout.flat, minlength=layout.n_cells).max() > 2)
    agg = "mean over the states in a cell" if many else ""
    note = "; ".join(x for x in (where, agg) if x)
    if layout.synthetic:
        note = "; ".join(x for x in ("states by index (no grid cells)", note) if x)
    return note


@dataclasses.dataclass(frozen=True)
class _Map:
    """One reward panel of a level figure."""

    title: str
    values: np.ndarray
    scale: ColorScale
    cmap: str = "viridis"
    cbar_label: str = ""
    note: str = ""


def _reward_maps(audit: Audit, level: int, layout: LevelLayout) -> list[_Map]:
    """The base objective, each proxy, the recovered reward and the residual, as maps."""
    model = audit.levels[level]
    arrival = not layout.synthetic
    state_action = any(
        np.ndim(r[level]) == 2 for r in (audit.recovered.rewards, *audit.candidates.values())
    )
    note = _map_note(layout, state_action)
    recovered = np.asarray(audit.recovered.rewards[level], dtype=np.float64)
    rewards = [(f"base objective: {audit.base}", audit.candidates[audit.base][level])]
    rewards += [(f"proxy objective: {p}", audit.candidates[p][level]) for p in audit.proxies]
    rewards += [(f"recovered reward ({audit.recovered.method})", recovered)]
    maps = []
    for title, reward in rewards:
        values = cell_values(model, reward, layout, arrival=arrival)
        scale = color_scale(values, reward_spread(model, reward))
        maps.append(_Map(title, values, scale, note=note))
    base = np.asarray(audit.candidates[audit.base][level], dtype=np.float64)
    res = canonical_residual(model, recovered, base, layout, arrival=arrival)
    where = "arriving here" if arrival else "steps from here"
    corr = f"correlation with {audit.base} on this level {res.correlation:.2f}"
    if res.correlation > 0:
        how = f"{corr}: it explains {res.correlation**2:.0%} of the variance"
    else:
        how = f"{corr}: nothing to subtract; this is the recovered reward itself"
    maps.append(
        _Map(
            f"recovered reward beyond {audit.base} (canonicalised)",
            res.grid,
            diverging_scale(res.grid),
            cmap="RdBu_r",
            cbar_label="residual (Z)",
            note=f"{how}\nred: the recovered reward rewards {where} more than {audit.base} explains",
        )
    )
    return maps


def level_figure(audit: Audit, level: int) -> tuple[Figure, str]:
    """All maps of one level in one figure, and the level's episode count in words.

    Panels: the level (the env's rendering, or its grid) with up to :data:`MAX_PATHS`
    trajectories; where the data goes; the base objective, each proxy and the recovered
    reward on the grid (honest colour ranges, :func:`behavioral.report.levels.color_scale`);
    what the recovered reward does beyond the base objective
    (:func:`behavioral.report.levels.canonical_residual`). Walls are drawn the same way
    on every map; the env's landmarks (doors, pots) are labelled on every map.

    Returns:
        (figure, episode text): the text (e.g. "all 100 episodes; 20 drawn") is the one
        the figure's first panel shows, for captions to say the same.
    """
    run = views.run_view(audit)
    model = audit.levels[level]
    frame, frame_grid = _rendered_level(audit, level)
    layout = level_layout(model, frame_grid or grid_shape(model))
    demos = [d for d in audit.demonstrations if d.level == level]
    drawn = min(len(demos), MAX_PATHS)
    count = episodes_text(len(demos), len(audit.demonstrations), drawn)
    names = env_display_names(run.env_id, run.label_split)
    marks = landmarks(model, layout, names)
    walls = None if layout.synthetic else layout.walls()
    maps = _reward_maps(audit, level, layout)
    n_panels = 2 + len(maps)
    ncols = 3
    nrows = math.ceil(n_panels / ncols)
    rows, cols = layout.shape
    cell_in = min(0.42, 4.2 / max(cols, 1))
    w = max(3.0, cols * cell_in + 1.3)
    h = max(2.0, rows * cell_in + 1.1)
    fig = Figure(figsize=(w * ncols, h * nrows + 0.4), dpi=DPI)
    axes = fig.subplots(nrows, ncols, squeeze=False).flat
    plot_level(
        frame,
        [layout.cells[d.states] for d in demos[:drawn]],
        grid_shape=layout.shape,
        known_cells=layout.cells,
        title=f"level {level}: {count}",
        ax=axes[0],
        landmarks=marks,
    )
    visits = visitation(demos, layout)
    if walls is not None:
        visits = np.where(walls, np.nan, visits)
    plot_heatmap(
        visits,
        title="coverage: visits of the data",
        cmap="rocket_r",
        scale=ColorScale(0.0, max(float(np.nanmax(visits)), 1.0)),
        cbar_label="visits",
        walls=walls,
        landmarks=marks,
        ax=axes[1],
    )
    for ax, m in zip(axes[2:], maps):
        plot_heatmap(
            m.values,
            title=m.title,
            cmap=m.cmap,
            scale=m.scale,
            cbar_label=m.cbar_label,
            note=m.note,
            walls=walls,
            landmarks=marks,
            ax=ax,
        )
    for ax in list(axes)[n_panels:]:
        ax.axis("off")
    fig.suptitle(f"{run.policy_name} on {run.where}", fontsize=10)
    fig.tight_layout()
    return fig, count


def _outcome_figure(audit: Audit) -> Figure | None:
    run = views.run_view(audit)
    names = env_display_names(run.env_id, run.label_split)
    # every end the env declares for its main outcome, even one no episode reached
    declared = [k.split("=", 1)[1] for k in names if k.startswith(views.OUTCOME + "=")]
    rows = views.outcome_views(
        audit.episodes, (audit.base, *audit.proxies), {views.OUTCOME: declared}
    )
    if not rows:
        return None
    roles = {audit.base: "base", **{p: "proxy" for p in audit.proxies}}
    group = {"return": _RETURNS, "count": _COUNTS, "share": _SHARES}
    labels = [
        f"{r.objective} ({roles[r.objective]})" if r.objective in roles else label(r.key, names)
        for r in rows
    ]
    groups = [group[r.kind] for r in rows]
    order = list(dict.fromkeys(groups))
    return plot_outcomes(
        labels,
        np.array([r.mean for r in rows]),
        np.array([r.low for r in rows]),
        np.array([r.high for r in rows]),
        groups=groups,
        limits=[(0.0, 1.0) if g == _SHARES else None for g in order],
        title=f"what the episodes achieved (mean per episode, 95% CI)\n"
        f"{run.policy_name} on {run.where}, {run.n_episodes} episodes",
    )


def _weights_figure(audit: Audit, confidence: float) -> tuple[Figure, str] | None:
    rec = audit.recovered
    ci = maxent_weight_intervals(audit.levels, audit.demonstrations, rec, confidence=confidence)
    if ci is not None:
        fig = plot_weights(
            list(ci.index),
            ci["weight"].to_numpy(),
            ci["low"].to_numpy(),
            ci["high"].to_numpy(),
            note=f"weight ({confidence:.0%} CI: Laplace approximation, Fisher information of "
            "the MaxEnt fit)",
        )
        return fig, (
            "The recovered reward's weight on each named feature. Intervals come from the "
            "Fisher information of the MaxEnt fit (its Hessian by finite differences of the "
            "exact gradient), not from refitting on resampled episodes; they include the "
            f"L2 penalty (l2 = {rec.l2:g})."
        )
    if len(rec.feature_names) <= 64 and rec.feature_mode == "model":
        fig = plot_weights(list(rec.feature_names), np.asarray(rec.weights))
        return fig, "The recovered reward's weight on each named feature (no intervals)."
    return None


def _card_note(lv: views.DesignLevel) -> str:
    far = "distance unknown" if lv.distance is None else f"{lv.distance:g} edit(s) from training"
    played = f"{lv.episodes} episode(s)" if lv.episodes else "not played"
    return f"{lv.expected:.3g} nats/episode; {played}\n{far}"


def _levels_figure(audit: Audit, design: views.DesignView) -> Figure:
    run = views.run_view(audit)
    rows = [("chosen", design.chosen), ("random from the source", design.random)]
    ncols = max(1, len(design.chosen), len(design.random))
    fig = Figure(figsize=(2.7 * ncols, 7.0), dpi=DPI)
    axes = fig.subplots(2, ncols, squeeze=False)
    for r, (what, levels) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            if c >= len(levels):
                ax.axis("off")
                continue
            lv = levels[c]
            frame = env_frame(
                run.env_id, run.env_kwargs, seed=lv.reset_seed, spec=lv.spec, split=lv.split
            )
            plot_frame(frame, title=f"{what} ({lv.origin})", note=_card_note(lv), ax=ax)
    fig.suptitle(
        f"{run.policy_name}: levels chosen by expected evidence, and random levels of its source",
        fontsize=9,
    )
    fig.tight_layout(h_pad=2.5)
    return fig


def design_figures(audit: Audit) -> tuple[dict[str, Figure], dict[str, str]]:
    """The figures of an audit that chose its levels (empty for others): the evidence
    accumulated against episodes beside the evidence expected on random levels of the same
    source, and the chosen levels rendered beside random ones with their expected evidence."""
    design = views.design_view(audit)
    if design is None:
        return {}, {}
    fig = Figure(figsize=(12.0, 3.8), dpi=DPI)
    left, right = fig.subplots(1, 2)
    plot_evidence(
        design.episodes, design.log_e, design.tests, design.threshold,
        highlight=design.deciding, ax=left,
    )  # fmt: skip
    plot_expected_evidence(
        design.episodes, design.expected_chosen, design.expected_source, ax=right
    )
    fig.tight_layout()
    figs = {"design_evidence.png": fig, "design_levels.png": _levels_figure(audit, design)}
    captions = {
        "design_evidence.png": (
            "Left: each anytime-valid test's log e-value after each batch of episodes (a "
            f"test rejects when it reaches log(K/alpha) = {design.threshold:.3g}; bold: the "
            "tests the verdict turned on). Right: the evidence the audit expected to gather on "
            "the levels it chose, against the same number of episodes on random levels of "
            "its source, under the fits of each batch (KL divergence between the candidates' "
            "trajectory distributions, nats per episode)."
        ),
        "design_levels.png": (
            "Top: the levels the audit played most (start of an episode), with the evidence "
            "one episode there was expected to add when the last batch was chosen, the "
            "episodes spent "
            "there and the edits that separate it from the training distribution. Bottom: "
            "levels of the source as a random design would draw them, scored alike."
        ),
    }
    return figs, captions


def audit_figures(audit: Audit, *, max_levels: int = 3) -> tuple[dict[str, Figure], dict[str, str]]:
    """Every figure of an audit's report.

    Returns:
        (file name -> figure, file name -> caption). File names are fixed (``levelN.png``
        etc.), never derived from user-supplied names.
    """
    figs: dict[str, Figure] = {}
    captions: dict[str, str] = {}
    cands = views.candidate_views(audit)
    ev = views.evidence_view(audit)
    figs["candidates.png"] = plot_candidates(
        [c.name for c in cands],
        [c.role for c in cands],
        *(np.array(v) for v in _columns(cands)),
        ll_random=ev.null_log_likelihood,
        ll_recovered=ev.recovered_log_likelihood,
    )
    captions["candidates.png"] = (
        f"Each candidate objective at its fitted inverse temperature: mean log-likelihood of "
        f"the demonstrated actions per episode, and EPIC distance to the recovered reward on "
        f"the data's coverage; {ev.confidence:.0%} bootstrap intervals over episodes."
    )
    weights = _weights_figure(audit, ev.confidence)
    if weights is not None:
        figs["weights.png"], captions["weights.png"] = weights
    rec = audit.recovered
    if rec.feature_mode == "model":
        rewards = {
            "recovered": list(rec.rewards),
            **{k: list(v) for k, v in audit.candidates.items()},
        }
        prof = feature_profiles(audit.levels, rewards)
        if prof is not None and prof.notna().any().any():
            figs["features.png"] = plot_feature_profiles(prof)
            captions["features.png"] = (
                "Each objective written as weights on the level's named features (least "
                "squares, unit norm): a per-feature view that does not need a grid map. An "
                "objective whose bars match the recovered reward's describes the behaviour."
            )
    outcomes = _outcome_figure(audit)
    if outcomes is not None:
        figs["outcomes.png"] = outcomes
        captions["outcomes.png"] = (
            "What the episodes achieved: the return of every objective, the outcomes the env "
            "reports at the end of an episode, and the share of episodes ending each way; "
            "mean per episode with normal 95% intervals. Rows of one panel share its scale."
        )
    design_figs, design_captions = design_figures(audit)
    figs.update(design_figs)
    captions.update(design_captions)
    for lvl in levels_to_show(audit, max_levels):
        name = f"level{lvl}.png"
        figs[name], count = level_figure(audit, lvl)
        captions[name] = (
            f"Level {lvl} ({count}): the level with trajectories, where the data goes, "
            "the base objective, each proxy and the recovered reward on the grid, and what "
            "the recovered reward does beyond the base objective after EPIC "
            "canonicalisation. Walls are dark grey on every map."
        )
    return figs, captions


def _columns(cands: Sequence[views.CandidateView]) -> list[list[float]]:
    """The nine numeric columns :func:`plot_candidates` takes, in its order."""
    return [
        [c.log_likelihood for c in cands],
        [c.log_likelihood_ci[0] for c in cands],
        [c.log_likelihood_ci[1] for c in cands],
        [c.delta for c in cands],
        [c.delta_ci[0] for c in cands],
        [c.delta_ci[1] for c in cands],
        [c.epic for c in cands],
        [c.epic_ci[0] for c in cands],
        [c.epic_ci[1] for c in cands],
    ]


# ----------------------------------------------------------------------------- comparison


def comparison_tables(
    audits: Sequence[Audit], labels: Sequence[str]
) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """Long tables for :func:`behavioral.report.plots.plot_split_comparison`: each
    objective's mean return per episode per audit, and each proxy's log-likelihood
    advantage over the base objective per audit."""
    ret_rows: list[dict[str, Any]] = []
    adv_rows: list[dict[str, Any]] = []
    for a, lab in zip(audits, labels):
        for o in views.outcome_views(a.episodes, (a.base, *a.proxies)):
            if o.objective in (a.base, *a.proxies):
                ret_rows.append(
                    {
                        "label": lab,
                        "objective": o.objective,
                        "mean": o.mean,
                        "low": o.low,
                        "high": o.high,
                    }
                )
        for c in views.candidate_views(a):
            if c.role == "proxy":
                adv_rows.append(
                    {
                        "label": lab,
                        "proxy": c.name,
                        "delta": c.delta,
                        "low": c.delta_ci[0],
                        "high": c.delta_ci[1],
                    }
                )
    returns = pd.DataFrame(ret_rows) if ret_rows else None
    adv = pd.DataFrame(adv_rows, columns=["label", "proxy", "delta", "low", "high"])
    return returns, adv


def comparison_figure(audits: Sequence[Audit], labels: Sequence[str]) -> Figure:
    """The glance figure of one policy's audits on several splits."""
    returns, adv = comparison_tables(audits, labels)
    return plot_split_comparison(labels, [a.verdict for a in audits], returns, adv)
