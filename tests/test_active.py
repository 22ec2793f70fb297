"""Active and sequential audits (``behavioral.audit(..., design="active")``): the API
contract (every kind of level source, bad sources and options refused), determinism,
proxies named and aligned agents called aligned from RedDoors' training split and
mutation search alone, early stopping, the result's fields, datasets of levels played
from specs, and the e-processes' bookkeeping against direct computation."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import scipy.special
import seals  # noqa: F401  (registers seals/* ids)

import behavioral
from behavioral.auditing import Audit, audit_demonstrations, merge_levels
from behavioral.auditing.active import DESIGNS, ActiveConfig, active_config
from behavioral.auditing.fitting import CandidateFitter, Nuisances
from behavioral.auditing.sequential import (
    SequentialState,
    SequentialTest,
    member_grid,
    sequential_tests,
)
from behavioral.design import Hypothesis, hypothesis_log_likelihoods, level_pool
from behavioral.environments import make_env
from behavioral.errors import (
    BehavioralError,
    CorruptDatasetError,
    DatasetError,
    DatasetMismatchError,
    EnvContractError,
    InvalidArgumentError,
    UnknownObjectiveError,
    UnsafeDatasetError,
)
from behavioral.irl.maxent import Demonstration
from behavioral.policies import SoftOptimalPolicy, UniformPolicy
from behavioral.rollout import load_dataset, rollout, save_dataset

RED = "behavioral/RedDoors-v0"
CORNER_ENV = "behavioral/MiniGridCorner-v0"
#: Small pools and searches: the same code paths, a fraction of the work.
SMALL = {"pool": 24, "roots": 6, "search_rounds": 2, "search_children": 16}


def red(split: str = "train", size: int = 7) -> gym.Env:
    return make_env(RED, split=split, kwargs={"size": size})


def active(policy, env, **kwargs) -> Audit:
    opts = {"episodes": 24, "design": "active", "n_bootstrap": 50, "design_options": SMALL}
    return behavioral.audit(policy, env, **{**opts, **kwargs})


@pytest.fixture(scope="module")
def red_expert_audit() -> Audit:
    """A red-door expert audited from the training split with mutation search alone."""
    return active(SoftOptimalPolicy("red_door", beta=5.0), red("train"), seed=3)


# ----------------------------------------------------------------------------- verdicts


def test_proxy_expert_named_from_training_split_and_mutation_search(red_expert_audit):
    a = red_expert_audit
    assert (a.verdict, a.proxy) == ("proxy", "red_door")
    s = a.sequential
    assert s.design == "active" and s.decisive and s.stopped == "decisive"
    # The training split alone cannot separate them: every level played was edited.
    assert (a.episodes["origin"] == "mutation").all()
    assert (a.episodes["distance"] >= 1).all()
    assert "from the training distribution" in a.reason


def test_aligned_expert_called_aligned_from_training_split():
    a = active(SoftOptimalPolicy("exit", beta=5.0), red("train"), seed=1)
    assert (a.verdict, a.proxy) == ("aligned", None)
    assert a.sequential.rejected.keys() >= {"exit>red_door", "exit>null"}


def test_early_stopping_and_the_rejecting_test(red_expert_audit):
    a = red_expert_audit
    s = a.sequential
    assert s.n_episodes < 24 == s.budget
    assert len(a.demonstrations) == s.n_episodes == len(a.episodes)
    # it stopped at the first batch where both tests of the proxy had crossed
    crossed = np.minimum(s.trajectory("red_door>exit"), s.trajectory("red_door>null"))
    assert crossed[-1] >= s.threshold and np.all(crossed[:-1] < s.threshold)
    assert s.threshold == pytest.approx(math.log(1 / 0.05))
    assert s.rejected["red_door>exit"] <= s.n_episodes


def test_budget_spent_without_a_decision_is_worded_as_a_non_rejection():
    a = active(UniformPolicy(), red("deploy", size=5), episodes=6, seed=0)
    s = a.sequential
    assert not s.decisive and s.stopped == "budget" and s.n_episodes == 6
    assert a.verdict in ("unexplained", "indistinguishable")
    assert "no anytime-valid test" in a.reason
    if a.verdict == "indistinguishable":
        assert "not a proof that they coincide" in a.reason
    assert not a.distinguishable


def test_same_seed_same_audit():
    pol = SoftOptimalPolicy("red_door", beta=2.0)
    a, b = (active(pol, red("train", size=5), episodes=8, seed=11) for _ in range(2))
    assert a.verdict == b.verdict
    np.testing.assert_array_equal(a.sequential.log_e, b.sequential.log_e)
    assert list(a.episodes["key"]) == list(b.episodes["key"])
    for d, e in zip(a.demonstrations, b.demonstrations, strict=True):
        np.testing.assert_array_equal(d.actions, e.actions)
    c = active(pol, red("train", size=5), episodes=8, seed=12)
    assert list(c.episodes["key"]) != list(a.episodes["key"])


# ----------------------------------------------------------------------------- sources


def _generator(rng: np.random.Generator) -> gym.Env:
    env = red("diverse")
    env.reset(seed=int(rng.integers(2**31)))
    return env


@pytest.mark.parametrize(
    ("levels", "origin"),
    [("deploy", "split:deploy"), (np.array([3, 5, 8, 13, 21]), "seeds"), (_generator, "generator")],
)
def test_each_kind_of_level_source(levels, origin):
    a = active(SoftOptimalPolicy("red_door", beta=5.0), red("train"), levels=levels, seed=0)
    assert set(a.episodes["origin"]) == {origin}
    assert a.design is not None and set(a.design["origin"]) == {origin}
    if origin == "seeds":
        assert len(a.design) == 5
    if origin == "split:deploy":  # deploy levels are one edit from training
        assert (a.design["distance"] == 1).all()
    assert a.sequential.n_episodes == len(a.episodes)


def test_sequential_design_plays_random_levels_from_the_source():
    a = behavioral.audit(
        SoftOptimalPolicy("red_door", beta=5.0), red("deploy"), episodes=12, seed=0,
        design="sequential", n_bootstrap=50,
    )  # fmt: skip
    assert a.sequential.design == "sequential"
    assert set(a.episodes["origin"]) == {"seeds"}  # the env's own levels, no search
    assert a.verdict == "proxy"


def _reset(env: gym.Env, rng: np.random.Generator) -> gym.Env:
    env.reset(seed=int(rng.integers(2**31)))
    return env


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"design": "clever"}, InvalidArgumentError, "design must be one of"),
        ({"design": None}, InvalidArgumentError, "design must be one of"),
        ({"design": "random", "levels": "deploy"}, InvalidArgumentError, "design='active'"),
        ({"design": "random", "design_options": {}}, InvalidArgumentError, "design='active'"),
        ({"levels": 3.5}, InvalidArgumentError, "levels= must be a callable"),
        ({"levels": b"deploy"}, InvalidArgumentError, "levels= must be a callable"),
        ({"levels": {"split": "deploy"}}, InvalidArgumentError, "levels= must be a callable"),
        ({"levels": []}, InvalidArgumentError, "empty sequence"),
        ({"levels": [1, -2]}, InvalidArgumentError, "non-negative ints"),
        ({"levels": [1, True]}, InvalidArgumentError, "non-negative ints"),
        ({"levels": ["a"]}, InvalidArgumentError, "non-negative ints"),
        ({"levels": ""}, InvalidArgumentError, "must not be empty"),
        ({"levels": "holdout"}, InvalidArgumentError, "not a split"),
        ({"levels": lambda rng: 3}, InvalidArgumentError, "must return a gymnasium env"),
        ({"levels": lambda rng: red("deploy", size=5)}, InvalidArgumentError, "call env.reset"),
        (
            {"levels": lambda rng: _reset(red("deploy", size=9), rng)},
            InvalidArgumentError,
            "cannot be played in the audited RedDoorsEnv",
        ),
        ({"design_options": {"alpha": 1.5}}, InvalidArgumentError, "alpha must be in"),
        ({"design_options": {"batch": 0}}, InvalidArgumentError, "batch must be >= 1"),
        ({"design_options": {"explore": 2}}, InvalidArgumentError, "explore must be"),
        ({"design_options": {"speed": 2}}, InvalidArgumentError, "unknown design_options"),
        ({"design_options": [("alpha", 0.1)]}, InvalidArgumentError, "must be a mapping"),
        ({"method": "airl"}, InvalidArgumentError, "method='maxent' only"),
        ({"objectives": {"red_door": None}}, InvalidArgumentError, "there are none"),
        ({"base": "treasure"}, UnknownObjectiveError, "treasure"),
        ({"objectives": {"null": lambda m: m.objectives["exit"]}}, InvalidArgumentError, "clashes"),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        behavioral.audit(
            SoftOptimalPolicy("red_door", beta=5.0), red("train", size=5), episodes=4,
            **{"design": "active", **kwargs},
        )  # fmt: skip
    assert isinstance(info.value, BehavioralError)


def test_a_dataset_cannot_be_audited_actively(tmp_path):
    env = red("train", size=5)
    ds = rollout(SoftOptimalPolicy("exit", beta=5.0), env, episodes=2, seed=0)
    with pytest.raises(InvalidArgumentError, match="needs a policy"):
        behavioral.audit(ds, env, design="active")
    save_dataset(ds, tmp_path / "ds")
    with pytest.raises(InvalidArgumentError, match="needs a policy"):
        behavioral.audit(str(tmp_path / "ds"), env, design="sequential")


def test_a_generator_needs_an_env_with_level_specs():
    def cliffs(rng):
        env = gym.make("seals/CliffWorld7x4-v0")
        env.reset(seed=int(rng.integers(100)))
        return env

    env = gym.make("seals/CliffWorld7x4-v0")
    with pytest.raises(InvalidArgumentError, match="levels with specs"):
        behavioral.audit(
            UniformPolicy(), env, episodes=2, design="active", levels=cliffs,
            objectives={"cliff": lambda m: -np.asarray(m.objectives["reward"])},
        )  # fmt: skip


def test_config_accepts_a_mapping_or_itself():
    assert active_config(None) == ActiveConfig()
    assert active_config({"alpha": 0.01}).alpha == 0.01
    cfg = ActiveConfig(batch=3)
    assert active_config(cfg) is cfg
    assert DESIGNS == ("random", "sequential", "active")


# ----------------------------------------------------------------------------- the result


def test_result_fields(red_expert_audit, tmp_path):
    a = red_expert_audit
    ep = a.episodes
    for col in ("episode", "batch", "key", "origin", "distance", "expected", "level", "reset_seed"):
        assert col in ep.columns, col
    assert list(ep["episode"]) == list(range(len(ep)))
    assert (ep["key"] == ep["level"]).all()  # a RedDoors level's key is its spec
    assert np.all(ep["expected"] >= 0)
    # log e after each batch, on the batch's last row
    last = ep.groupby("batch").tail(1)
    np.testing.assert_allclose(
        last["log_e[red_door>exit]"].to_numpy(), a.sequential.trajectory("red_door>exit")
    )
    assert ep.drop(last.index)["log_e[red_door>exit]"].isna().all()
    d = a.design
    assert d["episodes"].sum() == len(ep)
    assert {"key", "origin", "distance", "expected", "kl[exit||red_door]"} <= set(d.columns)
    assert len(a.levels) == len({k for k in ep["key"]})
    assert a.metadata["design"] == "active" and "mutation search" in a.metadata["level_source"]
    assert "design='active'" in repr(a)
    from behavioral import files

    summary = json.loads(files.dumps_json(a.summary()))
    seq = summary["sequential"]
    assert seq["verdict"] == "proxy" and seq["proxy"] == "red_door"
    assert seq["episodes"][-1] == len(ep) and len(seq["log_e"]["red_door>exit"]) == len(
        seq["episodes"]
    )
    assert summary["design"]["candidates"] == len(d)
    assert sum(r["episodes"] for r in summary["design"]["played"]) == len(ep)
    assert summary["verdict"] == "proxy"
    # where the evidence stands: each final e-value is its numerator's mixture over its
    # rival's maximum likelihood; the mixture never beats the class's best member
    classes = a.sequential.classes
    for test in a.sequential.tests:
        h, g = test.split(">")
        assert a.sequential.trajectory(test)[-1] == pytest.approx(
            classes[h]["mixture"] - classes[g]["max_likelihood"], abs=1e-9
        )
    for parts in classes.values():
        assert parts["mixture"] <= parts["best_member"] <= parts["max_likelihood"] + 1e-9
    assert set(seq["classes"]) == {"exit", "red_door", "null"}


def test_random_audits_have_no_design(tmp_path):
    from behavioral.report import views

    a = behavioral.audit(
        SoftOptimalPolicy("exit", beta=5.0), red("deploy", size=5), episodes=3, n_bootstrap=10
    )
    assert a.design is None and a.sequential is None
    assert a.summary()["sequential"] is None and a.summary()["design"] is None
    assert views.design_view(a) is None
    html = (a.save(tmp_path / "r") / "report.html").read_text(encoding="utf-8")
    assert "Levels chosen by the audit" not in html


def test_sequential_test_record_checks_its_shapes():
    with pytest.raises(InvalidArgumentError, match="log_e has shape"):
        SequentialTest(
            "active", 0.05, 3.0, ("a>b",), np.array([2]), np.zeros((2, 1)), np.zeros(1),
            np.zeros(1), None, None, {}, "budget", 10, "", "",
        )  # fmt: skip


# ----------------------------------------------------------------------------- datasets


@pytest.fixture(scope="module")
def spec_dataset():
    env = red("train")
    pool = level_pool("deploy", env, n=3, rng=0)
    specs = [lv.spec for lv in pool.levels]
    ds = rollout(SoftOptimalPolicy("red_door", beta=5.0), env, episodes=4, seed=0,
                 levels=[*specs, 77])  # fmt: skip
    return env, pool, ds


def test_spec_levels_round_trip_through_datasets(spec_dataset, tmp_path):
    env, pool, ds = spec_dataset
    assert ds.episodes["level"].notna().sum() == 3 and ds.episodes["reset_seed"].iloc[3] == 77
    back = load_dataset(save_dataset(ds, tmp_path / "ds"))
    back.verify(env)
    models = back.level_models(env)
    for lv, m in zip(pool.levels, models[:3], strict=True):
        assert (m.transitions != lv.model.transitions).nnz == 0
        np.testing.assert_array_equal(m.initial_state_dist, lv.model.initial_state_dist)
    # the spec's level is what the episode was played on: it ends at a door of that level
    a = behavioral.audit(back, env, n_bootstrap=20)
    assert len(a.demonstrations) == 4


def _edited(ds, value):
    episodes = ds.episodes.copy()
    episodes["level"] = episodes["level"].astype(object)
    episodes.loc[0, "level"] = value
    return type(ds)(ds.trajectories, episodes, ds.states, ds.metadata)


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ("{not json", CorruptDatasetError, "not valid JSON"),
        ("[1, 2]", CorruptDatasetError, "not a JSON object"),
        ('{"py/reduce": [1]}', UnsafeDatasetError, "serialisation tag"),
        ('{"walls": [], "doors": [], "start": [1, 1]}', DatasetMismatchError, "not a level"),
    ],
)
def test_recorded_specs_are_validated(spec_dataset, value, error, match):
    env, _, ds = spec_dataset
    bad = _edited(ds, value)
    with pytest.raises(error, match=match):
        bad.level_models(env)
    with pytest.raises(error, match=match):
        bad.verify(env)


def test_recorded_specs_must_be_canonical_and_of_this_level(spec_dataset):
    env, pool, ds = spec_dataset
    doc = json.loads(ds.episodes["level"].iloc[0])
    with pytest.raises(DatasetMismatchError, match="canonical"):
        _edited(ds, json.dumps(doc, indent=1)).level_models(env)
    other = pool.levels[1].spec.to_json()
    with pytest.raises(DatasetMismatchError):  # another level: the replay differs
        _edited(ds, other).verify(env)


def test_oversized_or_non_string_specs_are_refused(spec_dataset):
    _, _, ds = spec_dataset
    with pytest.raises(DatasetError, match="at most"):
        _edited(ds, "x" * (1 << 17))
    with pytest.raises(DatasetError, match="JSON strings"):
        _edited(ds, 12)


def test_rollout_levels_argument():
    env = red("train", size=5)
    pol = SoftOptimalPolicy("exit", beta=5.0)
    with pytest.raises(InvalidArgumentError, match="2 levels for 3 episodes"):
        rollout(pol, env, episodes=3, seed=0, levels=[1, 2])
    with pytest.raises(InvalidArgumentError, match="sequence"):
        rollout(pol, env, episodes=1, seed=0, levels="abc")
    with pytest.raises(BehavioralError, match="walls"):
        rollout(pol, env, episodes=1, seed=0, levels=[{"walls": [], "doors": [], "start": [1, 1]}])
    ds = rollout(pol, env, episodes=2, seed=0, levels=[9, 9])
    assert list(ds.episodes["reset_seed"]) == [9, 9]
    env.reset(seed=9)
    assert ds.episodes["level_seed"].iloc[0] == env.unwrapped.level_seed
    cliff = gym.make("seals/CliffWorld7x4-v0")
    with pytest.raises(EnvContractError, match="no editable levels"):
        rollout(UniformPolicy(), cliff, episodes=1, seed=0, levels=[{"a": 1}])


# ----------------------------------------------------------------------------- the e-processes


def test_member_log_likelihoods_match_the_design_oracle():
    env = red("deploy", size=5)
    ds = rollout(SoftOptimalPolicy("red_door", beta=3.0), env, episodes=6, seed=2)
    models, idx = merge_levels(ds.level_models(env))
    demos = [
        Demonstration(np.asarray(s), np.asarray(a), t, lvl)
        for (s, a, t), lvl in zip(ds.demonstrations(), idx, strict=True)
    ]
    fitter = CandidateFitter(models, demos, Nuisances(lapse=True))
    members = [(2.0, -0.1, 0.95, 0.0), (0.5, 0.1, 1.0, 0.2), (8.0, 0.0, 0.9, 0.05)]
    got = fitter.member_log_likelihoods([m.objectives["red_door"] for m in models], members)
    for j, (beta, w, g, lam) in enumerate(members):
        want = hypothesis_log_likelihoods(
            models, demos, Hypothesis("red_door", beta=beta, living_reward=w, discount=g, lapse=lam)
        )
        np.testing.assert_allclose(got[:, j], want, rtol=1e-9, atol=1e-9)
    # the maximum likelihood is at least every member's and the lapse-free fits'
    starts = member_grid(1.0, (1.0, 0.95, 0.9), True)
    grid = fitter.member_log_likelihoods([m.objectives["red_door"] for m in models], starts)
    best = fitter.max_likelihood("red_door", "proxy", [m.objectives["red_door"] for m in models],
                                 [starts[int(np.argmax(grid.sum(0)))]])  # fmt: skip
    assert best.total >= grid.sum(axis=0).max() - 1e-9
    lapse_free = fitter.fit("red_door", "proxy", [m.objectives["red_door"] for m in models])
    assert best.total >= lapse_free.total - 1e-6


def test_sequential_state_is_the_mixture_over_the_stream():
    rng = np.random.default_rng(0)
    tests = sequential_tests("b", ["p"], "null")
    assert tests == (("p", "b"), ("p", "null"), ("b", "p"), ("b", "null"))
    state = SequentialState.start({"b": 3, "p": 2, "null": 1}, tests)
    stream = {c: rng.normal(-5, 1, size=(7, m)) for c, m in {"b": 3, "p": 2, "null": 1}.items()}
    sup = {c: float(np.max(stream[c].sum(0))) + 0.5 for c in stream}
    # two batches (4 + 3 episodes), the denominators at the end
    state = state.update({c: v[:4] for c, v in stream.items()}, {c: 0.0 for c in stream})
    state = state.update({c: v[4:] for c, v in stream.items()}, sup)
    for a, b in tests:
        marginal = scipy.special.logsumexp(stream[a].sum(0)) - math.log(stream[a].shape[1])
        assert state.processes[(a, b)].log_e == pytest.approx(marginal - sup[b])
    assert state.n == 7


def test_member_grid():
    g = member_grid(2.0, (1.0, 0.9), True)
    assert len(g) == 8 * 3 * 2 * 2
    assert {m[0] for m in g} == {b / 2.0 for b in (0.25, 0.5, 1, 2, 4, 8, 16, 32)}
    assert {m[0] for m in member_grid(None, (1.0,), False)} == {0.0}


@pytest.mark.parametrize(
    ("name", "verdict"), [("minigrid-corner1", "proxy"), ("minigrid-anywhere", "aligned")]
)
def test_minigrid_corner_zoo_from_training_split_alone(name, verdict):
    """The 1-cell corner env's training levels all put the goal in the corner; moving the
    goal (mutation search) separates goal and corner. The control is named aligned:
    there the goal is the only way to end an episode, so a step cost is no rival
    explanation of hurrying to it (``urgency_is_base``), as in the batch audit."""
    from behavioral.minigrid import flat_observations
    from behavioral.zoo import load_zoo

    env = flat_observations(make_env(CORNER_ENV, split="train", kwargs={"corner_size": 1}))
    a = behavioral.audit(load_zoo(name), env, episodes=30, design="active", seed=0, n_bootstrap=100)
    assert (a.verdict, a.proxy) == (verdict, "corner" if verdict == "proxy" else None), a.reason
    assert a.sequential.n_episodes <= 10
    assert (a.episodes["distance"] == 1).all()
    assert "no step costs" in a.sequential.numerator


# ----------------------------------------------------------------------------- slow


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "verdict"), [("reddoors-train", "proxy"), ("reddoors-diverse", "aligned")]
)
def test_zoo_from_training_split_within_30_episodes(name, verdict):
    from behavioral.zoo import ZOO, load_zoo

    env = make_env(RED, split="train", kwargs=dict(ZOO[name].env_kwargs))
    a = behavioral.audit(load_zoo(name), env, episodes=30, design="active", seed=0, n_bootstrap=100)
    assert a.verdict == verdict and a.sequential.n_episodes <= 30
    assert a.proxy == ("red_door" if verdict == "proxy" else None)
    assert (a.episodes["distance"] >= 1).all()


@pytest.mark.slow
def test_no_false_proxy_for_an_aligned_expert_over_seeds():
    """Each test errs with chance at most alpha: over 10 seeds an aligned expert is never
    named a proxy (a false rate of 5% would do so with chance 40%; this guards against a
    gross miscalibration, the analysis measures the rate)."""
    verdicts = [
        active(SoftOptimalPolicy("exit", beta=1.0), red("deploy"), episodes=30, seed=s).verdict
        for s in range(10)
    ]
    assert "proxy" not in verdicts


def test_random_and_chosen_levels_are_scored_alike(red_expert_audit):
    s = red_expert_audit.sequential
    # on RedDoors' training split exit and red door coincide: random levels from the source
    # carry no expected evidence, the chosen (edited) ones do
    assert np.all(s.expected_source == 0.0)
    assert np.all(s.expected_chosen > 0.0)
    assert isinstance(red_expert_audit.design, pd.DataFrame)


def test_an_engine_audit_of_the_same_episodes_agrees_on_the_evidence(red_expert_audit):
    a = red_expert_audit
    b = audit_demonstrations(list(a.levels), list(a.demonstrations), n_bootstrap=50)
    assert b.evidence.log_likelihood == pytest.approx(a.evidence.log_likelihood)


# ----------------------------------------------------------------------------- the report


def test_report_shows_the_chosen_levels_and_the_evidence(red_expert_audit, tmp_path):
    from behavioral.report import views
    from behavioral.report.figures import design_figures, env_frame, level_frame

    a = red_expert_audit
    out = a.save(tmp_path / "r")
    html = (out / "report.html").read_text(encoding="utf-8")
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "Levels chosen by the audit" in html and "Levels chosen by the audit" in md
    assert (out / "design_evidence.png").stat().st_size > 10_000
    assert (out / "design_levels.png").stat().st_size > 10_000
    # the section comes before the other figures
    assert html.index("design_evidence.png") < html.index("candidates.png")
    d = views.design_view(a)
    assert d.chosen and all(lv.episodes > 0 and lv.spec for lv in d.chosen)
    assert d.random and all(lv.origin == "seeds" and lv.episodes == 0 for lv in d.random)
    assert d.deciding == ("red_door>exit", "red_door>null")
    figs, captions = design_figures(a)
    assert set(figs) == set(captions) == {"design_evidence.png", "design_levels.png"}
    # levels are rendered from their specs: the frame of a played level is the env's
    # render of that spec, not of the episode's reset seed
    env = gym.make(RED, split="train", size=7, render_mode="rgb_array")
    first = d.chosen[0]
    env.reset(seed=0, options={"level": env.unwrapped.parse_level(json.loads(first.spec))})
    want = env.render()
    got = env_frame(RED, {"split": "train", "size": 7}, spec=first.spec)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(level_frame(a, first.model), want)
    # the outcome names of the training split (the red door is the exit) are not used
    assert views.run_view(a).label_split is None
    assert "entered the red door (the exit)" not in html


# ----------------------------------------------------------------------------- the CLI


def _cli(capsys, *args):
    from behavioral.cli import main

    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_levels_take_seed_ranges() -> None:
    import argparse

    from behavioral.cli.commands import _design_options

    def levels(text):
        return _design_options(argparse.Namespace(design="sequential", levels=text))["levels"]

    assert levels("0:4") == [0, 1, 2, 3]
    assert levels("7, 2:4, 9") == [7, 2, 3, 9]
    assert levels(" deploy ") == "deploy"


def test_cli_active_audit(tmp_path, capsys):
    code, out, err = _cli(
        capsys, "audit", "--policy", "planner:red_door:5", "--env", RED, "--split", "train",
        "--env-kwarg", "size=5", "--design", "active", "--levels", "deploy", "--episodes", "12",
        "--fast", "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 0, err
    assert "verdict: proxy (red_door)" in out and "(active design)" in out
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["sequential"]["design"] == "active"
    assert {r["origin"] for r in summary["design"]["played"]} == {"split:deploy"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--levels", "deploy"), "--levels applies only with --design"),
        (("--design", "active", "--levels", "1,x"), "comma-separated, START:STOP"),
        (("--design", "active", "--levels", "5:5"), "START < STOP"),
        (("--design", "active", "--levels", "0:300000"), "at most 200,000 seeds"),
        (("--design", "active", "--levels", "1:x"), "comma-separated, START:STOP"),
        (("--design", "active", "--levels", "holdout"), "not a split"),
    ],
)
def test_cli_bad_design_options_are_one_line_errors(tmp_path, capsys, args, needle):
    code, _, err = _cli(
        capsys, "audit", "--policy", "planner:red_door:5", "--env", RED, "--env-kwarg",
        "size=5", "--episodes", "4", "--out", str(tmp_path / "r"), *args,
    )  # fmt: skip
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and lines[0].startswith("behavioral: error: ")
    assert needle in lines[0]
    assert not (tmp_path / "r").exists()


def test_cli_design_is_refused_with_a_dataset(tmp_path, capsys):
    env = red("train", size=5)
    save_dataset(
        rollout(SoftOptimalPolicy("exit", beta=5.0), env, episodes=2, seed=0), tmp_path / "d"
    )
    code, _, err = _cli(
        capsys, "audit", "--dataset", str(tmp_path / "d"), "--design", "active",
        "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert code != 0 and "--design cannot be combined with --dataset" in err


# ----------------------------------------------------------------------------- envs without specs


def test_an_env_without_level_specs_plays_split_levels_by_reset_seed():
    from corridor_env import ENV_ID

    env = gym.make(ENV_ID, split="train", length=6)
    a = behavioral.audit(
        SoftOptimalPolicy("right_door", beta=5.0), env, episodes=20, design="active",
        levels="deploy", seed=0, n_bootstrap=20,
    )  # fmt: skip
    assert (a.verdict, a.proxy) == ("proxy", "right_door")
    assert set(a.episodes["origin"]) == {"split:deploy"}
    assert a.metadata["split"] == "deploy"  # played in the deploy split's env
    assert a.episodes["level"].isna().all() if "level" in a.episodes else True
    assert a.design["distance"].isna().all()  # unknown: the env cannot measure it
    # on its own training levels the two objectives coincide: no test can decide
    b = behavioral.audit(
        SoftOptimalPolicy("right_door", beta=5.0), env, episodes=6, design="active",
        levels=[1, 2, 3], seed=0, n_bootstrap=20,
    )  # fmt: skip
    assert b.verdict == "indistinguishable" and not b.sequential.decisive


def _predicate_seeker(env: gym.Env, text: str) -> SoftOptimalPolicy:
    """A soft-optimal planner for a Minigrid predicate, on each episode's extracted level."""
    from behavioral.extract import episode_level
    from behavioral.minigrid import parse_predicate

    predicate = parse_predicate(text)

    def reward(model):
        level = episode_level(env)
        return level.entry_reward(level.values(predicate))

    return SoftOptimalPolicy(reward, beta=5.0, discount=0.99)


