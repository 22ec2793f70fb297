"""Policies: the base optimizer, tabular planners, and one adapter for everything else.

Three kinds of policy meet the rest of the library through one small protocol,
:class:`Policy` (``reset`` at the start of every episode, ``act`` at every step, a
``description`` for saved metadata); :func:`as_policy` turns any supported object into one:

* stable-baselines3 algorithms and policies (anything with ``predict``), see
  :class:`SB3Policy` -- the only place in the library that touches SB3;
* plain callables ``obs -> action`` (:class:`CallablePolicy`);
* tabular planners for any objective of a level (:class:`SoftOptimalPolicy`,
  :class:`EpsilonGreedyPolicy`), which act in the gym env through
  ``env.unwrapped.state_index()`` and re-plan for the level drawn by each ``reset``.

The base optimizer is :func:`train_ppo` (SB3 PPO, seeded, saved in SB3's zip format).

Every action a policy returns passes :func:`check_action`: it must be an integer in the
env's ``Discrete`` action space, else :class:`~behavioral.errors.InvalidActionError`.
Randomness comes from the ``np.random.Generator`` passed to ``act``; SB3's stochastic
actions are sampled from the policy's categorical distribution with that generator, so
global RNG state is never read or changed.
"""

from __future__ import annotations

import bisect
import dataclasses
import inspect
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from behavioral.errors import (
    EnvContractError,
    InvalidActionError,
    InvalidArgumentError,
    InvalidModelError,
    PolicyEnvMismatchError,
    PolicyFileError,
    UnknownObjectiveError,
    UnsafePolicyError,
    UnsupportedPolicyError,
)
from behavioral.tabular import (
    TabularModel,
    check_reward,
    content_digest,
    from_seals,
    soft_bellman,
)

__all__ = [
    "CallablePolicy",
    "EpsilonGreedyPolicy",
    "Policy",
    "SB3Policy",
    "SoftOptimalPolicy",
    "TabularPlanner",
    "UniformPolicy",
    "as_policy",
    "check_action",
    "check_policy_fits_env",
    "env_state_index",
    "env_tabular_model",
    "epsilon_greedy_policy",
    "has_tabular_model",
    "load_ppo",
    "optimal_values",
    "save_sb3",
    "soft_optimal_policy",
    "train_ppo",
]

Objective = str | Callable[[TabularModel], Any]
"""An objective for a planner: a name in ``model.objectives`` or ``model -> reward``."""


# --------------------------------------------------------------------------- env access


def _is_seals_tabular(env: Any) -> bool:
    return all(hasattr(env, a) for a in ("transition_matrix", "reward_matrix", "state_space"))


def env_tabular_model(env: gym.Env) -> TabularModel:
    """The tabular model of the level drawn by the env's last ``reset``.

    Uses ``env.unwrapped.tabular_model()`` (the environment contract) or, for seals
    tabular envs, :func:`behavioral.tabular.from_seals` (one model for every episode),
    or else the level's extracted model (:func:`behavioral.extract.episode_level`: the
    level rollouts extract right after each reset, or one extracted now from the current
    state) for envs with ``Discrete`` actions, such as Minigrid's.

    Raises:
        EnvContractError: the env offers none of these, or returns something else than
            a :class:`~behavioral.tabular.TabularModel` (an ``ExtractionError`` says why
            a level cannot be extracted).
    """
    u = env.unwrapped
    if callable(getattr(u, "tabular_model", None)):
        model = u.tabular_model()
        if not isinstance(model, TabularModel):
            raise EnvContractError(
                f"{type(u).__name__}.tabular_model() returned {type(model).__name__}, "
                "not a behavioral.tabular.TabularModel"
            )
        return model
    if _is_seals_tabular(u):
        try:
            return from_seals(u)
        except InvalidModelError as err:
            raise EnvContractError(f"cannot adapt {type(u).__name__}: {err}") from None
    from behavioral.extract import episode_level, is_extractable

    if is_extractable(env):
        return episode_level(env).model
    raise EnvContractError(
        f"{type(u).__name__} has no tabular_model(), is not a seals tabular env and has "
        "no Discrete actions to extract a model with"
    )


def has_tabular_model(env: Any) -> bool:
    """Whether :func:`env_tabular_model` can build a model of ``env``'s levels: it has
    ``tabular_model()`` (the environment contract) or is a seals tabular env."""
    u = getattr(env, "unwrapped", env)
    return callable(getattr(u, "tabular_model", None)) or _is_seals_tabular(u)


def env_state_index(env: gym.Env) -> int:
    """Index of the env's current state in :func:`env_tabular_model` (after ``reset``).

    For envs without a model of their own, the index in the current episode's extracted
    level (a running state before an ended one: see
    :meth:`behavioral.extract.ExtractedLevel.state_index`).

    Raises:
        EnvContractError: the env has no ``state_index()`` (nor seals' ``state``) and no
            model can be extracted, or it has not been reset.
    """
    u = env.unwrapped
    if callable(getattr(u, "state_index", None)):
        return int(u.state_index())
    if _is_seals_tabular(u):
        if getattr(u, "_cur_state", None) is None:
            raise EnvContractError("the env has no current state: call reset() first")
        return int(u.state)
    from behavioral.extract import episode_level, is_extractable

    if is_extractable(env) and not callable(getattr(u, "tabular_model", None)):
        return episode_level(env).state_index(env)
    raise EnvContractError(
        f"{type(u).__name__} has no state_index() and is not a seals tabular env"
    )


def _discrete_space(env: gym.Env) -> gym.spaces.Discrete:
    space = env.action_space
    if not isinstance(space, gym.spaces.Discrete):
        raise EnvContractError(f"only Discrete action spaces are supported, got {space!r}")
    return space


def check_action(action: Any, space: gym.spaces.Space) -> int:
    """Validate one action for a ``Discrete`` space and return it as a Python int.

    Accepts Python ints, NumPy integer scalars and integer arrays holding one element
    (what SB3's ``predict`` returns). Like ``gymnasium.spaces.Discrete.contains``, it
    refuses floats (including integral ones such as ``2.0``), booleans and NaN.

    Raises:
        InvalidActionError: wrong type, not exactly one element, NaN, or out of range;
            ``err.action`` holds the offending value.
        EnvContractError: ``space`` is not ``Discrete``.
    """
    if not isinstance(space, gym.spaces.Discrete):
        raise EnvContractError(f"only Discrete action spaces are supported, got {space!r}")
    if isinstance(action, (bool, np.bool_)):
        raise InvalidActionError(f"action {action!r} is a boolean, not an integer", action)
    if isinstance(action, int):
        value = action
    else:
        try:
            arr = np.asarray(action)
        except Exception as err:
            raise InvalidActionError(
                f"action {action!r} of type {type(action).__name__} is not an integer ({err})",
                action,
            ) from None
        if arr.size != 1:
            raise InvalidActionError(
                f"expected one integer action, got an array of shape {arr.shape}: {action!r}",
                action,
            )
        if arr.dtype.kind not in "iu":
            what = "NaN" if arr.dtype.kind == "f" and np.isnan(arr).any() else arr.dtype
            raise InvalidActionError(
                f"action {action!r} is {what}, not an integer (type {type(action).__name__})",
                action,
            )
        value = int(arr.reshape(()))
    lo, n = int(space.start), int(space.n)
    if not lo <= value < lo + n:
        raise InvalidActionError(
            f"action {value} is outside the action space {{{lo}, ..., {lo + n - 1}}}", action
        )
    return value


