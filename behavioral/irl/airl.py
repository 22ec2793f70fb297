"""AIRL: the behavioural objective as imitation's adversarial IRL reward, per state.

Adversarial inverse RL (Fu, Luo & Levine 2018) trains a discriminator

.. math::

    D(s, a, s') = \\frac{\\exp f(s, a, s')}{\\exp f(s, a, s') + \\pi(a \\mid s)},
    \\qquad f(s, a, s') = g(s) + \\gamma\\, h(s') - h(s),

against a generator policy ``pi`` (PPO) that is trained on the discriminator's reward.
With a *state-only* reward ``g`` and the shaping discount ``gamma`` equal to the
generator's discount, ``g`` recovers the expert's reward up to a constant (the paper's
disentanglement result), and ``h`` absorbs the shaping. This module is the one adapter
to ``imitation.algorithms.adversarial.airl.AIRL``: it builds the generator's env, pads
the demonstrations to the fixed horizon imitation requires, trains, and evaluates the
learned ``g`` on every level's observation matrix (``model.observations``), so the
audit compares it with the candidate objectives exactly as it does a MaxEnt reward.

Fixed horizon. imitation's adversarial trainers refuse episodes of different lengths
(a termination leaks information about the reward). The tabular models already treat an
episode that ends early as an absorbing state held until the horizon, so we do the
same in the env (:class:`FixedHorizon`: after termination the final observation is
repeated with reward 0 until ``horizon`` steps) and in the demonstrations
(:func:`pad_trajectory`: the final observation repeated with uniformly random actions,
the maximum-entropy choice where every action is equivalent).

Randomness. imitation and stable-baselines3 draw from the global ``random``,
``numpy.random`` and ``torch`` generators (PPO's seeding, the replay buffer, the
demonstration loader's shuffling). :func:`airl_irl` seeds them from ``seed`` and
restores the caller's generator states afterwards; the generator's envs are seeded from
``numpy.random.default_rng(seed)``. On CPU the same seed gives the same reward.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from imitation.data.types import TrajectoryWithRew

from behavioral.errors import (
    EnvContractError,
    InvalidArgumentError,
    InvalidDemonstrationError,
    InvalidModelError,
)
from behavioral.irl.maxent import MaxEntObjective, RecoveredReward, _to_demo
from behavioral.tabular import TabularModel

__all__ = ["AIRLRecoveredReward", "FixedHorizon", "airl_irl", "pad_trajectory"]

#: PPO settings of the generator (overridable with ``ppo_kwargs``): small batches so
#: that a budget of a few ten thousand steps gives a few dozen adversarial rounds.
PPO_DEFAULTS: Mapping[str, Any] = {
    "n_steps": 128,
    "batch_size": 256,
    "n_epochs": 4,
    "learning_rate": 5e-4,
    "ent_coef": 0.01,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "policy_kwargs": {"net_arch": [64, 64]},
}


@dataclasses.dataclass(frozen=True, eq=False)
class AIRLRecoveredReward(RecoveredReward):
    """A state-only reward recovered by AIRL, evaluated per level.

    The inherited fields keep their meaning: ``rewards`` are the per-level (S,) arrays
    of the learned ``g`` on each level's ``model.observations``; ``feature_names`` is
    ``("airl_g",)`` with ``weights == [1.0]`` (the reward is ``1.0 * g``);
    ``iterations`` counts adversarial rounds; ``converged`` is always False (adversarial
    training has no convergence criterion); ``objective`` is the last discriminator
    loss; ``log_likelihood`` the mean per-episode log-likelihood of the demonstrated
    actions under the soft-optimal policy of ``g`` (temperature 1, the models' horizon
    and discount) and ``feature_gap`` the absolute difference between the
    demonstrations' and that policy's expected return in ``g``.

    Attributes:
        reward_net: the trained state-only reward network ``g`` (imitation
            ``BasicRewardNet``), for evaluating ``g`` on other observations.
        potentials: per level, (S,) values of the shaping potential ``h``.
        discount: the generator's discount, also used for the shaping.
        total_timesteps: generator environment steps.
        disc_stats: the last discriminator update's statistics (accuracy, loss, ...).
    """

    reward_net: Any = None
    potentials: tuple[np.ndarray, ...] = ()
    discount: float = 1.0
    total_timesteps: int = 0
    disc_stats: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def reward_for(self, model: TabularModel) -> np.ndarray:
        """``g`` on another level's model (its ``observations``), shape (S,)."""
        return _evaluate(self.reward_net, model)


