"""Tests of ``behavioral.design``: level scoring against a numpy reference and Monte Carlo,
editable level specs and mutation search with their distance from training, the
anytime-valid e-process under optional stopping and adaptive design, and the chooser."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.special
import scipy.stats
from behavioral_envs.grid import InvalidEnvArgumentError
from behavioral_envs.red_doors import RedDoorsEnv
from doors_model import doors

from behavioral import TabularModel
from behavioral.design import (
    EProcess,
    Hypothesis,
    LevelPool,
    choose_levels,
    design_table,
    edit_distance,
    expected_evidence,
    first_rejection,
    hypothesis_log_likelihoods,
    hypothesis_policy,
    is_editable,
    level_pool,
    mixture_predictive_ll,
    mutate_levels,
    score_levels,
    search_levels,
    sequential_decision,
    stack_levels,
    universal_log_evalues,
)
from behavioral.design import _kernels as design_kernels
from behavioral.design.scoring import _hypothesis_rewards
from behavioral.errors import (
    BehavioralError,
    EnvContractError,
    InvalidArgumentError,
    InvalidDemonstrationError,
    UnknownObjectiveError,
)
from behavioral.irl.maxent import Demonstration, MaxEntObjective
from behavioral.sampling import sample_demonstrations
from behavioral.tabular import absorbing_states

RED, WATER = "behavioral/RedDoors-v0", "behavioral/WaterPlants-v0"
ROOT = Path(__file__).resolve().parents[1]


def red_levels(split: str, n: int, start: int = 0) -> list[TabularModel]:
    env = gym.make(RED, split=split)
    out = []
    for seed in range(start, start + n):
        env.reset(seed=seed)
        out.append(env.unwrapped.tabular_model())
    return out


def random_model(
    S: int, A: int, H: int, width: int, seed: int, n_absorbing: int = 1
) -> TabularModel:
    """Stochastic dynamics with ``width`` successors per row; the last states absorbing."""
    rng = np.random.default_rng(seed)
    rows, cols, vals = [], [], []
    for s in range(S):
        for a in range(A):
            r = s * A + a
            if s >= S - n_absorbing:
                rows.append(r), cols.append(s), vals.append(1.0)
                continue
            c = rng.choice(S, size=width, replace=False)
            v = rng.random(width) + 0.1
            rows += [r] * width
            cols += list(c)
            vals += list(v / v.sum())
    T = sp.csr_array((vals, (rows, cols)), shape=(S * A, S))
    d0 = rng.random(S)
    d0[S - n_absorbing :] = 0
    objectives = {"a": rng.normal(size=(S, A)), "b": rng.normal(size=S)}
    for r in objectives.values():
        r[S - n_absorbing :] = 0
    return TabularModel(
        transitions=T,
        initial_state_dist=d0 / d0.sum(),
        horizon=H,
        discount=0.97 if seed % 2 else 1.0,
        objectives=objectives,
        base="a",
    )


def reference_scores(models, hyps):
    stack = stack_levels(models)
    R = _hypothesis_rewards(stack, hyps)
    off = stack.state_offsets
    parts = [slice(off[i], off[i + 1]) for i in range(len(models))]
    running = [~absorbing_states(m) for m in models]
    np.testing.assert_array_equal(np.concatenate(running), stack.running)
    return design_kernels.score_reference(
        [m.transition_tensor() for m in models],
        [m.initial_state_dist for m in models],
        running,
        [m.horizon for m in models],
        [m.discount for m in models],
        [R[:, p] for p in parts],
        np.array([h.discount for h in hyps]),
        np.array([h.lapse for h in hyps]),
        [stack.objectives[:, p] for p in parts],
    )


# ----------------------------------------------------------------------------- scoring


HYPS = [
    Hypothesis("a", beta=2.0, living_reward=-0.3),
    Hypothesis("b", beta=1.5, lapse=0.2, discount=0.9),
    Hypothesis(None, living_reward=0.4, lapse=0.05, name="null"),
]


@pytest.mark.parametrize("A,width", [(4, 1), (4, 2), (3, 3), (5, 11)])
def test_kernel_matches_numpy_reference(A: int, width: int) -> None:
    # Levels of several sizes and two horizons, so groups, padding and the group split
    # on a horizon change are all exercised.
    models = [
        random_model(S, A, H, min(width, S - 1), seed=i)
        for i, (S, H) in enumerate([(12, 6), (40, 6), (7, 6), (300, 9), (600, 9), (30, 9)])
    ]
    stack = stack_levels(models)
    assert stack.group_offsets.tolist()[0] == 0 and stack.group_offsets[-1] == len(models)
    assert len(stack.group_offsets) >= 4  # a horizon change and an oversized level split groups
    got = score_levels(stack, HYPS)
    kl, ret = reference_scores(models, HYPS)
    np.testing.assert_allclose(got.kl, np.maximum(kl, 0), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(got.returns, ret, rtol=1e-9, atol=1e-10)
    assert np.all(got.kl >= 0) and np.all(np.diagonal(got.kl, axis1=1, axis2=2) == 0)
    # only some rows: the same numbers there, NaN in the others
    rows = [0, len(HYPS) - 1]
    part = score_levels(stack, HYPS, rows=rows)
    np.testing.assert_array_equal(part.kl[:, rows], got.kl[:, rows])
    np.testing.assert_array_equal(part.returns[:, rows], got.returns[:, rows])
    others = [i for i in range(len(HYPS)) if i not in rows]
    assert np.isnan(part.kl[:, others]).all() and np.isnan(part.returns[:, others]).all()
    with pytest.raises(InvalidArgumentError, match="rows"):
        score_levels(stack, HYPS, rows=[len(HYPS)])


def test_kernel_matches_reference_on_red_doors() -> None:
    models = red_levels("deploy", 6)
    hyps = [
        Hypothesis("exit", beta=4.0, living_reward=-0.1),
        Hypothesis("red_door", beta=2.0, discount=0.95, lapse=0.1),
    ]
    got = score_levels(models, hyps)
    kl, ret = reference_scores(models, hyps)
    np.testing.assert_allclose(got.kl, kl, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(got.returns, ret, rtol=1e-9, atol=1e-10)


def test_kl_is_zero_for_identical_agents() -> None:
    models = [random_model(20, 4, 8, 2, seed=s) for s in range(3)] + [doors()]
    for m in models[:3]:
        same = [
            Hypothesis("a", beta=1.3, living_reward=0.2, lapse=0.1, name="x"),
            Hypothesis("a", beta=1.3, living_reward=0.2, lapse=0.1, name="y"),
        ]
        sc = score_levels([m], same)
        assert np.all(sc.kl == 0.0)
        assert sc.regret("x", "y")[0] == 0.0
    # ... and strictly positive for different ones.
    sc = score_levels(models[:3], HYPS[:2])
    assert np.all(sc.divergence("a", "b") > 1e-3)


@pytest.mark.parametrize("lapse", [0.0, 0.15])
def test_kl_and_regret_match_monte_carlo(lapse: float) -> None:
    (model,) = red_levels("deploy", 1, start=3)
    a = Hypothesis("exit", beta=3.0, living_reward=-0.05, lapse=lapse)
    b = Hypothesis("red_door", beta=2.0, discount=0.9)
    sc = score_levels([model], [a, b])
    rng = np.random.default_rng(0)
    n = 20_000
    for h, g in ((a, b), (b, a)):
        demos = sample_demonstrations(model, hypothesis_policy(model, h), n, rng)
        llr = hypothesis_log_likelihoods([model], demos, h) - hypothesis_log_likelihoods(
            [model], demos, g
        )
        kl = sc.divergence(h.label, g.label)[0]
        assert abs(llr.mean() - kl) < 4 * llr.std() / math.sqrt(n), (h.label, llr.mean(), kl)
        # The expected return of the first agent's objective, by sampling.
        r = model.objectives[a.objective]
        ret = np.array([r[d.states[:-1], d.actions].sum() for d in demos])
        want = sc.returns[0, sc.index(h.label), 0]
        assert abs(ret.mean() - want) < 4 * ret.std() / math.sqrt(n) + 1e-12
    regret = sc.regret("exit", "red_door")[0]
    assert regret > 0  # on a deploy level the red-door agent reaches the exit less often


def test_train_levels_score_zero_deploy_levels_above_zero() -> None:
    train, deploy = red_levels("train", 30), red_levels("deploy", 30)
    same = dict(beta=3.0, living_reward=-0.05, discount=0.95, lapse=0.05)
    hyps = [Hypothesis("exit", **same), Hypothesis("red_door", **same)]
    tr, de = score_levels(train, hyps), score_levels(deploy, hyps)
    for sc in (tr, de):
        assert sc.kl.shape == (30, 2, 2)
    assert np.all(tr.divergence("exit", "red_door") == 0.0)
    assert np.all(tr.divergence("red_door", "exit") == 0.0)
    assert np.all(tr.regret("exit", "red_door") == 0.0)
    assert np.all(de.divergence("exit", "red_door") > 0.1)
    assert np.all(de.divergence("red_door", "exit") > 0.1)
    # The chooser's score, with differently fitted nuisances: still exactly 0 on train.
    base = Hypothesis("exit", beta=5.0, living_reward=-0.2, lapse=0.02)
    proxy = Hypothesis("red_door", beta=2.0, discount=0.9)
    null = Hypothesis(None, living_reward=0.1)
    ev_train = expected_evidence(train, base, [proxy], null)
    ev_deploy = expected_evidence(deploy, base, [proxy], null)
    assert np.all(ev_train.expected == 0.0)
    assert np.all(ev_deploy.expected > 0)


def test_hypothesis_log_likelihoods_match_the_audits_likelihood() -> None:
    model = doors()
    hyp = Hypothesis("exit", beta=2.5)
    demos = sample_demonstrations(
        model, hypothesis_policy(model, hyp), 30, np.random.default_rng(1)
    )
    feats = model.objectives["exit"][:, :, None]
    problem = MaxEntObjective(
        [model.replace(features=feats, feature_names=("objective",), objectives={}, base=None)],
        demos,
    )
    np.testing.assert_allclose(
        hypothesis_log_likelihoods([model], demos, hyp),
        problem.episode_log_likelihoods(np.array([2.5])),
        rtol=1e-10,
    )
    with pytest.raises(InvalidDemonstrationError):
        hypothesis_log_likelihoods(
            [model], [Demonstration(demos[0].states, demos[0].actions, level=3)], hyp
        )


def test_scoring_rejects_bad_input() -> None:
    with pytest.raises(InvalidArgumentError, match="beta"):
        Hypothesis("exit", beta=-1.0)
    with pytest.raises(InvalidArgumentError, match="lapse"):
        Hypothesis("exit", lapse=1.5)
    with pytest.raises(InvalidArgumentError, match="discount"):
        Hypothesis("exit", discount=0.0)
    with pytest.raises(InvalidArgumentError, match="finite"):
        Hypothesis("exit", living_reward=float("nan"))
    models = red_levels("train", 2)
    with pytest.raises(UnknownObjectiveError, match="chocolate"):
        score_levels(models, [Hypothesis("chocolate")])
    with pytest.raises(InvalidArgumentError, match="distinct"):
        score_levels(models, [Hypothesis("exit"), Hypothesis("exit", beta=2)])
    with pytest.raises(InvalidArgumentError):
        score_levels(models, [])


def test_scoring_checks_memory_before_spending_it(monkeypatch) -> None:
    from behavioral.design import scoring

    models = red_levels("train", 2)
    need = 2 * 2 * 50 * sum(m.n_states for m in models) * 4 * 8  # both levels in one group
    monkeypatch.setattr(scoring, "MAX_SCRATCH_BYTES", need - 1)
    with pytest.raises(InvalidArgumentError, match="GiB of policy scratch"):
        score_levels(models, [Hypothesis("exit"), Hypothesis("red_door")])
    monkeypatch.setattr(scoring, "MAX_SCRATCH_BYTES", need)
    assert score_levels(models, [Hypothesis("exit"), Hypothesis("red_door")]).kl.shape == (2, 2, 2)


# ------------------------------------------------------------------- level specs (envs)


@pytest.mark.parametrize(
    "env_id,split",
    [(RED, "train"), (RED, "deploy"), (RED, "diverse"), (WATER, "train"), (WATER, "deploy")],
)
def test_level_spec_round_trips_through_json(env_id: str, split: str) -> None:
    env = gym.make(env_id, split=split)
    obs, _ = env.reset(seed=5)
    u = env.unwrapped
    model = u.tabular_model()
    spec = u.level_spec()
    doc = json.loads(json.dumps(spec.to_dict()))
    other = gym.make(env_id, split="train")  # the spec, not the split, decides the level
    obs2, info2 = other.reset(options={"level": doc})
    assert "level_seed" not in info2 and info2["level"] == spec.to_json()
    np.testing.assert_array_equal(obs, obs2)
    m2 = other.unwrapped.tabular_model()
    assert (m2.transitions != model.transitions).nnz == 0
    np.testing.assert_array_equal(m2.initial_state_dist, model.initial_state_dist)
    for name in model.objectives:
        np.testing.assert_array_equal(m2.objectives[name], model.objectives[name])
    assert other.unwrapped.level_spec().to_json() == spec.to_json()
    # Walking the same actions gives the same observations.
    rng = np.random.default_rng(0)
    for a in rng.integers(0, env.action_space.n, size=15):
        o1, *_ = env.step(int(a))
        o2, *_ = other.step(int(a))
        np.testing.assert_array_equal(o1, o2)


def _red_spec(split: str = "train", seed: int = 0) -> dict:
    env = gym.make(RED, split=split)
    env.reset(seed=seed)
    return env.unwrapped.level_spec().to_dict()


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda d: d.pop("start"), "exactly the keys"),
        (lambda d: d.update(extra=1), "exactly the keys"),
        (lambda d: d["walls"].__setitem__(0, "#" * 8), "row 0"),
        (lambda d: d["walls"].__setitem__(3, "#x" + d["walls"][3][2:]), "row 3"),
        (lambda d: d["doors"][0].update(row=4, col=4), "outer wall"),
        (lambda d: d["doors"][0].update(color="pink"), "color"),
        (lambda d: [x.update(exit=True) for x in d["doors"]], "exactly one door"),
        (lambda d: d["doors"][1].update(color=d["doors"][0]["color"]), "distinct"),
        (lambda d: d.update(start=[2, 2]), "open interior"),
        (lambda d: d.update(start=[0.5, 1]), "pair of ints"),
        (lambda d: d.update(doors=[]), "1 to 5 doors"),
        (
            lambda d: d.update(doors=[{"row": 0, "col": 1, "color": "red", "exit": True}] * 50),
            "1 to 5 doors",
        ),
    ],
)
def test_bad_red_doors_specs_are_refused(edit, match: str) -> None:
    spec = _red_spec()
    edit(spec)
    env = gym.make(RED)
    with pytest.raises(InvalidEnvArgumentError, match=match):
        env.reset(options={"level": spec})
    with pytest.raises(InvalidEnvArgumentError, match="not both"):
        env.reset(options={"level": _red_spec(), "level_seed": 1})


def test_bad_water_plants_specs_are_refused() -> None:
    env = gym.make(WATER)
    env.reset(seed=0)
    good = env.unwrapped.level_spec().to_dict()
    cases = [
        ({"tool": "bucket"}, "tool"),
        ({"initial_plants": ["dry", "wet", "dry"]}, "plant 1 state"),
        ({"initial_plants": ["dry"]}, "3 plant states"),
        ({"tap": [4, 1]}, "floor cell"),
        ({"plants": [[4, 1]] * 5}, "1 to 4 plants"),
        ({"start": [0, 0]}, "wall"),
    ]
    for change, match in cases:
        with pytest.raises(InvalidEnvArgumentError, match=match):
            env.reset(options={"level": {**good, **change}})
    assert issubclass(InvalidEnvArgumentError, BehavioralError)


def _optimal_return(model: TabularModel, name: str) -> float:
    """Best expected finite-horizon return of objective ``name`` from the start."""
    S, A = model.n_states, model.n_actions
    r = np.broadcast_to(model.objectives[name].reshape(S, -1), (S, A))
    v = np.zeros(S)
    for _ in range(model.horizon):
        v = (r + (model.transitions @ v).reshape(S, A)).max(axis=1)
    return float(model.initial_state_dist @ v)


def test_mutated_red_doors_levels_are_solvable_distinct_and_one_edit_apart() -> None:
    env = gym.make(RED, split="train")
    roots = level_pool("train", env, n=5, rng=0)
    pool = mutate_levels(env, roots, n=40, max_edits=3, rng=1)
    assert len(pool) == 40 and len({lv.key for lv in pool.levels}) == 40
    assert not {lv.key for lv in pool.levels} & {lv.key for lv in roots.levels}
    for lv in pool.levels:
        assert lv.origin == "mutation" and 1 <= lv.mutations <= 3
        assert lv.parent in {r.key for r in roots.levels}
        assert env.unwrapped.level_solvable(lv.spec)
        assert _optimal_return(lv.model, "exit") == 1.0  # the exit is reachable in time
    # Each neighbour is exactly one edit away: one field differs from the level.
    env.reset(seed=3)
    u = env.unwrapped
    spec = u.level_spec().to_dict()
    for what, child in u.level_mutations():
        d = child.to_dict()
        changed = [k for k in spec if d[k] != spec[k]]
        if what.startswith("move door"):
            assert set(changed) == {"doors", "walls"}
        else:
            assert len(changed) == 1, (what, changed)


def test_solvability_is_reaching_the_exit_in_time_and_unsolvable_levels_are_dropped() -> None:
    env = RedDoorsEnv(split="train", max_steps=4)
    env.reset(seed=0)
    spec = env.level_spec()
    solvable = []
    for _, child in env.level_mutations(spec):
        env.reset(options={"level": child})
        reachable = _optimal_return(env.tabular_model(), "exit") == 1.0
        assert env.level_solvable(child) == reachable
        solvable.append(reachable)
    assert not all(solvable) and any(solvable)  # 4 steps: some starts are too far
    pool = mutate_levels(
        gym.make(RED, max_steps=4), [spec], n=sum(solvable), max_edits=1, rng=0, max_tries=5000
    )
    assert len(pool) == sum(solvable)  # every solvable neighbour, no unsolvable one
    for lv in pool.levels:
        assert _optimal_return(lv.model, "exit") == 1.0


def test_red_doors_distance_from_training_on_hand_built_levels() -> None:
    env = RedDoorsEnv(split="train")
    train = _red_spec("train", seed=1)
    assert env.level_distance(train, "train") == 0 and env.level_violations(train, "train") == ()
    deploy = _red_spec("deploy", seed=1)
    assert env.level_distance(deploy, "train") == 1
    assert set(env.level_violations(deploy, "train")) == {"exit_not_red", "other_red_door"}
    assert env.level_distance(deploy, "deploy") == 0 and env.level_distance(train, "deploy") == 1
    # The exit recoloured to an unused colour: no red door at all, still one edit.
    green = json.loads(json.dumps(train))
    used = {d["color"] for d in green["doors"]}
    free = next(c for c in ("green", "blue", "yellow", "purple") if c not in used)
    next(d for d in green["doors"] if d["exit"])["color"] = free
    assert env.level_violations(green, "train") == ("exit_not_red",)
    assert env.level_distance(green, "train") == 1
    # A start next to a door breaks another invariant: one more edit.
    door = next(d for d in deploy["doors"] if not d["exit"])
    near = json.loads(json.dumps(deploy))
    near["start"] = list(env._inner((door["row"], door["col"])))
    assert "start_near_door" in env.level_violations(near, "train")
    assert env.level_distance(near, "train") == 2
    # A pillar knocked out: walls the generator cannot carve, no edit restores them.
    walls = list(train["walls"])
    walls[2] = walls[2][:2] + "." + walls[2][3:]
    bad = {**train, "walls": walls}
    assert "walls" in env.level_violations(bad, "train")
    assert env.level_distance(bad, "train") == math.inf


def test_water_plants_distance_from_training_on_hand_built_levels() -> None:
    env = gym.make(WATER, split="deploy")
    env.reset(seed=2)
    u = env.unwrapped
    hose = u.level_spec().to_dict()
    assert u.level_distance(hose, "deploy") == 0
    assert u.level_distance(hose, "train") == 4  # the tool and three plants
    kettle = {**hose, "tool": "kettle", "initial_plants": ["healthy", "dry", "dry"]}
    assert u.level_violations(kettle, "train") == ("plant_0_state",)
    assert u.level_distance(kettle, "train") == 1
    moved = {**kettle, "initial_plants": ["dry"] * 3, "tap": [1, 1], "tool": "hose"}
    assert set(u.level_violations(moved, "train")) == {"tap", "tool"}
    assert u.level_distance(moved, "train") == 2


@pytest.mark.parametrize("env_id", [RED, WATER])
def test_analytic_distance_equals_breadth_first_search(env_id: str) -> None:
    env = gym.make(env_id, split="train")
    roots = level_pool("deploy", env, n=2, rng=3)
    pool = mutate_levels(env, roots, n=3, max_edits=2, rng=4)
    for lv in (*roots.levels, *pool.levels):
        want = env.unwrapped.level_distance(lv.spec, "train")
        assert lv.distance == want
        if want <= 2:
            assert edit_distance(env, lv.spec, "train", max_depth=2) == want


# ----------------------------------------------------------------------------- sources


def test_level_pools_from_each_kind_of_source() -> None:
    env = gym.make(RED, split="train", size=7)
    by_split = level_pool("deploy", env, n=12, rng=0)
    assert len(by_split) == 12
    assert all(lv.origin == "split:deploy" and lv.distance == 1.0 for lv in by_split.levels)
    assert all(lv.model.n_states <= 5 * 5 + 3 for lv in by_split.levels)  # size=7 kept
    again = level_pool("deploy", env, n=12, rng=0)
    assert [lv.key for lv in again.levels] == [lv.key for lv in by_split.levels]

    seeds = [int(lv.reset_seed) for lv in by_split.levels[:4]]
    by_seed = level_pool(seeds, gym.make(RED, split="deploy", size=7))
    assert [lv.key for lv in by_seed.levels] == [lv.key for lv in by_split.levels[:4]]

    def generator(rng: np.random.Generator) -> gym.Env:
        e = gym.make(RED, split="diverse", size=7)
        e.reset(seed=int(rng.integers(2**31)))
        return e

    gen = level_pool(generator, n=10, rng=1)
    assert len(gen) == 10 and all(lv.origin == "generator" for lv in gen.levels)
    assert set(gen.table()["distance"]) <= {0.0, 1.0}

    # WaterPlants' train split has one level per start cell: the pool says so.
    water = level_pool("train", gym.make(WATER), n=50, rng=0, max_draws=400)
    assert len(water) == 21 and all(lv.distance == 0 for lv in water.levels)

    with pytest.raises(InvalidArgumentError, match="split"):
        level_pool("chocolate", env)
    with pytest.raises(InvalidArgumentError, match="seeds"):
        level_pool([1, -2], env)
    with pytest.raises(InvalidArgumentError, match="need the env"):
        level_pool("deploy")
    with pytest.raises(InvalidArgumentError, match="levels="):
        level_pool(3.5, env)


def test_non_editable_envs_give_pools_but_no_mutations() -> None:
    from seals.diagnostics.cliff_world import CliffWorldEnv

    def generator(rng: np.random.Generator) -> gym.Env:
        e = CliffWorldEnv(width=5, height=3, horizon=6, use_xy_obs=False)
        e.reset(seed=int(rng.integers(100)))
        return e

    pool = level_pool(generator, n=3, rng=0)
    assert len(pool) == 1  # one fixed level, found three times
    assert pool[0].spec is None and pool[0].env is not None and pool[0].key.startswith("model:")
    assert not is_editable(pool[0].env)
    with pytest.raises(EnvContractError, match="editable"):
        mutate_levels(pool[0].env, pool, n=2)


def test_search_finds_distinguishing_levels_from_training_levels_alone() -> None:
    env = gym.make(RED, split="train")
    roots = level_pool("train", env, n=8, rng=0)
    base = Hypothesis("exit", beta=3.0, living_reward=-0.05)
    proxy = Hypothesis("red_door", beta=3.0, living_reward=-0.05)
    null = Hypothesis(None, living_reward=0.1)

    def score(pool: LevelPool) -> np.ndarray:
        return expected_evidence(pool.stack(), base, [proxy], null).expected

    pool, scores = search_levels(env, roots, score, rounds=2, population=4, children=24, rng=5)
    assert np.all(scores[: len(roots)] == 0.0)  # training levels cannot tell them apart
    ev = expected_evidence(pool.stack(), base, [proxy], null)
    np.testing.assert_array_equal(ev.expected, scores)  # the stack is kept, scores reproduce
    counts = np.zeros(len(pool))
    counts[int(np.argmax(scores))] = 2
    table = design_table(pool, ev, counts)
    assert len(table) == len(pool) and table["episodes"].sum() == 2
    assert {"origin", "edits", "distance", "violations", "expected", "kl[exit||red_door]"} <= set(
        table
    )
    assert table.loc[table["expected"] > 0, "distance"].min() >= 1
    with pytest.raises(InvalidArgumentError):
        design_table(pool.subset(range(3)), ev)
    best = int(np.argmax(scores))
    assert scores[best] > 0.3
    assert pool[best].distance >= 1 and pool[best].violations
    # A level scores > 0 exactly when its exit is not the (only) red door: the training
    # invariants that matter for these two objectives.
    colours = np.array(
        [bool({"exit_not_red", "other_red_door"} & set(lv.violations)) for lv in pool.levels]
    )
    np.testing.assert_array_equal(scores > 0, colours)
    assert np.all(np.array([lv.distance for lv in pool.levels])[colours] >= 1)
    again, scores2 = search_levels(env, roots, score, rounds=2, population=4, children=24, rng=5)
    assert [lv.key for lv in again.levels] == [lv.key for lv in pool.levels]
    np.testing.assert_array_equal(scores, scores2)


# ----------------------------------------------------------------------------- evidence


def _gaussian_sequential(
    n_sims: int, n_steps: int, mu: float, alpha: float, seed: int, adaptive: bool = True
):
    """Adaptive design + optional stopping on a Gaussian location family.

    Levels ``c in {0.25, 1, 2}``: an episode there is ``x ~ N(c mu, 1)``. Null class
    ``mu <= 0``, alternative ``mu > 0``. With ``adaptive`` the level is chosen from the
    past (by the current log e-value: predictable, and as data-dependent as a design
    gets), else always the most informative one. Returns the universal e-process's
    rejection rate (stop at the first crossing) and that of a naive likelihood-ratio test
    read after every episode at level ``alpha``.
    """
    rng = np.random.default_rng(seed)
    cs = np.array([0.25, 1.0, 2.0])
    sxc = np.zeros(n_sims)  # sum c x
    scc = np.zeros(n_sims)  # sum c^2
    sxx = np.zeros(n_sims)  # sum x^2 (constant terms cancel but keep the numbers honest)
    log_num = np.zeros(n_sims)
    log_e = np.zeros(n_sims)
    uni = np.zeros(n_sims, dtype=bool)
    naive = np.zeros(n_sims, dtype=bool)
    z = float(scipy.stats.norm.isf(alpha))
    for _ in range(n_steps):
        c = np.where(log_e > 0, cs[2], np.where(log_e > -1, cs[1], cs[0])) if adaptive else cs[2]
        mu_hat = np.where(
            scc > 0, np.maximum(sxc / np.maximum(scc, 1e-12), 0.1), 0.5
        )  # predictable
        x = c * mu + rng.normal(size=n_sims)
        log_num += -0.5 * (x - c * mu_hat) ** 2
        sxc += c * x
        scc += c * c
        sxx += x * x
        mu0 = np.minimum(0.0, sxc / scc)  # MLE under the null class
        log_den = -0.5 * (sxx - 2 * mu0 * sxc + mu0**2 * scc)
        log_e = log_num - log_den
        uni |= log_e >= math.log(1 / alpha)
        naive |= sxc / np.sqrt(scc) > z  # the fixed-sample one-sided z test, peeking
    return uni.mean(), naive.mean()


def test_eprocess_type_one_error_under_optional_stopping_and_adaptive_design() -> None:
    alpha = 0.05
    uni, naive = _gaussian_sequential(20_000, 200, mu=0.0, alpha=alpha, seed=0)
    assert uni <= alpha  # Ville: at most alpha, whatever the stopping time
    assert naive > 3 * alpha  # peeking at a fixed-sample test is badly miscalibrated
    power, _ = _gaussian_sequential(2_000, 200, mu=0.5, alpha=alpha, seed=1, adaptive=False)
    assert power > 0.95  # and it is not conservative to the point of uselessness


def test_mixture_numerator_is_the_marginal_likelihood_and_stays_calibrated() -> None:
    rng = np.random.default_rng(0)
    ll = rng.normal(-5, 2, size=(30, 7))
    prior = np.log(rng.dirichlet(np.ones(7)))
    pred = mixture_predictive_ll(ll, prior)
    marginal = scipy.special.logsumexp(prior + ll.sum(axis=0))
    assert pred.sum() == pytest.approx(marginal, rel=1e-12)
    # never more than log M behind the best member (uniform prior)
    assert mixture_predictive_ll(ll).sum() >= ll.sum(axis=0).max() - math.log(7) - 1e-9
    with pytest.raises(InvalidArgumentError):
        mixture_predictive_ll(ll[:, :0])
    with pytest.raises(InvalidArgumentError):
        mixture_predictive_ll(ll, prior[:3])

    # Gaussian location: null mu <= 0 (truth mu = 0), numerator a mixture over a grid of
    # mu > 0, adaptive design (levels c), stop at the first crossing.
    alpha, n_sims, n_steps = 0.05, 4000, 150
    grid = np.array([0.05, 0.1, 0.2, 0.4, 0.8])
    for mu, check in ((0.0, "type I"), (0.3, "power")):
        rng = np.random.default_rng(1)
        tot = np.zeros((n_sims, grid.size))
        log_num = np.zeros(n_sims)
        sxc = scc = sxx = np.zeros(n_sims)
        log_e = np.zeros(n_sims)
        hit = np.zeros(n_sims, dtype=bool)
        for _ in range(n_steps):
            # type I: a predictable, data-dependent design; power: the informative level
            c = np.where(log_e > 0, 2.0, 0.5) if check == "type I" else np.full(n_sims, 2.0)
            x = c * mu + rng.normal(size=n_sims)
            member = -0.5 * (x[:, None] - c[:, None] * grid[None]) ** 2
            log_w = tot - scipy.special.logsumexp(tot, axis=1, keepdims=True)
            log_num = log_num + scipy.special.logsumexp(log_w + member, axis=1)
            tot = tot + member
            sxc, scc, sxx = sxc + c * x, scc + c * c, sxx + x * x
            mu0 = np.minimum(0.0, sxc / scc)
            log_e = log_num + 0.5 * (sxx - 2 * mu0 * sxc + mu0**2 * scc)
            hit |= log_e >= math.log(1 / alpha)
        if check == "type I":
            assert hit.mean() <= alpha
        else:
            assert hit.mean() > 0.9


def test_eprocess_on_tabular_agents_with_the_chooser() -> None:
    """Null class: soft-optimal for "exit" with beta on a grid; alternative: the proxy.
    Levels chosen by the chooser from the current fits; stop at the first crossing."""
    levels = [doors(7, same=True), doors(7), doors(5), doors(9, horizon=14)]
    grid = np.array([0.25, 0.5, 1.0, 2.0, 4.0])
    pol = {
        (o, k, lvl): hypothesis_policy(m, Hypothesis(o, beta=b))
        for o in ("exit", "right_door")
        for k, b in enumerate(grid)
        for lvl, m in enumerate(levels)
    }
    stack = stack_levels(levels)

    def episode_ll(o: str, lvl: int, d: Demonstration) -> np.ndarray:
        n = d.actions.shape[0]
        return np.array(
            [
                np.log(pol[(o, k, lvl)][np.arange(n), d.states[:n], d.actions]).sum()
                for k in range(len(grid))
            ]
        )

    def run(truth: str, beta: float, seed: int, n_max: int = 25, alpha: float = 0.1):
        rng = np.random.default_rng(seed)
        tot = {"exit": np.zeros(len(grid)), "right_door": np.zeros(len(grid))}
        proc = EProcess("right_door", "exit")
        counts = np.zeros(len(levels))
        for i in range(n_max):
            fit = {o: float(grid[np.argmax(tot[o])]) if i else 1.0 for o in tot}
            ev = expected_evidence(
                stack,
                Hypothesis("exit", beta=fit["exit"]),
                [Hypothesis("right_door", beta=fit["right_door"])],
            )
            lvl = int(choose_levels(ev.expected, counts=counts, rng=rng, explore=0.2).levels[0])
            counts[lvl] += 1
            m = levels[lvl]
            d = sample_demonstrations(
                m, hypothesis_policy(m, Hypothesis(truth, beta=beta)), 1, rng
            )[0]
            k_alt = int(np.argmax(tot["right_door"])) if i else 2  # predictable plug-in
            new = {o: episode_ll(o, lvl, d) for o in tot}
            for o in tot:
                tot[o] += new[o]
            proc = proc.update(new["right_door"][k_alt], float(tot["exit"].max()))
            if proc.rejects(alpha):
                return True, i + 1
        return False, n_max

    false = [run("exit", 1.0, seed)[0] for seed in range(150)]
    assert np.mean(false) <= 0.1
    hits = [run("right_door", 2.0, 1000 + seed) for seed in range(30)]
    assert np.mean([h for h, _ in hits]) >= 0.8  # a proxy agent is caught within 25 episodes


def test_eprocess_bookkeeping_and_decision() -> None:
    rng = np.random.default_rng(0)
    plug = rng.normal(-3, 1, size=12)
    den = np.cumsum(rng.normal(-3.2, 1, size=12))
    log_e = universal_log_evalues(plug, den)
    proc = EProcess("p", "b")
    for i in range(12):
        proc = proc.update(plug[i], den[i])
        assert proc.log_e == pytest.approx(log_e[i]) and proc.n == i + 1
    assert proc.log_max == pytest.approx(log_e.max())
    batch = EProcess("p", "b").update(plug[:5], den[4]).update(plug[5:], den[-1])
    assert batch.log_e == pytest.approx(log_e[-1])
    assert first_rejection(np.array([0.0, 2.0, 3.1, 1.0]), 0.05) == 2
    assert first_rejection(np.array([0.0, 2.0]), 0.05) is None
    with pytest.raises(InvalidArgumentError):
        universal_log_evalues(np.zeros(3), np.zeros(2))
    with pytest.raises(InvalidArgumentError):
        EProcess("p", "b").update([np.nan], 0.0)
    with pytest.raises(InvalidArgumentError):
        first_rejection(log_e, 1.5)

    high = math.log(2 / 0.05) + 0.1

    def at(x: float) -> EProcess:
        return EProcess("a", "b").update([x], 0.0)

    procs = {("p1", "base"): at(high), ("p1", "null"): at(high), ("base", "p1"): at(0.0)}
    dec = sequential_decision(procs, "base", ["p1", "p2"], alpha=0.05)
    assert (dec.verdict, dec.proxy) == ("proxy", "p1")
    assert dec.threshold == pytest.approx(math.log(2 / 0.05))
    procs = {("base", "p1"): at(high), ("base", "p2"): at(high), ("base", "null"): at(high)}
    assert sequential_decision(procs, "base", ["p1", "p2"]).verdict == "aligned"
    procs[("base", "p2")] = at(high - 0.2)  # below K / alpha: not yet
    assert sequential_decision(procs, "base", ["p1", "p2"]).verdict is None


# ----------------------------------------------------------------------------- chooser


def test_chooser_is_deterministic_under_a_seed_and_diversifies() -> None:
    rng = np.random.default_rng(0)
    ev = rng.random(50)
    a = choose_levels(ev, k=8, rng=3, explore=0.3)
    b = choose_levels(ev, k=8, rng=3, explore=0.3)
    np.testing.assert_array_equal(a.levels, b.levels)
    np.testing.assert_array_equal(a.explored, b.explored)
    assert len(set(a.levels.tolist())) == 8
    runs = {tuple(choose_levels(ev, k=8, rng=s, explore=0.3).levels) for s in range(10)}
    assert len(runs) > 1  # exploration depends on the seed
    greedy = choose_levels(ev, k=3, rng=0, explore=0.0)
    np.testing.assert_array_equal(greedy.levels, np.argsort(-ev)[:3])
    # Repeats are discounted: the best level, used 3 times, gives way to the runner-up...
    ev2 = np.array([1.0, 0.9, 0.1])
    counts = np.array([3.0, 0.0, 0.0])
    assert choose_levels(ev2, counts=counts, explore=0.0).levels[0] == 1
    # ... and a sequential loop never settles on one level.
    counts = np.zeros(3)
    for i in range(30):
        counts[choose_levels(ev2, counts=counts, explore=0.0, rng=i).levels[0]] += 1
    assert counts[0] < 30 and counts[1] > 5
    # Ties are broken by the seed, reproducibly.
    flat = np.ones(20)
    assert choose_levels(flat, rng=1).levels[0] == choose_levels(flat, rng=1).levels[0]
    assert len({int(choose_levels(flat, rng=s, explore=0.0).levels[0]) for s in range(10)}) > 1
    for bad in (dict(k=0), dict(k=51), dict(repeat_discount=0.0), dict(explore=2.0)):
        with pytest.raises(InvalidArgumentError):
            choose_levels(ev, **bad)
    with pytest.raises(InvalidArgumentError):
        choose_levels(np.array([0.1, -1.0]))


def test_expected_evidence_weights_and_decided_tests() -> None:
    models = red_levels("deploy", 5) + red_levels("train", 5)
    base = Hypothesis("exit", beta=4.0)
    proxy = Hypothesis("red_door", beta=4.0)
    null = Hypothesis(None, living_reward=0.0)
    ev = expected_evidence(models, base, [proxy], null)
    np.testing.assert_allclose(ev.weights, [0.5, 0.5])
    assert np.all(ev.expected[5:] == 0) and np.all(ev.expected[:5] > 0)
    table = ev.table()
    assert {
        "expected",
        "ev[exit]",
        "rival[red_door]",
        "kl[exit||red_door]",
        "regret[red_door,exit]",
    } <= set(table)
    # The evidence for "exit" is its slowest test; with that one decided it is the other.
    rivals = set(table["rival[exit]"][:5])
    assert rivals <= {"red_door", "red_door~exit", "null", "null~exit"}
    done = {("exit", "null")}
    ev_done = expected_evidence(models, base, [proxy], null, done=done)
    assert np.all(ev_done.per_candidate[:, 0] >= ev.per_candidate[:, 0] - 1e-12)
    assert not any(str(r).startswith("null") for r in ev_done.table()["rival[exit]"][:5])
    # Posterior weights: a candidate far behind in likelihood gets the floor.
    w = expected_evidence(
        models, base, [proxy], null, log_likelihoods={"exit": 0.0, "red_door": -50.0}
    ).weights
    assert w[0] > 0.9 and w[1] == pytest.approx(0.05 / 1.05)
    with pytest.raises(InvalidArgumentError):
        expected_evidence(models, base, [], null)
    with pytest.raises(InvalidArgumentError):
        expected_evidence(models, base, [proxy], null, log_likelihoods={"exit": 0.0})


# ----------------------------------------------------------------------------- benchmark


def test_design_speed_benchmark_quick() -> None:
    script = ROOT / "analyses" / "benchmarks" / "design_speed.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    m = re.search(
        r"stacked kernel:\s+([\d,]+) levels/s .*per-level numpy loop:\s+([\d,.]+) levels/s .*ratio\s+([\d.]+)x",
        out,
        re.S,
    )
    assert m, out
    assert float(m.group(3)) > 1
    assert re.search(r"levels generated per second .*RedDoors.*[\d,]+ levels/s", out, re.S)
    assert "max |kernel - reference|" in out


def test_a_split_source_keeps_the_observation_wrappers_or_says_why_it_cannot() -> None:
    """A split name re-makes the env from its id: the library's own observation wrappers
    are re-applied (the policy sees what it was trained on); a wrapper it cannot re-apply
    is refused, with the way out (a callable source), rather than silently dropped."""
    from gymnasium.wrappers import TransformObservation

    from behavioral.design.sources import split_env
    from behavioral.minigrid import flat_observations

    corner = flat_observations(gym.make("behavioral/MiniGridCorner-v0", split="train"))
    made = split_env(corner, "deploy")
    assert made.observation_space == corner.observation_space
    assert made.unwrapped.split == "deploy"
    odd = TransformObservation(gym.make("behavioral/RedDoors-v0", split="train"), lambda o: o)
    with pytest.raises(InvalidArgumentError, match="callable"):
        level_pool("deploy", odd, n=2, rng=0)