def _choice_cdf(p: np.ndarray) -> list[float] | None:
    """The cumulative distribution ``Generator.choice(len(p), p=p)`` samples from, or None
    where ``choice`` could refuse ``p`` (then it is left to ``choice`` itself).

    numpy's ``choice`` with ``p`` (``replace=True``, one sample) takes ``cdf = p.cumsum()``,
    ``cdf /= cdf[-1]`` and returns the first index whose ``cdf`` exceeds one draw of
    ``rng.random()``. ``p`` must be a float64 vector, non-negative and sum to 1 within
    1e-9 (``choice`` accepts 1.5e-8).
    """
    if p.dtype != np.float64 or p.ndim != 1 or p.shape[0] == 0:
        return None
    cdf = p.cumsum()
    if not (p.min() >= 0.0 and abs(cdf[-1] - 1.0) <= 1e-9):
        return None
    cdf /= cdf[-1]
    return cdf.tolist()


def sample_action(rng: np.random.Generator, p: np.ndarray, cdf: list[float] | None = None) -> int:
    """``int(rng.choice(len(p), p=p))``: the same index from the same draw of ``rng``, for a
    few microseconds instead of ``choice``'s checks (``cdf``: :func:`_choice_cdf` of ``p``,
    when the caller keeps it)."""
    cdf = _choice_cdf(p) if cdf is None else cdf
    if cdf is None:
        return int(rng.choice(p.shape[0], p=p))
    return bisect.bisect_right(cdf, rng.random())


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class Policy(Protocol):
    """What the library needs from a policy.

    ``reset`` is called once at the start of every episode, after ``env.reset``; ``act``
    once per step with the observation the env just emitted. Both may read the env
    (planners use ``env.unwrapped.state_index()`` and ``tabular_model()``) but must not
    step or reset it. All randomness must come from ``rng``.
    """

    @property
    def description(self) -> str:
        """A short human-readable description, stored in dataset metadata."""
        ...

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        """Prepare for a new episode of ``env`` (already reset)."""
        ...

    def act(
        self, obs: Any, env: gym.Env, rng: np.random.Generator, *, deterministic: bool = False
    ) -> int:
        """The action to take on observation ``obs`` (an int in the env's action space)."""
        ...


class CallablePolicy:
    """Adapter for a plain callable ``obs -> action`` (deterministic by nature)."""

    def __init__(self, fn: Callable[[Any], Any], *, description: str | None = None) -> None:
        if not callable(fn):
            raise UnsupportedPolicyError(f"{fn!r} is not callable")
        self.fn = fn
        self._description = description or f"callable {getattr(fn, '__qualname__', repr(fn))}"

    @property
    def description(self) -> str:
        return self._description

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        del env, rng

    def act(
        self, obs: Any, env: gym.Env, rng: np.random.Generator, *, deterministic: bool = False
    ) -> int:
        del rng, deterministic
        return check_action(self.fn(obs), env.action_space)

    def __repr__(self) -> str:
        return f"CallablePolicy({self._description!r})"


class UniformPolicy:
    """Uniformly random actions in any env with a ``Discrete`` action space (the CLI's
    ``random``). It draws like a tabular planner with a constant objective (the same
    ``rng.choice`` over equal probabilities) but needs no model of the env."""

    behavioral_name = "random"

    @property
    def description(self) -> str:
        return "uniformly random actions"

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        del env, rng

    def act(
        self, obs: Any, env: gym.Env, rng: np.random.Generator, *, deterministic: bool = False
    ) -> int:
        del obs, deterministic  # every action is equally probable
        space = _discrete_space(env)
        n = int(space.n)
        return sample_action(rng, np.full(n, 1.0 / n)) + int(space.start)

    def __repr__(self) -> str:
        return "UniformPolicy()"


class SB3Policy:
    """Adapter for a stable-baselines3 algorithm or ``BasePolicy`` (``predict``).

    Stochastic actions of actor-critic policies with a categorical action distribution
    (PPO, A2C on ``Discrete`` actions) are sampled with the ``rng`` given to :meth:`act`
    from the probabilities the network outputs. Other models (DQN, recurrent policies,
    anything exposing only ``predict``) call ``predict`` inside a forked torch RNG seeded
    from ``rng``, so results are reproducible and the global torch RNG is left untouched
    (DQN's ε-exploration in ``predict(deterministic=False)`` reads NumPy's global RNG,
    which SB3 does not let us replace). Recurrent state is kept between steps and
    cleared by :meth:`reset`. The action distribution of an observation met before is
    remembered (see :meth:`_distribution`).
    """

    #: Distinct observations whose action distributions are remembered at most.
    MEMO_SIZE = 1 << 16

    def __init__(self, model: Any, *, description: str | None = None) -> None:
        if not callable(getattr(model, "predict", None)):
            raise UnsupportedPolicyError(f"{type(model).__name__} has no predict()")
        self.model = model
        self._state: Any = None
        self._episode_start = True
        self._description = description or _describe_sb3(model)
        self._actor: Any = None  # the torch policy, once known (see _torch_policy)
        # observation bytes -> (p, cdf) (see _distribution), valid for _memo_version
        self._memo: dict[tuple[Any, ...], tuple[np.ndarray, list[float] | None]] = {}
        self._memo_version: Any = None

    @property
    def description(self) -> str:
        return self._description

    def _torch_policy(self) -> Any:
        """The actor-critic policy whose categorical action distribution is read directly,
        put in evaluation mode (once), or None (then ``predict`` is used)."""
        if self._actor is None:
            from stable_baselines3.common.distributions import CategoricalDistribution
            from stable_baselines3.common.policies import ActorCriticPolicy

            policy = getattr(self.model, "policy", self.model)
            ok = (
                isinstance(policy, ActorCriticPolicy)
                and isinstance(policy.action_dist, CategoricalDistribution)
                # Recurrent policies take (obs, lstm_states, episode_starts): use predict().
                and len(inspect.signature(policy.get_distribution).parameters) == 1
            )
            if ok:
                policy.set_training_mode(False)
            self._actor = policy if ok else False
        return self._actor or None

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        del env, rng
        self._state = None
        self._episode_start = True
        policy = self._torch_policy()
        if policy is not None:  # parameters changed in place (training) or replaced?
            version = tuple((id(p), p._version) for p in policy.parameters())
            if version != self._memo_version:
                self._memo.clear()
                self._memo_version = version

    def _distribution(
        self, obs: Any, space: gym.spaces.Discrete
    ) -> tuple[np.ndarray, list[float] | None] | None:
        """``(p, cdf)``: the normalised action probabilities on ``obs`` and what
        :func:`sample_action` draws from, or None without a categorical distribution.

        The network is a pure function of the observation (non-recurrent, in evaluation
        mode), so the distribution of an array observation met before is taken from a memo
        keyed by its bytes, bit for bit what another forward pass would give: a rollout
        of 100 WaterPlants episodes of 50 steps on one level meets at most its 353 states.
        :meth:`reset` forgets the memo when the parameters have changed since.
        """
        key = None
        if type(obs) is np.ndarray:
            key = (obs.dtype.str, obs.shape, obs.tobytes())
            hit = self._memo.get(key)
            if hit is not None:
                return hit
        probs = self.action_probabilities(obs)
        if probs is None:
            return None
        if probs.shape != (space.n,) or not np.all(np.isfinite(probs)):
            raise InvalidActionError(
                f"the policy's action probabilities {probs!r} do not fit {space!r}", probs
            )
        p = probs / probs.sum()
        entry = (p, _choice_cdf(p))
        if key is not None and self._memo_version is not None:
            if len(self._memo) >= self.MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = entry
        return entry

    def action_probabilities(self, obs: Any) -> np.ndarray | None:
        """(A,) action probabilities on ``obs``, or None when the model has no
        categorical action distribution to read them from."""
        import torch

        policy = self._torch_policy()
        if policy is None:
            return None
        with torch.no_grad():
            obs_t, vectorized = policy.obs_to_tensor(obs)
            if vectorized and obs_t.shape[0] != 1:
                raise EnvContractError("act() takes one observation, not a batch")
            # get_distribution's computation, without building the distribution objects:
            # the same modules and the same normalisation as torch's Categorical(logits=)
            features = policy.extract_features(obs_t, policy.pi_features_extractor)
            logits = policy.action_net(policy.mlp_extractor.forward_actor(features))
            logits = logits - logits.logsumexp(dim=-1, keepdim=True)
            probs = torch.softmax(logits, dim=-1)[0].cpu().numpy().astype(np.float64)
        return probs

    def act(
        self, obs: Any, env: gym.Env, rng: np.random.Generator, *, deterministic: bool = False
    ) -> int:
        space = _discrete_space(env)
        if not deterministic:
            dist = self._distribution(obs, space)
            if dist is not None:
                a = sample_action(rng, *dist)
                self._episode_start = False
                return check_action(a + int(space.start), space)
        import torch

        seed = int(rng.integers(2**63))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            action, self._state = self.model.predict(
                obs,
                state=self._state,
                episode_start=np.array([self._episode_start]),
                deterministic=deterministic,
            )
        self._episode_start = False
        return check_action(action, space)

    def __repr__(self) -> str:
        return f"SB3Policy({self._description!r})"