class FixedHorizon(gym.Wrapper):
    """Hold an episode that ends early in its final observation until ``horizon`` steps.

    After the wrapped env terminates, each further step returns the final observation,
    reward 0 and ``info["padding"] = True`` without touching the wrapped env -- the
    absorbing state of the tabular model. Every episode lasts exactly ``horizon`` steps
    and then ends with ``terminated=True`` (a finite-horizon problem has nothing after
    its horizon).

    Raises:
        EnvContractError: the wrapped env truncates an episode before ``horizon``.
    """

    def __init__(self, env: gym.Env, horizon: int) -> None:
        super().__init__(env)
        if horizon < 1:
            raise InvalidArgumentError(f"horizon must be >= 1, got {horizon}")
        self.horizon = int(horizon)
        self._t = 0
        self._final_obs: Any = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._t = 0
        self._final_obs = None
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        self._t += 1
        end = self._t >= self.horizon
        if self._final_obs is not None:
            return self._final_obs, 0.0, end, False, {"padding": True}
        obs, reward, terminated, truncated, info = self.env.step(action)
        if truncated and not end and not terminated:
            raise EnvContractError(
                f"the env truncated an episode after {self._t} steps, before the model's "
                f"horizon {self.horizon}"
            )
        if terminated and not end:
            self._final_obs = obs
        return obs, float(reward), end, False, info


def pad_trajectory(
    traj: TrajectoryWithRew, horizon: int, rng: np.random.Generator, n_actions: int
) -> TrajectoryWithRew:
    """Pad an episode to ``horizon`` steps as :class:`FixedHorizon` pads the env.

    Args:
        traj: an episode with ``obs`` (L+1, *obs_shape), ``acts`` (L,), ``rews`` (L,).
        horizon: H >= L.
        rng: draws the padding actions (uniform over ``n_actions``).
        n_actions: A.

    Returns:
        A ``TrajectoryWithRew`` with obs (H+1, *obs_shape) (the last observation
        repeated), acts (H,), rews (H,) (zeros appended), ``infos=None`` and
        ``terminal=True`` (every episode ends at the horizon, as the padded env's do).

    Raises:
        InvalidDemonstrationError: the episode is longer than ``horizon``, or shorter
            without having terminated.
    """
    n = len(traj.acts)
    if n > horizon:
        raise InvalidDemonstrationError(
            f"an episode has {n} steps, more than the horizon {horizon}"
        )
    if n < horizon and not traj.terminal:
        raise InvalidDemonstrationError(
            f"an episode has {n} < horizon={horizon} steps but did not terminate"
        )
    pad = horizon - n
    obs = np.asarray(traj.obs)
    acts = np.asarray(traj.acts, dtype=np.int64)
    if pad:
        obs = np.concatenate([obs, np.repeat(obs[-1:], pad, axis=0)])
        acts = np.concatenate([acts, rng.integers(0, n_actions, size=pad)])
    rews = np.concatenate([np.asarray(traj.rews, dtype=np.float64), np.zeros(pad)])
    return TrajectoryWithRew(obs=obs, acts=acts, infos=None, terminal=True, rews=rews)


@contextlib.contextmanager
def _seeded_globals(seed: int, threads: int | None) -> Iterator[None]:
    """Seed Python's, numpy's and torch's global generators; restore them afterwards."""
    py_state = random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002 (SB3/imitation use it)
    n_threads = th.get_num_threads()
    with th.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002
        th.manual_seed(seed)
        if threads is not None:
            th.set_num_threads(threads)
        try:
            yield
        finally:
            th.set_num_threads(n_threads)
            random.setstate(py_state)
            np.random.set_state(np_state)  # noqa: NPY002