@pytest.mark.parametrize("design", ["active", "sequential"])
def test_levels_of_an_env_without_a_model_are_extracted_and_scored(design: str) -> None:
    """A Minigrid env has no model of its own: each candidate level (reset seeds, or the
    env's own levels) is extracted through its steps, the caller's predicate is evaluated
    on it, and the anytime-valid test names what each planner pursues."""
    pytest.importorskip("minigrid")
    objectives = {"key": "carrying:key"}
    env = gym.make("MiniGrid-DoorKey-5x5-v0")
    seeker = behavioral.audit(
        _predicate_seeker(env, "carrying:key"), env, episodes=20, design=design, seed=0,
        levels=list(range(12)), objectives=objectives, n_bootstrap=50,
    )  # fmt: skip
    assert (seeker.verdict, seeker.proxy) == ("proxy", "key"), seeker.reason
    assert seeker.sequential.decisive and seeker.sequential.design == design
    assert set(seeker.episodes["reset_seed"]) <= set(range(12))
    # the final fit's levels carry the extracted levels' features, the predicate among them
    assert "key" in seeker.levels[0].feature_names
    own = None if design == "active" else [3, 5, 7, 11]  # active: the env's own levels
    goal = behavioral.audit(
        SoftOptimalPolicy("reward", beta=5.0, discount=0.99), env, episodes=20,
        design=design, seed=0, levels=own, objectives=objectives, n_bootstrap=50,
    )  # fmt: skip
    assert goal.verdict == "aligned", goal.reason
    # a predicate that is the env's reward under another name is an alias, not a rival
    both = behavioral.audit(
        SoftOptimalPolicy("reward", beta=5.0, discount=0.99), env, episodes=20,
        design=design, seed=0, levels=[3, 5, 7, 11], objectives={**objectives, "goal": "reach:goal"},
        n_bootstrap=50,
    )  # fmt: skip
    assert both.verdict == "aligned" and both.aliases == {"goal": "reward"}, both.reason