def _describe_sb3(model: Any) -> str:
    policy = getattr(model, "policy", None)
    name = type(model).__name__
    if policy is not None and policy is not model:
        name = f"{name}({type(policy).__name__})"
    meta = getattr(model, "behavioral_metadata", None)
    if isinstance(meta, Mapping):
        keys = ("env_id", "split", "total_timesteps", "seed")
        extra = ", ".join(f"{k}={meta[k]!r}" for k in keys if k in meta)
        if extra:
            name = f"{name} [{extra}]"
    return name


# --------------------------------------------------------------------------- planners


def optimal_values(model: TabularModel, reward: Any) -> tuple[np.ndarray, np.ndarray]:
    """Exact finite-horizon (hard) value iteration.

    .. math::

        Q_{H-1}(s, a) = r(s, a), \\quad
        Q_t(s, a) = r(s, a) + \\gamma \\sum_{s'} P(s' \\mid s, a) V_{t+1}(s'), \\quad
        V_t(s) = \\max_a Q_t(s, a).

    Args:
        model: the MDP (CSR transitions; ``model.discount`` is used).
        reward: (S,) or (S, A) reward collected at steps 0 .. H-1.

    Returns:
        ``(V, Q)`` with ``V[t, s]`` of shape (H, S) and ``Q[t, s, a]`` of shape (H, S, A).
        One sparse matrix-vector product per step: O(H * (nnz + S*A)).

    Raises:
        InvalidRewardError: wrong shape or non-finite reward.
    """
    S, A, H = model.n_states, model.n_actions, model.horizon
    r = check_reward(reward, S, A)
    R = np.broadcast_to(r[:, None] if r.ndim == 1 else r, (S, A))
    V = np.empty((H, S))
    Q = np.empty((H, S, A))
    T = model.transitions
    Q[H - 1] = R
    V[H - 1] = Q[H - 1].max(axis=1)
    for t in range(H - 2, -1, -1):
        Q[t] = R + model.discount * (T @ V[t + 1]).reshape(S, A)
        V[t] = Q[t].max(axis=1)
    return V, Q


def _greedy_mask(V: np.ndarray, Q: np.ndarray) -> np.ndarray:
    # Ties up to float round-off (sums of the same rewards in another order) count as
    # optimal: relative tolerance on the scale of each step's values.
    scale = np.maximum(1.0, np.abs(Q).max(axis=(1, 2), keepdims=True))
    return Q >= V[..., None] - 1e-10 * scale


def epsilon_greedy_policy(model: TabularModel, reward: Any, epsilon: float) -> np.ndarray:
    """ε-greedy optimal policy ``pi[t, s, a]`` of shape (H, S, A).

    With probability ``1 - ε`` an optimal action of the finite-horizon problem
    (:func:`optimal_values`; ties split evenly), with probability ``ε`` a uniformly
    random action: ``pi = (1 - ε) * 1[a optimal] / #optimal + ε / A``.

    Raises:
        InvalidArgumentError: ``epsilon`` not in [0, 1].
        InvalidRewardError: malformed reward.
    """
    epsilon = _check_epsilon(epsilon)
    V, Q = optimal_values(model, reward)
    mask = _greedy_mask(V, Q)
    greedy = mask / mask.sum(axis=-1, keepdims=True)
    return (1.0 - epsilon) * greedy + epsilon / model.n_actions


def soft_optimal_policy(model: TabularModel, reward: Any, beta: float) -> np.ndarray:
    """Boltzmann-rational policy at inverse temperature β, shape (H, S, A).

    ``pi_t(a|s) = exp(Q_t(s, a) - V_t(s))`` with ``(V, Q)`` the finite-horizon soft
    values of ``beta * reward`` (:func:`behavioral.tabular.soft_bellman`): the policy
    maximum-causal-entropy IRL assumes. β → ∞ approaches an optimal policy, β → 0 the
    uniform one.

    Raises:
        InvalidArgumentError: ``beta`` not finite and positive.
        InvalidRewardError: malformed reward.
    """
    beta = _check_beta(beta)
    r = check_reward(reward, model.n_states, model.n_actions)
    return soft_bellman(model, beta * r)[2]


def _check_beta(beta: float) -> float:
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"beta must be a positive number, got {beta!r}") from None
    if not (math.isfinite(b) and b > 0):
        raise InvalidArgumentError(f"beta must be finite and > 0, got {beta!r}")
    return b