def _evaluate(net: Any, model: TabularModel, potential: bool = False) -> np.ndarray:
    """A state-only net (``g`` or the potential ``h``) on every state of ``model``, (S,)."""
    if model.observations is None:
        raise InvalidModelError(
            "the model has no observations (the observation the env emits in each state): "
            "AIRL's reward network cannot be evaluated state by state"
        )
    obs = np.asarray(model.observations)
    S = model.n_states
    with th.no_grad():
        if potential:
            x = th.tensor(obs, dtype=th.float32)  # a copy: model observations are read-only
            return net(x).numpy().astype(np.float64).reshape(S)
        acts = np.zeros(S, dtype=np.int64)
        done = np.zeros(S, dtype=bool)
        return np.asarray(net.predict(obs, acts, obs, done), dtype=np.float64).reshape(S)


def _env_spec(dataset: Any, env: gym.Env) -> tuple[str, dict[str, Any], tuple[str, ...]]:
    """(env id, kwargs, observation wrapper names) that re-make the dataset's env."""
    from behavioral.environments import observation_wrappers, recorded_wrappers

    meta = getattr(dataset, "metadata", {}) or {}
    env_id = meta.get("env_id") or (env.spec.id if env.spec is not None else None)
    if not env_id:
        raise EnvContractError(
            "AIRL trains a generator in copies of the env: the dataset records no env id "
            "and the env has no spec"
        )
    kwargs = dict(meta.get("env_kwargs") or {})
    if not meta.get("env_id") and env.spec is not None:
        kwargs = dict(env.spec.kwargs)
    kwargs.pop("render_mode", None)
    wrappers = recorded_wrappers(meta) if meta.get("env_id") else observation_wrappers(env)
    return str(env_id), kwargs, wrappers or ()