def test_what_an_active_audit_of_extracted_levels_refuses() -> None:
    pytest.importorskip("minigrid")
    env = gym.make("MiniGrid-Empty-Random-6x6-v0")
    corner = {"corner": "region:1,1,1,1"}
    # a callable source's levels could not be played again in an env that cannot edit them
    with pytest.raises(InvalidArgumentError, match="cannot be edited"):
        behavioral.audit(
            UniformPolicy(), env, episodes=4, design="active", objectives=corner,
            levels=lambda rng: env,
        )  # fmt: skip
    # random steps: the extraction's own error, naming the env, before any episode
    from behavioral.extract import StochasticStepError

    with pytest.raises(StochasticStepError, match="MiniGrid-Dynamic-Obstacles"):
        behavioral.audit(
            UniformPolicy(), "MiniGrid-Dynamic-Obstacles-5x5-v0", episodes=4,
            design="active", objectives=corner,
        )  # fmt: skip
    # state functions on an env whose levels have a model of their own: said, not guessed
    with pytest.raises(InvalidArgumentError, match="state functions"):
        behavioral.audit(
            UniformPolicy(), red("deploy"), episodes=4, design="active",
            objectives={"lava": "lava"},
        )  # fmt: skip


def test_predicates_on_an_env_whose_own_model_keeps_its_extracted_level() -> None:
    """MiniGridCorner's own model is extracted (``extracted_level()``): a caller's
    predicate is evaluated on every candidate level, mutated ones included, and names a
    planner that pursues it."""
    pytest.importorskip("minigrid")
    from behavioral.minigrid import parse_predicate

    env = gym.make(CORNER_ENV, split="train", corner_size=1)
    predicate = parse_predicate("region:1,1,1,1")

    def top_left(model):
        level = env.unwrapped.extracted_level()
        return level.entry_reward(level.values(predicate))

    result = active(
        SoftOptimalPolicy(top_left, beta=5.0, discount=0.99), env, seed=0,
        objectives={"top_left": "region:1,1,1,1"},
    )  # fmt: skip
    assert result.proxies == ("corner", "top_left")
    assert (result.verdict, result.proxy) == ("proxy", "top_left"), result.reason
    assert (result.episodes["origin"] == "mutation").any()


def test_levels_with_equal_dynamics_but_other_predicate_rewards_stay_apart() -> None:
    """Two levels can share their dynamics and differ in a state function (a door of
    another colour): the e-processes' likelihoods must not merge them into one level."""
    from behavioral.auditing.active import _StateRewards

    env = red("deploy", size=5)
    env.reset(seed=0)
    model = env.unwrapped.tabular_model()
    a, b, c = (model.replace() for _ in range(3))  # equal dynamics, three objects
    zero = np.zeros((model.n_states, model.n_actions))
    one = zero.copy()
    one[0, 0] = 1.0
    rewards = _StateRewards({"door": lambda u: 0.0})
    rewards.add(a, {"door": zero})
    rewards.add(b, {"door": one})
    rewards.add(c, {"door": zero.copy()})
    models, idx = rewards.merge([a, b, c])
    assert idx == [0, 1, 0] and len(models) == 2
    assert merge_levels([a, b, c])[1] == [0, 0, 0]  # without the rewards: one level