def _check_epsilon(epsilon: float) -> float:
    try:
        e = float(epsilon)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"epsilon must be a number, got {epsilon!r}") from None
    if not (0.0 <= e <= 1.0):
        raise InvalidArgumentError(f"epsilon must be in [0, 1], got {epsilon!r}")
    return e


def _model_key(model: TabularModel, reward: np.ndarray, discount: float) -> bytes:
    """Content hash of what a plan depends on (dynamics, horizon, discount, reward)."""
    T = model.transitions
    return content_digest(
        (model.n_states, model.n_actions, model.horizon, discount),
        T.indptr,
        T.indices,
        T.data,
        np.asarray(reward),
    )


class TabularPlanner:
    """A policy that plans exactly for one objective on the tabular model of each level.

    At every :meth:`reset` it reads ``env.unwrapped.tabular_model()`` (the level drawn by
    the env's last reset), computes a time-dependent policy ``pi[t, s, a]`` with
    :meth:`plan` (cached per level by a content hash of dynamics and reward, LRU of
    ``cache_size`` levels), and restarts its step counter. :meth:`act` samples
    ``a ~ pi[t, state_index()]`` with the given generator (or takes the most probable
    action when ``deterministic``). Past the model's horizon the last step's policy is
    used.

    Args:
        objective: a name in ``model.objectives`` (e.g. ``"exit"``, ``"red_door"``) or a
            function ``model -> reward`` returning an (S,) or (S, A) array.
        discount: plan with this discount instead of ``model.discount`` (None). In the
            undiscounted finite-horizon problem, reaching a reward at step 3 or at step
            30 is worth the same, so every action that still reaches it in time is
            optimal and ties are split among them; a discount slightly below 1 (e.g.
            0.99) makes the planner prefer the shortest way.
        cache_size: how many levels' plans to keep.

    Subclasses implement :meth:`_plan` (``model, reward -> pi``).
    """

    def __init__(
        self, objective: Objective, *, discount: float | None = None, cache_size: int = 128
    ) -> None:
        if not (isinstance(objective, str) or callable(objective)):
            raise InvalidArgumentError(
                f"objective must be a name or a function model -> reward, got {objective!r}"
            )
        if cache_size < 0:
            raise InvalidArgumentError(f"cache_size must be >= 0, got {cache_size}")
        self.objective = objective
        self.cache_size = int(cache_size)
        if discount is not None:
            d = float(discount)
            if not 0.0 < d <= 1.0:
                raise InvalidArgumentError(f"discount must be in (0, 1], got {discount!r}")
            discount = d
        self.discount = discount
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._pi: np.ndarray | None = None
        self._t = 0

    # -- planning (pure given the model)
    def reward(self, model: TabularModel) -> np.ndarray:
        """The objective's reward array on ``model``, (S,) or (S, A).

        Raises:
            UnknownObjectiveError: the name is not among ``model.objectives``.
            InvalidRewardError: the function returned a malformed array.
        """
        if isinstance(self.objective, str):
            try:
                r = model.objectives[self.objective]
            except KeyError:
                raise UnknownObjectiveError(
                    f"objective {self.objective!r} is not among the model's objectives "
                    f"{sorted(model.objectives)}"
                ) from None
        else:
            r = self.objective(model)
        return check_reward(r, model.n_states, model.n_actions, what="planner objective")

    def plan(self, model: TabularModel) -> np.ndarray:
        """The planner's policy on ``model``: ``pi[t, s, a]``, shape (H, S, A), read-only."""
        reward = self.reward(model)
        discount = model.discount if self.discount is None else self.discount
        key = _model_key(model, reward, discount)
        pi = self._cache.get(key)
        if pi is not None:
            self._cache.move_to_end(key)
            return pi
        if discount != model.discount:
            model = model.replace(discount=discount)
        pi = np.ascontiguousarray(self._plan(model, reward), dtype=np.float64)
        pi.setflags(write=False)
        if self.cache_size:
            self._cache[key] = pi
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return pi

    def _plan(self, model: TabularModel, reward: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- acting in the env
    @property
    def description(self) -> str:
        return repr(self)

    def reset(self, env: gym.Env, rng: np.random.Generator | None = None) -> None:
        """Plan for the level of the episode ``env`` was just reset to."""
        del rng
        model = env_tabular_model(env)
        space = _discrete_space(env)
        if space.n != model.n_actions:
            raise EnvContractError(
                f"the env has {space.n} actions but its tabular model has {model.n_actions}"
            )
        self._pi = self.plan(model)
        self._t = 0

    def action_probabilities(self, env: gym.Env) -> np.ndarray:
        """(A,) distribution of the next action in the env's current state and step."""
        if self._pi is None:
            self.reset(env)
        assert self._pi is not None
        s = env_state_index(env)
        if not 0 <= s < self._pi.shape[1]:
            raise EnvContractError(
                f"state_index() returned {s}, outside the model's {self._pi.shape[1]} states"
            )
        t = min(self._t, self._pi.shape[0] - 1)
        return self._pi[t, s]

    def act(
        self, obs: Any, env: gym.Env, rng: np.random.Generator, *, deterministic: bool = False
    ) -> int:
        del obs
        p = self.action_probabilities(env)
        a = int(np.argmax(p)) if deterministic else sample_action(rng, p)
        self._t += 1
        return a + int(env.action_space.start)

    def _discount_repr(self) -> str:
        return "" if self.discount is None else f", discount={self.discount!r}"

    def _objective_repr(self) -> str:
        if isinstance(self.objective, str):
            return repr(self.objective)
        return getattr(self.objective, "__qualname__", repr(self.objective))

    def _objective_name(self) -> str:
        if isinstance(self.objective, str):
            return self.objective
        return getattr(self.objective, "__name__", type(self.objective).__name__)


class SoftOptimalPolicy(TabularPlanner):
    """Boltzmann-rational planner: ``pi_t(a|s) ∝ exp(Q_t(s, a))`` with ``Q`` the soft
    Q-values of ``beta * reward`` (:func:`soft_optimal_policy`)."""

    def __init__(
        self,
        objective: Objective,
        *,
        beta: float = 1.0,
        discount: float | None = None,
        cache_size: int = 128,
    ) -> None:
        super().__init__(objective, discount=discount, cache_size=cache_size)
        self.beta = _check_beta(beta)

    def _plan(self, model: TabularModel, reward: np.ndarray) -> np.ndarray:
        return soft_optimal_policy(model, reward, self.beta)

    @property
    def behavioral_name(self) -> str:
        """``planner:OBJECTIVE:BETA``, the CLI's spec of this planner."""
        return f"planner:{self._objective_name()}:{self.beta:g}"

    def __repr__(self) -> str:
        return f"SoftOptimalPolicy(objective={self._objective_repr()}, beta={self.beta!r}{self._discount_repr()})"


class EpsilonGreedyPolicy(TabularPlanner):
    """Optimal for the objective with probability ``1 - ε``, uniform with probability ε
    (:func:`epsilon_greedy_policy`; exact finite-horizon value iteration)."""

    def __init__(
        self,
        objective: Objective,
        *,
        epsilon: float = 0.0,
        discount: float | None = None,
        cache_size: int = 128,
    ) -> None:
        super().__init__(objective, discount=discount, cache_size=cache_size)
        self.epsilon = _check_epsilon(epsilon)

    def _plan(self, model: TabularModel, reward: np.ndarray) -> np.ndarray:
        return epsilon_greedy_policy(model, reward, self.epsilon)

    @property
    def behavioral_name(self) -> str:
        """``epsilon:OBJECTIVE:EPSILON``."""
        return f"epsilon:{self._objective_name()}:{self.epsilon:g}"

    def __repr__(self) -> str:
        return f"EpsilonGreedyPolicy(objective={self._objective_repr()}, epsilon={self.epsilon!r}{self._discount_repr()})"


# --------------------------------------------------------------------------- adapter


def policy_name(policy: Any) -> str | None:
    """A short name of a policy for titles and tables, if it has one: a zoo entry's name, a
    policy file's name, a planner's spec (``planner:red_door:5``). It is read from the
    object's ``behavioral_name`` attribute (``load_zoo`` and ``load_ppo`` set it on the
    models they return; planners have it as a property); None when there is none."""
    for obj in (policy, getattr(policy, "model", None)):
        name = getattr(obj, "behavioral_name", None)
        if isinstance(name, str) and name:
            return name
    return None


def as_policy(obj: Any, *, description: str | None = None) -> Policy:
    """Turn anything the library accepts as a policy into a :class:`Policy`.

    In order: objects already following the protocol (planners, adapters, user classes
    with ``act``/``reset``/``description``) are returned as they are; objects with
    ``predict`` (SB3 algorithms and ``BasePolicy``) become :class:`SB3Policy`; other
    callables ``obs -> action`` become :class:`CallablePolicy`.

    Raises:
        UnsupportedPolicyError: none of the above.
    """
    if isinstance(obj, Policy):
        return obj
    if callable(getattr(obj, "predict", None)):
        return SB3Policy(obj, description=description)
    if callable(obj):
        return CallablePolicy(obj, description=description)
    raise UnsupportedPolicyError(
        f"cannot use {type(obj).__name__} as a policy: expected an SB3 model/policy "
        "(predict), a callable obs -> action, or an object with act/reset/description"
    )


# --------------------------------------------------------------------------- base optimizer


def save_sb3(model: Any, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Save an SB3 model in its zip format as a published output (:mod:`behavioral.files`).

    ``.zip`` is appended when ``path`` has no suffix (as SB3 does). Returns the path
    written.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        OutputError: ``path`` cannot be written.
    """
    from behavioral import files

    path = Path(path)
    if path.suffix == "":
        path = path.with_name(path.name + ".zip")
    with files.reserve(path, kind="file", overwrite=overwrite) as res, res.stage() as tmp:
        with open(tmp, "xb") as f:
            model.save(f)
    return res.target


# --------------------------------------------------------------------------- loading PPO zips

#: Largest ``data`` member (SB3's JSON of the model's attributes) read from a policy zip.
MAX_POLICY_DATA_BYTES = 64 << 20
#: Largest ``policy.pth`` (the network's weights) read from a policy zip. Raise it with
#: ``load_ppo(..., max_bytes=...)``.
MAX_POLICY_WEIGHTS_BYTES = 1 << 30

_POLICY_MODULE = "stable_baselines3.common.policies"
_POLICY_CLASSES = ("ActorCriticPolicy", "ActorCriticCnnPolicy")
_ACTIVATIONS = (
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "GELU",
    "SiLU",
    "Sigmoid",
    "Softplus",
    "Identity",
)
_EXTRACTORS = ("FlattenExtractor", "NatureCNN")
_PLAIN_POLICY_KWARGS = {
    "net_arch",
    "ortho_init",
    "log_std_init",
    "full_std",
    "use_expln",
    "share_features_extractor",
    "normalize_images",
    "features_extractor_kwargs",
}
_CLASS_POLICY_KWARGS = {"activation_fn", "features_extractor_class"}
_IGNORED_POLICY_KWARGS = {"optimizer_class", "optimizer_kwargs"}  # training only
_BOX_DTYPES = ("float16", "float32", "float64", "uint8", "int8", "int16", "int32", "int64", "bool")
_HYPERPARAMETERS = {
    "gamma": float,
    "gae_lambda": float,
    "ent_coef": float,
    "vf_coef": float,
    "max_grad_norm": float,
    "n_steps": int,
    "batch_size": int,
    "n_epochs": int,
    "n_envs": int,
    "num_timesteps": int,
    "seed": int,
}


def load_ppo(
    path: str | os.PathLike[str],
    *,
    trusted: bool = False,
    env: gym.Env | None = None,
    device: str = "cpu",
    max_bytes: int = MAX_POLICY_WEIGHTS_BYTES,
) -> Any:
    """Load a stable-baselines3 PPO zip (e.g. from :func:`train_ppo` or ``PPO.save``).

    By default nothing in the file is unpickled, so a policy handed over by the people
    being audited cannot run code: the zip's ``data`` member is read as plain JSON,
    ignoring every ``:serialized:`` (cloudpickle) blob; the network is rebuilt from the
    readable fields -- observation and action spaces, policy class, ``net_arch``,
    activation and feature extractor (named, from a fixed list), or the spaces of ``env``
    where the file's cannot be read -- and the weights are read from ``policy.pth`` with
    ``torch.load(weights_only=True)``, their names and shapes checked against the rebuilt
    network. The result is a ``PPO`` ready to act (``predict``); its training state
    (optimizer, schedules, rollout buffer) is not restored. Its ``behavioral_name`` is the
    file's name (what reports call the policy).

    ``trusted=True`` uses SB3's own ``PPO.load`` instead, which unpickles the file's
    objects (custom policy classes, schedules): only for files you produced yourself.

    Args:
        path: the ``.zip``.
        trusted: load with SB3's pickle-based loader.
        env: the env the policy will act in; its spaces must fit the policy's (and stand
            in for spaces the file stores only pickled).
        device: torch device.
        max_bytes: largest ``policy.pth`` read (default :data:`MAX_POLICY_WEIGHTS_BYTES`).

    Raises:
        PolicyFileError: not a readable PPO zip (missing members, bad JSON, weights that do
            not fit, a member above its size limit).
        UnsafePolicyError: restoring the policy would need unpickling (a custom policy
            class or activation, spaces stored only pickled and no ``env``); pass
            ``trusted=True`` if you trust the file.
        PolicyEnvMismatchError: ``env``'s spaces do not fit the policy.
    """
    if not isinstance(trusted, bool):
        raise InvalidArgumentError(f"trusted must be a bool, got {trusted!r}")
    path = Path(path)
    if not path.is_file():
        raise PolicyFileError(f"{path} is not a file")
    if trusted:
        model = _load_ppo_trusted(path, device)
    else:
        model = _load_ppo_safe(path, env, device, max_bytes)
    if env is not None:
        check_policy_fits_env(model, env)
    model.behavioral_name = path.name  # the short name reports and tables show
    return model


def _load_ppo_trusted(path: Path, device: str) -> Any:
    from stable_baselines3 import PPO

    try:
        return PPO.load(path, device=device)
    except Exception as err:  # SB3/zipfile/torch raise many types for a bad file
        raise PolicyFileError(
            f"cannot load {path} as a stable-baselines3 PPO zip: {' '.join(str(err).split())}"
        ) from None


def check_policy_fits_env(model: Any, env: gym.Env) -> None:
    """Raise :class:`PolicyEnvMismatchError` unless ``model``'s spaces fit ``env``'s."""
    have = getattr(model, "observation_space", None)
    want = env.observation_space
    if have is not None and not _observations_fit(have, want):
        raise PolicyEnvMismatchError(
            f"the policy takes observations {_space_str(have)}; this env's observations are "
            f"{_space_str(want)}{_wrapper_hint(model, env)}"
        )
    have_a, want_a = getattr(model, "action_space", None), env.action_space
    if have_a is not None and (
        type(have_a) is not type(want_a) or getattr(have_a, "n", None) != getattr(want_a, "n", None)
    ):
        raise PolicyEnvMismatchError(
            f"the policy chooses among actions {_space_str(have_a)}, the env has {_space_str(want_a)}"
        )


def _observations_fit(have: Any, want: Any) -> bool:
    """Whether a policy taking observations ``have`` fits an env emitting ``want``: the
    same kind of space and shape, or the channels-first image space SB3 trains an
    (H, W, C) image env with (``VecTransposeImage``; its ``predict`` transposes back)."""
    from stable_baselines3.common.preprocessing import (
        is_image_space,
        is_image_space_channels_first,
    )
    from stable_baselines3.common.vec_env import VecTransposeImage

    if type(have) is not type(want):
        return False
    shape = getattr(have, "shape", None)
    if shape == getattr(want, "shape", None):
        return True
    return (
        is_image_space(want)
        and not is_image_space_channels_first(want)
        and shape == VecTransposeImage.transpose_space(want).shape
    )


def _wrapper_hint(model: Any, env: gym.Env) -> str:
    """What to do about observations that do not fit: wrap ``env`` in the observation
    wrappers the policy file names (``behavioral_metadata``), or else in one of the
    known wrappers whose observations the policy fits; ``""`` when neither applies."""
    from behavioral.environments import (
        OBSERVATION_WRAPPERS,
        observation_wrappers,
        recorded_wrappers,
        wrap_observations,
    )

    meta = getattr(model, "behavioral_metadata", None)
    try:
        names = recorded_wrappers(meta) if isinstance(meta, Mapping) else ()
    except InvalidArgumentError:  # a name this library does not know: no hint
        return ""
    if names and observation_wrappers(env) != names:
        calls = "".join(f"{n}(" for n in reversed(names)) + "env" + ")" * len(names)
        return f": it was trained behind the observation wrapper(s) {list(names)}; audit {calls}"
    fits = []
    for name in OBSERVATION_WRAPPERS:
        try:
            wrapped = wrap_observations(env, [name]).observation_space
        except Exception:  # a wrapper that does not apply to this env
            continue
        if _observations_fit(model.observation_space, wrapped):
            fits.append(name)
    if fits:
        return (
            f"; it fits this env behind {' or '.join(fits)}: wrap the env in it "
            f"(CLI: --obs-wrapper {fits[0]})"
        )
    return ""


def _space_str(space: Any) -> str:
    if isinstance(space, gym.spaces.Box):
        return f"of shape {tuple(space.shape)} ({space.dtype})"
    if isinstance(space, gym.spaces.Discrete):
        return f"Discrete({int(space.n)})"
    return type(space).__name__


def _zip_member(zf: Any, name: str, limit: int, path: Path) -> bytes:
    """Read one member of ``zf`` with its declared size checked and its reading capped."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise PolicyFileError(f"{path} has no {name!r}: not a stable-baselines3 zip") from None
    if info.file_size > limit:
        knob = (
            "load_ppo(..., max_bytes=N) raises it"
            if name == "policy.pth"
            else "behavioral.policies.MAX_POLICY_DATA_BYTES"
        )
        raise PolicyFileError(
            f"{path}: {name} is {info.file_size} bytes, above the limit of {limit} bytes ({knob})"
        )
    with zf.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:  # pragma: no cover - zipfile stops at the declared size
        raise PolicyFileError(f"{path}: {name} is larger than declared")
    return data


def _load_ppo_safe(path: Path, env: gym.Env | None, device: str, max_bytes: int) -> Any:
    import io
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            raw = _zip_member(zf, "data", MAX_POLICY_DATA_BYTES, path)
            weights = _zip_member(zf, "policy.pth", int(max_bytes), path)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        if isinstance(err, PolicyFileError):
            raise
        raise PolicyFileError(
            f"cannot load {path} as a stable-baselines3 PPO zip: {' '.join(str(err).split())}"
        ) from None
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as err:
        raise PolicyFileError(f"{path}: its 'data' member is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise PolicyFileError(f"{path}: its 'data' member is not a JSON object")
    spec = _PolicySpec.from_data(data, env, path)
    return spec.build(io.BytesIO(weights), data, device, path)


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-JSON constant {name}")


@dataclasses.dataclass(frozen=True)
class _PolicySpec:
    """What is needed to rebuild an SB3 actor-critic policy, read without unpickling."""

    policy_class: str
    observation_space: gym.spaces.Space
    action_space: gym.spaces.Discrete
    policy_kwargs: Mapping[str, Any]

    @classmethod
    def from_data(cls, data: Mapping[str, Any], env: gym.Env | None, path: Path) -> _PolicySpec:
        unsafe = _unsafe(path)
        policy_class = _policy_class(data.get("policy_class"), unsafe)
        obs_space = _box_space(data.get("observation_space"), env)
        if obs_space is None:
            if env is None:
                raise unsafe("its observation space is stored only pickled (pass env=, CLI --env)")
            obs_space = env.observation_space
        act_space = _discrete_space_of(data.get("action_space"))
        if act_space is None:
            if env is None or not isinstance(env.action_space, gym.spaces.Discrete):
                raise unsafe("its action space is not a readable Discrete space")
            act_space = env.action_space
        if data.get("use_sde") not in (None, False):
            raise unsafe("it uses state-dependent exploration (continuous actions)")
        kwargs = _policy_kwargs(data.get("policy_kwargs", {}), unsafe)
        return cls(policy_class, obs_space, act_space, kwargs)

    def build(self, weights: Any, data: Mapping[str, Any], device: str, path: Path) -> Any:
        import torch
        from stable_baselines3 import PPO
        from stable_baselines3.common import policies as sb3_policies
        from stable_baselines3.common import torch_layers

        kwargs = dict(self.policy_kwargs)
        for key, module in (
            ("activation_fn", torch.nn),
            ("features_extractor_class", torch_layers),
        ):
            if key in kwargs:
                kwargs[key] = getattr(module, kwargs[key])
        policy_cls = getattr(sb3_policies, self.policy_class)
        try:
            with torch.random.fork_rng(devices=[]):  # initialisation draws from torch's RNG
                policy = policy_cls(
                    self.observation_space, self.action_space, _zero_schedule, **kwargs
                )
        except (TypeError, ValueError, AssertionError, RuntimeError) as err:
            raise PolicyFileError(f"{path}: cannot rebuild its policy network: {err}") from None
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
            raise UnsafePolicyError(
                f"{path}: policy.pth is not a plain file of tensors (torch's weights-only "
                "loader refused it), so it could only be read by unpickling; pass "
                "trusted=True (CLI: --trust-policy-file) only if you trust this file"
            ) from None
        _check_state_dict(state, policy.state_dict(), path)
        policy.load_state_dict(state, strict=True)
        policy = policy.to(device)
        policy.set_training_mode(False)
        model = PPO(policy_cls, env=None, device=device, _init_setup_model=False)
        model.observation_space = self.observation_space
        model.action_space = self.action_space
        model.policy_kwargs = dict(kwargs)
        model.policy = policy
        for key, kind in _HYPERPARAMETERS.items():
            value = data.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                setattr(model, key, kind(value))
        if isinstance(data.get("learning_rate"), (int, float)):
            model.learning_rate = float(data["learning_rate"])
        meta = data.get("behavioral_metadata")
        if isinstance(meta, dict) and not _has_serialized(meta):
            model.behavioral_metadata = meta
        return model


def _zero_schedule(_: float) -> float:
    return 0.0


def _unsafe(path: Path) -> Callable[[str], UnsafePolicyError]:
    def make(why: str) -> UnsafePolicyError:
        return UnsafePolicyError(
            f"{path} cannot be loaded without unpickling: {why}; pass trusted=True "
            "(CLI: --trust-policy-file) only if you trust this file"
        )

    return make


def _has_serialized(value: Any) -> bool:
    if isinstance(value, dict):
        return ":serialized:" in value or any(_has_serialized(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_serialized(v) for v in value)
    return False


def _policy_class(entry: Any, unsafe: Callable[[str], UnsafePolicyError]) -> str:
    if isinstance(entry, dict) and entry.get("__module__") == _POLICY_MODULE:
        init = entry.get("__init__")
        for name in _POLICY_CLASSES:
            if isinstance(init, str) and init.startswith(f"<function {name}.__init__ "):
                return name
    raise unsafe(
        "its policy class is not one of stable-baselines3's "
        f"{', '.join(_POLICY_CLASSES)} (MlpPolicy, CnnPolicy)"
    )


def _box_space(entry: Any, env: gym.Env | None) -> gym.spaces.Box | None:
    """A Box from SB3's readable fields (shape, dtype, bounds), or None.

    Bounds are read from ``low_repr``/``high_repr`` (a number) or from the printed arrays
    ``low``/``high`` when complete. Where they are not readable (NumPy elides large
    arrays), ``env``'s bounds are used when its space has the same shape and dtype, and
    for float observations no bounds at all: SB3's networks use the bounds of integer
    (image) spaces only, so the policy computes the same either way.
    """
    if not isinstance(entry, dict) or entry.get(":type:") != "<class 'gymnasium.spaces.box.Box'>":
        return None
    shape, dtype = entry.get("_shape"), entry.get("dtype")
    if not (
        isinstance(shape, list)
        and all(type(d) is int and 0 < d <= 1 << 20 for d in shape)
        and math.prod(shape) <= 1 << 26
        and dtype in _BOX_DTYPES
    ):
        return None
    shape, dtype = tuple(shape), np.dtype(dtype)
    low = _bound(entry, "low", shape)
    high = _bound(entry, "high", shape)
    if low is None or high is None:
        theirs = None if env is None else env.observation_space
        if isinstance(theirs, gym.spaces.Box) and (theirs.shape, theirs.dtype) == (shape, dtype):
            return theirs
        if dtype.kind != "f":
            return None
        low, high = -np.inf, np.inf
    if dtype.kind in "iub" and not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        return None
    try:
        return gym.spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
    except (ValueError, TypeError, AssertionError):
        return None


def _bound(entry: Mapping[str, Any], key: str, shape: tuple[int, ...]) -> Any:
    """A Box bound from its readable text: a number, or a complete printed array."""
    text = entry.get(f"{key}_repr")
    try:
        return float(text)
    except (TypeError, ValueError):
        pass
    text = entry.get(key)
    if not isinstance(text, str) or "..." in text or len(text) > 1 << 20:
        return None
    try:
        values = [float(x) for x in text.replace("[", " ").replace("]", " ").split()]
    except ValueError:
        return None
    if len(values) != math.prod(shape):
        return None
    return np.asarray(values, dtype=np.float64).reshape(shape)


def _discrete_space_of(entry: Any) -> gym.spaces.Discrete | None:
    if not isinstance(entry, dict) or entry.get(":type:") != (
        "<class 'gymnasium.spaces.discrete.Discrete'>"
    ):
        return None
    try:
        n, start = int(str(entry.get("n"))), int(str(entry.get("start", 0)))
    except ValueError:
        return None
    if not 0 < n <= 1 << 20:
        return None
    return gym.spaces.Discrete(n, start=start)


def _class_name(text: Any, module: str, allowed: Sequence[str]) -> str | None:
    if isinstance(text, str):
        for name in allowed:
            if text == f"<class '{module}.{name}'>" or text == name:
                return name
    return None


def _policy_kwargs(entry: Any, unsafe: Callable[[str], UnsafePolicyError]) -> dict[str, Any]:
    """The policy's keyword arguments from their plain-JSON or readable fields."""
    if not isinstance(entry, dict):
        raise unsafe("its policy_kwargs are not a readable mapping")
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if key in (":type:", ":serialized:") or key in _IGNORED_POLICY_KWARGS:
            continue
        if key == "activation_fn":
            name = _class_name(value, "torch.nn.modules.activation", _ACTIVATIONS)
            if name is None and value == "<class 'torch.nn.modules.linear.Identity'>":
                name = "Identity"
        elif key == "features_extractor_class":
            name = _class_name(value, "stable_baselines3.common.torch_layers", _EXTRACTORS)
        elif key in _PLAIN_POLICY_KWARGS and _plain_json(value):
            out[key] = value
            continue
        else:
            raise unsafe(
                f"its policy_kwargs[{key!r}] = {str(value)[:80]!r} is not a known plain value"
            )
        if name is None:
            raise unsafe(f"its policy_kwargs[{key!r}] = {str(value)[:80]!r} is not a known class")
        out[key] = name
    return out


def _plain_json(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_plain_json(v) for v in value)
    if isinstance(value, dict):
        return ":serialized:" not in value and all(_plain_json(v) for v in value.values())
    return False


def _check_state_dict(state: Any, expected: Mapping[str, Any], path: Path) -> None:
    import torch

    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise PolicyFileError(f"{path}: policy.pth does not hold a mapping of tensors")
    missing, extra = set(expected) - set(state), set(state) - set(expected)
    if missing or extra:
        raise PolicyFileError(
            f"{path}: policy.pth does not fit the network its data describes (missing "
            f"{sorted(missing)[:4]}, unexpected {sorted(extra)[:4]})"
        )
    for key, tensor in state.items():
        want = expected[key]
        if tuple(tensor.shape) != tuple(want.shape) or tensor.dtype != want.dtype:
            raise PolicyFileError(
                f"{path}: weight {key!r} is {tensor.dtype} {tuple(tensor.shape)}, the network "
                f"needs {want.dtype} {tuple(want.shape)}"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise PolicyFileError(f"{path}: weight {key!r} holds NaN or infinite values")


def train_ppo(
    env_id: str,
    *,
    split: str | None = "train",
    env_kwargs: Mapping[str, Any] | None = None,
    total_timesteps: int,
    seed: int,
    n_envs: int = 4,
    policy: str | type = "MlpPolicy",
    progress_bar: bool = True,
    ppo_kwargs: Mapping[str, Any] | None = None,
    save_path: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    torch_threads: int | None = 1,
    checkpoint_every: int | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
) -> Any:
    """Train SB3 PPO on ``env_id`` (the base optimizer) with the env's training reward.

    Args:
        env_id: a registered gymnasium id, e.g. ``"behavioral/RedDoors-v0"``.
        split: passed to the env as ``split=``; None for envs without splits.
        env_kwargs: other env keyword arguments (e.g. ``training_reward="per_pour"``).
        total_timesteps: environment steps over all ``n_envs`` copies.
        seed: seeds Python/NumPy/torch (``set_random_seed``), PPO, and the vectorised
            envs (copy ``i`` is seeded ``seed + i`` by ``make_vec_env``).
        n_envs: parallel env copies (``DummyVecEnv``).
        policy: SB3 policy name or class (``"MlpPolicy"``, ``"CnnPolicy"``).
        progress_bar: show SB3's progress bar.
        ppo_kwargs: extra ``PPO(...)`` arguments (``n_steps``, ``learning_rate``, ...).
        save_path: if given, the model is saved there (SB3 zip, through
            :mod:`behavioral.files`, ``.zip`` appended when there is no suffix). The
            target is checked before training starts.
        overwrite: replace an existing ``save_path``.
        torch_threads: torch intra-op threads during training (restored afterwards);
            small MLP policies train several times faster on one thread than on a busy
            multi-core machine. None keeps torch's setting.
        checkpoint_every: keep a checkpoint every this many environment steps (at the
            first update boundary at or past each multiple, so a checkpoint holds the
            parameters trained on exactly the steps in its name; plus one before training
            and one at the end), saved like ``save_path`` as
            ``checkpoint_dir/ckpt_<steps, 9 digits>_steps.zip``; their
            ``behavioral_metadata`` adds ``checkpoint_timesteps``. Saving reads no
            random state: training is the same with or without checkpoints.
        checkpoint_dir: the checkpoints' directory (required with ``checkpoint_every``).

    Returns:
        The trained ``stable_baselines3.PPO``. Its attribute ``behavioral_metadata``
        (saved with it) records library version, env id, kwargs, split, seed and steps.

    Raises:
        InvalidArgumentError: non-positive ``total_timesteps``/``n_envs``/
            ``checkpoint_every``, ``checkpoint_every`` without ``checkpoint_dir``, a seed
            that is not a non-negative int, or ``split`` conflicting with
            ``env_kwargs["split"]``.
        OutputExistsError: ``save_path`` exists and ``overwrite`` is False.
    """
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.utils import set_random_seed

    import behavioral
    from behavioral import files
    from behavioral.checks import check_bool, check_int, check_seed

    total_timesteps = check_int(total_timesteps, "total_timesteps", minimum=1)
    n_envs = check_int(n_envs, "n_envs", minimum=1)
    seed = check_seed(seed)
    check_bool(overwrite, "overwrite")
    if save_path is not None:
        save_path = Path(save_path)
        if save_path.suffix == "":
            save_path = save_path.with_name(save_path.name + ".zip")
        files.check_target(save_path, kind="file", overwrite=overwrite)
    callback = None
    if checkpoint_every is not None:
        checkpoint_every = check_int(checkpoint_every, "checkpoint_every", minimum=1)
        if checkpoint_dir is None:
            raise InvalidArgumentError("checkpoint_every needs checkpoint_dir")
        callback = _checkpoint_callback(checkpoint_every, Path(checkpoint_dir))
    kwargs = dict(env_kwargs or {})
    if split is not None:
        if kwargs.get("split", split) != split:
            raise InvalidArgumentError(
                f"split={split!r} conflicts with env_kwargs['split']={kwargs['split']!r}"
            )
        kwargs["split"] = split
    set_random_seed(seed)
    venv = make_vec_env(env_id, n_envs=int(n_envs), seed=seed, env_kwargs=kwargs)
    model = PPO(policy, venv, seed=seed, device="cpu", verbose=0, **dict(ppo_kwargs or {}))
    model.behavioral_metadata = {
        "behavioral_version": behavioral.__version__,
        "env_id": env_id,
        "env_kwargs": files.jsonable(kwargs),
        "split": split,
        "seed": int(seed),
        "n_envs": int(n_envs),
        "total_timesteps": int(total_timesteps),
        "ppo_kwargs": files.jsonable(dict(ppo_kwargs or {})),
    }
    import torch

    threads = torch.get_num_threads()
    if torch_threads is not None:
        torch.set_num_threads(int(torch_threads))
    try:
        model.learn(
            total_timesteps=int(total_timesteps), progress_bar=progress_bar, callback=callback
        )
    finally:
        torch.set_num_threads(threads)
    if save_path is not None:
        save_sb3(model, save_path, overwrite=overwrite)
    return model


def _checkpoint_callback(every: int, directory: Path) -> Any:
    """An SB3 callback saving the model as ``directory/ckpt_<steps>_steps.zip`` at the
    start of the first rollout at or past every multiple of ``every`` environment steps
    (0 included) and at the end: each checkpoint holds the parameters trained on exactly
    the steps its name says."""
    from stable_baselines3.common.callbacks import BaseCallback

    class _Checkpoints(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self._next = 0
            self._last: int | None = None

        def _save(self) -> None:
            steps = int(self.model.num_timesteps)
            meta = getattr(self.model, "behavioral_metadata", None)
            if isinstance(meta, dict):
                self.model.behavioral_metadata = {**meta, "checkpoint_timesteps": steps}
            try:
                save_sb3(self.model, directory / f"ckpt_{steps:09d}_steps.zip")
            finally:
                if isinstance(meta, dict):
                    self.model.behavioral_metadata = meta
            self._last = steps

        def _on_rollout_start(self) -> None:
            if self.model.num_timesteps >= self._next:
                self._save()
                while self._next <= self.model.num_timesteps:
                    self._next += every

        def _on_step(self) -> bool:
            return True

        def _on_training_end(self) -> None:
            if self._last != self.model.num_timesteps:
                self._save()

    directory.mkdir(parents=True, exist_ok=True)
    return _Checkpoints()
