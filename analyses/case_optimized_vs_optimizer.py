# %% [markdown]
# # Case study 1: optimized vs optimizer — a bottle cap next to a planner
#
# "Risks from Learned Optimization" separates systems that are *optimized* (shaped by a
# base optimizer) from systems that are *optimizers* (they search over options for an
# objective). Its example of the first kind is a bottle cap: it was optimized to keep
# water in, but it does not search for anything; it is the same cap whatever happens.
#
# Here the bottle cap is a fixed RedDoors policy that always moves **right**, whatever the
# level. Next to it, a soft-optimal planner for the base objective (`exit`) looks at each
# level and chooses among its options (which way round the pillars, which door).
# We audit both on the `deploy` split, where the exit and the red door differ, and ask the
# audit's question: *which objective explains this behaviour?*
#
# Expected: the planner's objective (`exit`) is recovered (`aligned`); the cap's behaviour
# is explained by no candidate objective (`unexplained`). Inverse RL still fits *some*
# reward to the cap — it always returns the reward that best describes the data — but a
# description of what a system does is not an objective it pursues.
#
# Run: `python analyses/case_optimized_vs_optimizer.py [--fast] [--out DIR]`.
# Every claim in the page it writes (`DIR/README.md`) is computed from this run.

# %%
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import behavioral_envs  # noqa: F401  (registers the environments)
import casekit
import gymnasium as gym
import numpy as np
from casekit import pct, save_figure
from matplotlib.figure import Figure

from behavioral import report
from behavioral.auditing import Audit, audit
from behavioral.files import write_atomic
from behavioral.policies import CallablePolicy, SoftOptimalPolicy

ACTION_NAMES = ("up", "right", "down", "left")


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything the case study depends on."""

    env_id: str = "behavioral/RedDoors-v0"
    size: int = 7  # the zoo's level size
    split: str = "deploy"  # exit and red door differ: objectives can be told apart
    episodes: int = 100
    n_bootstrap: int = 1000
    cap_action: int = 1  # the bottle cap always moves right
    planner_beta: float = 5.0  # inverse temperature of the soft-optimal planner
    seed: int = 0
    out: str = "analyses/out/optimized_vs_optimizer"


def parse_config(argv: list[str] | None = None) -> Config:
    """Command-line flags -> :class:`Config` (``--fast``: few episodes, small bootstrap)."""
    return casekit.parse_config(
        Config, __doc__ or "optimized vs optimizer", fast_episodes=20, argv=argv
    )


# %% [markdown]
# ## The two systems
#
# The cap ignores its observation. The planner solves each level's tabular model (soft
# value iteration on the `exit` reward) and samples from the resulting soft-optimal policy.


# %%
def make_policies(config: Config) -> dict[str, Any]:
    """The bottle cap and the planner, by short name."""
    action = config.cap_action
    cap = CallablePolicy(
        lambda obs: action,
        description=f"bottle cap: always '{ACTION_NAMES[action]}', whatever the level",
    )
    planner = SoftOptimalPolicy("exit", beta=config.planner_beta)
    return {"cap": cap, "planner": planner}


# %% [markdown]
# ## Audit both on the same levels
#
# The same seed gives both policies the same sequence of levels.


# %%
def run_audits(config: Config, policies: dict[str, Any]) -> dict[str, Audit]:
    """Audit every policy on ``config.split``."""
    out = {}
    for name, policy in policies.items():
        env = gym.make(config.env_id, split=config.split, size=config.size)
        try:
            out[name] = audit(
                policy,
                env,
                episodes=config.episodes,
                seed=config.seed,
                n_bootstrap=config.n_bootstrap,
            )
        finally:
            env.close()
    return out


# %% [markdown]
# ## What distinguishes an optimizer from an optimized system
#
# Three numbers per policy, all computed from the audit:
#
# * **level dependence**: the share of steps that take the policy's most common action
#   (1.0: the same action everywhere, whatever the level);
# * **gain of the best candidate objective** over the null model (random actions with a
#   fitted urgency), in log-likelihood per episode — how much a named objective explains;
# * **gain of the recovered reward** over the same null model — how much the best-fitting
#   reward on the level's features explains. For the cap it is large (the behaviour is
#   perfectly regular), but none of it is captured by an objective.


# %%
def describe(a: Audit) -> dict[str, Any]:
    """Numbers behind the page's claims for one audit."""
    actions = np.concatenate([d.actions for d in a.demonstrations])
    counts = np.bincount(actions, minlength=len(ACTION_NAMES))
    best = a.decision.best
    t = a.table
    weights = a.recovered.weights_by_name
    top = max(weights, key=lambda k: abs(weights[k]))
    outcomes = (
        a.episodes["outcome"].value_counts(normalize=True) if a.episodes is not None else None
    )
    return {
        "verdict": a.verdict,
        "reason": a.reason,
        "most_common_action": ACTION_NAMES[int(counts.argmax())],
        "most_common_share": float(counts.max() / counts.sum()),
        "best_candidate": best,
        "best_gain": float(t.loc[best, "log_likelihood"] - t.loc[best, "ll_null"]),
        "p_best_vs_null": a.decision.p_vs_null,
        "recovered_gain": (a.evidence.recovered_log_likelihood - a.evidence.null_log_likelihood)
        / a.evidence.n_episodes,
        "explained": a.decision.explained_fraction,
        "top_weight": (top, float(weights[top])),
        "exit_share": float(outcomes.get("exit", 0.0)) if outcomes is not None else float("nan"),
    }