def airl_irl(
    dataset: Any,
    env: gym.Env,
    models: Sequence[TabularModel],
    levels: Sequence[int],
    *,
    seed: int,
    total_timesteps: int = 30_000,
    n_envs: int = 8,
    discount: float | None = None,
    demo_batch_size: int = 1024,
    n_disc_updates_per_round: int = 8,
    disc_lr: float = 1e-3,
    reward_hid_sizes: Sequence[int] = (32,),
    potential_hid_sizes: Sequence[int] = (32, 32),
    ppo_kwargs: Mapping[str, Any] | None = None,
    torch_threads: int | None = 1,
    progress_bar: bool = False,
) -> AIRLRecoveredReward:
    """Recover a state-only reward from a dataset with imitation's AIRL.

    Args:
        dataset: a :class:`behavioral.rollout.Dataset` whose trajectories hold the env's
            observations; its metadata's ``env_id`` / ``env_kwargs`` make the generator's
            envs (default: ``env.spec``).
        env: the gymnasium env the dataset was recorded in (used for its spaces).
        models: the distinct level models (each with ``observations`` (S, *obs_shape)).
        levels: for each episode, the index of its level in ``models``.
        seed: seeds the generator's envs, PPO, the networks and the data shuffling.
        total_timesteps: generator environment steps (rounds = this //
            (``n_envs`` * PPO ``n_steps``)).
        n_envs: parallel env copies of the generator (one process).
        discount: the generator's (PPO's) discount, also the shaping discount of the
            reward net. Default: the models' discount.
        demo_batch_size: expert transitions per discriminator batch (clamped to the
            number of demonstrated transitions).
        n_disc_updates_per_round: discriminator updates per round.
        disc_lr: the discriminator's Adam learning rate.
        reward_hid_sizes: hidden layers of ``g``.
        potential_hid_sizes: hidden layers of the potential ``h``.
        ppo_kwargs: overrides of :data:`PPO_DEFAULTS`.
        torch_threads: torch threads during training (None: leave as is).
        progress_bar: show imitation's round progress bar.

    Returns:
        An :class:`AIRLRecoveredReward` (``method="airl"``, ``feature_mode="states"``).

    Raises:
        InvalidDemonstrationError: no episodes, mismatched level tags, episodes longer
            than the horizon.
        InvalidModelError: levels without observations or with different horizons,
            observations that do not match the env's observation space.
        InvalidArgumentError: a budget too small for one adversarial round, or
            non-positive sizes.
    """
    from imitation.algorithms.adversarial.airl import AIRL
    from imitation.data.wrappers import RolloutInfoWrapper
    from imitation.rewards.reward_nets import BasicShapedRewardNet
    from imitation.util import logger as imit_logger
    from imitation.util import networks
    from imitation.util.util import make_vec_env
    from stable_baselines3 import PPO

    from behavioral.environments import wrap_observations

    t0 = time.perf_counter()
    trajs = list(dataset.trajectories)
    if not trajs:
        raise InvalidDemonstrationError("AIRL needs at least one demonstrated episode")
    levels = [int(x) for x in levels]
    if len(levels) != len(trajs):
        raise InvalidDemonstrationError(f"{len(levels)} level tags for {len(trajs)} episodes")
    models = list(models)
    if not models:
        raise InvalidModelError("AIRL needs at least one level model")
    horizon, A = models[0].horizon, models[0].n_actions
    for i, m in enumerate(models):
        if (m.horizon, m.n_actions) != (horizon, A):
            raise InvalidModelError(
                f"models[{i}] has (horizon, A) = ({m.horizon}, {m.n_actions}), models[0] "
                f"({horizon}, {A}): levels must share them"
            )
        if m.observations is None:
            raise InvalidModelError(f"models[{i}] has no observations: AIRL needs them")
        if tuple(m.observations.shape[1:]) != tuple(env.observation_space.shape):
            raise InvalidModelError(
                f"models[{i}] observations have shape {m.observations.shape[1:]}, the env's "
                f"observation space {env.observation_space.shape}"
            )
    gamma = float(models[0].discount if discount is None else discount)
    if not 0.0 < gamma <= 1.0:
        raise InvalidArgumentError(f"discount must be in (0, 1], got {discount!r}")
    if n_envs < 1 or n_disc_updates_per_round < 1 or demo_batch_size < 1:
        raise InvalidArgumentError(
            "n_envs, n_disc_updates_per_round and demo_batch_size must be >= 1, got "
            f"{n_envs}, {n_disc_updates_per_round}, {demo_batch_size}"
        )
    ppo_cfg = {**PPO_DEFAULTS, **dict(ppo_kwargs or {})}
    steps_per_round = int(n_envs) * int(ppo_cfg["n_steps"])
    if total_timesteps < steps_per_round:
        raise InvalidArgumentError(
            f"total_timesteps={total_timesteps} is less than one round of the generator "
            f"(n_envs * n_steps = {steps_per_round})"
        )
    env_id, env_kwargs, wrappers = _env_spec(dataset, env)

    ss = np.random.SeedSequence(int(seed))
    pad_seed, env_seed, torch_seed = (int(s.generate_state(1)[0]) for s in ss.spawn(3))
    pad_rng = np.random.default_rng(pad_seed)
    demos = [pad_trajectory(tr, horizon, pad_rng, A) for tr in trajs]
    n_transitions = len(demos) * horizon
    batch = int(min(demo_batch_size, n_transitions))

    with _seeded_globals(torch_seed, torch_threads), tempfile.TemporaryDirectory() as log_dir:
        venv = make_vec_env(
            env_id,
            rng=np.random.default_rng(env_seed),
            n_envs=int(n_envs),
            post_wrappers=[
                lambda e, _: RolloutInfoWrapper(
                    FixedHorizon(wrap_observations(e, wrappers), horizon)
                )
            ],
            env_make_kwargs=env_kwargs,
        )
        try:
            gen = PPO(
                "MlpPolicy",
                venv,
                gamma=gamma,
                seed=torch_seed % 2**31,
                verbose=0,
                device="cpu",
                **ppo_cfg,
            )
            reward_net = BasicShapedRewardNet(
                venv.observation_space,
                venv.action_space,
                reward_hid_sizes=tuple(reward_hid_sizes),
                potential_hid_sizes=tuple(potential_hid_sizes),
                use_state=True,
                use_action=False,
                use_next_state=False,
                use_done=False,
                discount_factor=gamma,
            )
            trainer = AIRL(
                demonstrations=demos,
                demo_batch_size=batch,
                venv=venv,
                gen_algo=gen,
                reward_net=reward_net,
                n_disc_updates_per_round=int(n_disc_updates_per_round),
                disc_opt_kwargs={"lr": float(disc_lr)},
                custom_logger=imit_logger.configure(log_dir, format_strs=[]),
                log_dir=log_dir,
            )
            stats: dict[str, float] = {}
            n_rounds = int(total_timesteps) // trainer.gen_train_timesteps
            for _ in _rounds(n_rounds, progress_bar):
                trainer.train_gen(trainer.gen_train_timesteps)
                with networks.training(trainer.reward_train):
                    for _ in range(trainer.n_disc_updates_per_round):
                        stats = dict(trainer.train_disc())
        finally:
            venv.close()
        g_net = trainer.reward_test
        g_net.eval()
        reward_net.eval()
        rewards = tuple(_evaluate(g_net, m) for m in models)
        potentials = tuple(_evaluate(reward_net.potential, m, potential=True) for m in models)

    for i, r in enumerate(rewards):
        if not np.all(np.isfinite(r)):
            raise InvalidModelError(f"AIRL's reward is not finite on level {i}")
    ll, gap = _fit_summary(dataset, models, levels, rewards)
    return AIRLRecoveredReward(
        feature_names=("airl_g",),
        weights=np.ones(1),
        rewards=rewards,
        feature_mode="states",
        iterations=n_rounds,
        converged=False,
        feature_gap=gap,
        log_likelihood=ll,
        objective=float(stats.get("disc_loss", float("nan"))),
        l2=0.0,
        n_demonstrations=len(trajs),
        wall_time=time.perf_counter() - t0,
        message=(
            f"AIRL: {n_rounds} rounds of {trainer.gen_train_timesteps} generator steps, "
            f"{n_disc_updates_per_round} discriminator updates each; last discriminator "
            f"accuracy {stats.get('disc_acc', float('nan')):.3f}"
        ),
        method="airl",
        n_parameters=sum(int(p.numel()) for p in g_net.parameters()),
        reward_net=g_net,
        potentials=potentials,
        discount=gamma,
        total_timesteps=n_rounds * trainer.gen_train_timesteps,
        disc_stats=stats,
    )