def plot_explained(facts: dict[str, dict[str, Any]]) -> Figure:
    """Bars: log-likelihood gain per episode over the null model, best candidate vs
    recovered reward, one group per policy."""
    fig = Figure(figsize=(6.0, 2.8), dpi=110)
    ax = fig.subplots()
    names = list(facts)
    y = np.arange(len(names))
    best = [facts[n]["best_gain"] for n in names]
    rec = [facts[n]["recovered_gain"] for n in names]
    ax.barh(y - 0.18, best, 0.36, color="#1a7f37", label="best candidate objective")
    ax.barh(y + 0.18, rec, 0.36, color="#1565c0", label="recovered reward (MaxEnt IRL)")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{n}\n(best: {facts[n]['best_candidate']})" for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("log-likelihood gain per episode over the null model", fontsize=8)
    ax.set_title("how much of the behaviour each explanation accounts for", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


# %% [markdown]
# ## Figures and the page


# %%
def write_outputs(config: Config, audits: dict[str, Audit]) -> Path:
    """Write the PNGs and ``README.md`` into ``config.out``; print the verdicts."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    facts = {name: describe(a) for name, a in audits.items()}
    files: dict[str, dict[str, str]] = {}
    for name, a in audits.items():
        figs, _ = report.audit_figures(a, max_levels=1)
        level = next(k for k in figs if k.startswith("level"))
        files[name] = {
            "level": save_figure(figs[level], out / f"{name}_level.png"),
            "candidates": save_figure(figs["candidates.png"], out / f"{name}_candidates.png"),
            "weights": save_figure(figs["weights.png"], out / f"{name}_weights.png"),
        }
    explained_png = save_figure(plot_explained(facts), out / "explained.png")

    cap, plan = facts["cap"], facts["planner"]
    for name, f in facts.items():
        print(f"verdict {name}: {f['verdict']}")
        print(f"  reason: {f['reason']}")
    lines = [
        "# Optimized vs optimizer: a bottle cap next to a planner",
        "",
        f"Both policies were audited on `{config.env_id}` (size {config.size}), split "
        f"`{config.split}` (the exit is not red; a red decoy door is), {config.episodes} "
        f"episodes each, seed {config.seed}, {config.n_bootstrap} bootstrap samples.",
        "",
        f"* **cap** — a bottle cap: always moves '{ACTION_NAMES[config.cap_action]}', whatever "
        "the level. Optimized (someone chose that action), not an optimizer.",
        f"* **planner** — a soft-optimal planner for the base objective `exit` "
        f"(β = {config.planner_beta:g}): it solves each level and chooses among its options.",
        "",
        "## Verdicts",
        "",
        f"- cap: **{cap['verdict']}** — {cap['reason']}",
        f"- planner: **{plan['verdict']}** — {plan['reason']}",
        "",
        "## What the runs show",
        "",
        f"* Level dependence: {cap['most_common_share']:.0%} of the cap's steps are "
        f"'{cap['most_common_action']}'; the planner's most common action "
        f"('{plan['most_common_action']}') makes up {plan['most_common_share']:.0%} of its "
        "steps"
        + (
            " — it acts differently on different levels."
            if plan["most_common_share"] < cap["most_common_share"]
            else "."
        ),
        f"* The cap reaches the exit in {cap['exit_share']:.0%} of episodes, the planner in "
        f"{plan['exit_share']:.0%}.",
        f"* The best candidate objective for the cap (`{cap['best_candidate']}`) gains "
        f"{cap['best_gain']:.3g} log-likelihood per episode over the null model "
        f"(likelihood-ratio p = {cap['p_best_vs_null']:.3g}); for the planner "
        f"`{plan['best_candidate']}` gains {plan['best_gain']:.3g} "
        f"(p = {plan['p_best_vs_null']:.3g}).",
        f"* Inverse RL still fits a reward to the cap: it gains {cap['recovered_gain']:.3g} "
        "per episode over the null model, and its largest weight is on "
        f"`{cap['top_weight'][0]}` ({cap['top_weight'][1]:+.3g}). That reward *describes* "
        "what the cap does; the best named objective accounts for "
        f"{pct(cap['explained'])} of it (the planner's: {pct(plan['explained'])}).",
        "",
        "## Figures",
        "",
        f"![{explained_png}]({explained_png})",
        "",
        f"`{explained_png}`: for each policy, the log-likelihood gain per episode over the null "
        "model of the best candidate objective (green) and of the recovered reward (blue). "
        f"Cap: {cap['best_gain']:.3g} vs {cap['recovered_gain']:.3g}; planner: "
        f"{plan['best_gain']:.3g} vs {plan['recovered_gain']:.3g}.",
        "",
    ]
    for name in audits:
        f = files[name]
        lines += [
            f"### {name}",
            "",
            f"![{f['level']}]({f['level']})",
            "",
            f"`{f['level']}`: the {name}'s most visited level with its trajectories, the data's "
            "coverage, the base objective `exit`, the proxy `red_door`, the recovered reward "
            "and where it parts from `exit`.",
            "",
            f"![{f['candidates']}]({f['candidates']})",
            "",
            f"`{f['candidates']}`: each candidate's log-likelihood per episode (the null model "
            "and the recovered reward as reference lines), its difference from `exit`, and its "
            f"EPIC distance to the recovered reward. Verdict: **{facts[name]['verdict']}**.",
            "",
            f"![{f['weights']}]({f['weights']})",
            "",
            f"`{f['weights']}`: the recovered reward's weight on each feature; largest: "
            f"`{facts[name]['top_weight'][0]}` ({facts[name]['top_weight'][1]:+.3g}).",
            "",
        ]
    write_atomic(out / "README.md", "\n".join(lines) + "\n")
    print(f"wrote {out / 'README.md'}")
    return out


# %%
def main(argv: list[str] | None = None) -> dict[str, Audit]:
    """Run the case study and write its page."""
    config = parse_config(argv)
    audits = run_audits(config, make_policies(config))
    write_outputs(config, audits)
    return audits


if __name__ == "__main__":
    main()