def _rounds(n: int, progress_bar: bool) -> Any:
    if not progress_bar:
        return range(n)
    import tqdm

    return tqdm.tqdm(range(n), desc="AIRL round")


def _fit_summary(
    dataset: Any,
    models: Sequence[TabularModel],
    levels: Sequence[int],
    rewards: Sequence[np.ndarray],
) -> tuple[float, float]:
    """``(log_likelihood, feature_gap)`` of ``g`` as a one-feature MaxEnt reward.

    ``log_likelihood``: mean per-episode log-likelihood of the demonstrated actions under
    soft-optimal play of ``rewards`` (temperature 1). ``feature_gap``: the absolute
    difference between the demonstrations' and that policy's expected (discounted)
    return in ``g`` -- zero when the policy matches the demonstrations' occupancy of ``g``.
    Both NaN for datasets without state indices.
    """
    if getattr(dataset, "states", None) is None:
        return float("nan"), float("nan")
    demos = [_to_demo(d, lvl) for d, lvl in zip(dataset.demonstrations(), levels)]
    one_feature = [
        m.replace(features=r[:, None], feature_names=("airl_g",), objectives={}, base=None)
        for m, r in zip(models, rewards)
    ]
    problem = MaxEntObjective(one_feature, demos)
    problem.value_and_grad(np.ones(1))
    return problem.log_likelihood(np.ones(1)), float(problem.last_feature_gap)
