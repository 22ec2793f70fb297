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

import inspect
import math
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from behavioral.errors import (
    EnvContractError,
    InvalidActionError,
    InvalidArgumentError,
    InvalidModelError,
    UnknownObjectiveError,
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
    "as_policy",
    "check_action",
    "env_state_index",
    "env_tabular_model",
    "epsilon_greedy_policy",
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
    tabular envs, :func:`behavioral.tabular.from_seals` (one model for every episode).

    Raises:
        EnvContractError: the env offers neither, or returns something else than a
            :class:`~behavioral.tabular.TabularModel`.
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
    raise EnvContractError(
        f"{type(u).__name__} has no tabular_model() and is not a seals tabular env"
    )


def env_state_index(env: gym.Env) -> int:
    """Index of the env's current state in :func:`env_tabular_model` (after ``reset``).

    Raises:
        EnvContractError: the env has no ``state_index()`` (nor seals' ``state``), or
            has not been reset.
    """
    u = env.unwrapped
    if callable(getattr(u, "state_index", None)):
        return int(u.state_index())
    if _is_seals_tabular(u):
        if getattr(u, "_cur_state", None) is None:
            raise EnvContractError("the env has no current state: call reset() first")
        return int(u.state)
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


class SB3Policy:
    """Adapter for a stable-baselines3 algorithm or ``BasePolicy`` (``predict``).

    Stochastic actions of actor-critic policies with a categorical action distribution
    (PPO, A2C on ``Discrete`` actions) are sampled with the ``rng`` given to :meth:`act`
    from the probabilities the network outputs. Other models (DQN, recurrent policies,
    anything exposing only ``predict``) call ``predict`` inside a forked torch RNG seeded
    from ``rng``, so results are reproducible and the global torch RNG is left untouched
    (DQN's ε-exploration in ``predict(deterministic=False)`` reads NumPy's global RNG,
    which SB3 does not let us replace). Recurrent state is kept between steps and
    cleared by :meth:`reset`.
    """

    def __init__(self, model: Any, *, description: str | None = None) -> None:
        if not callable(getattr(model, "predict", None)):
            raise UnsupportedPolicyError(f"{type(model).__name__} has no predict()")
        self.model = model
        self._state: Any = None
        self._episode_start = True
        self._description = description or _describe_sb3(model)

    @property
    def description(self) -> str:
        return self._description

    def _torch_policy(self) -> Any:
        from stable_baselines3.common.policies import ActorCriticPolicy

        policy = getattr(self.model, "policy", self.model)
        if not isinstance(policy, ActorCriticPolicy):
            return None
        # Recurrent policies take (obs, lstm_states, episode_starts): use predict().
        if len(inspect.signature(policy.get_distribution).parameters) != 1:
            return None
        return policy

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        del env, rng
        self._state = None
        self._episode_start = True

    def action_probabilities(self, obs: Any) -> np.ndarray | None:
        """(A,) action probabilities on ``obs``, or None when the model has no
        categorical action distribution to read them from."""
        import torch
        from stable_baselines3.common.distributions import CategoricalDistribution

        policy = self._torch_policy()
        if policy is None:
            return None
        policy.set_training_mode(False)
        with torch.no_grad():
            obs_t, vectorized = policy.obs_to_tensor(obs)
            if vectorized and obs_t.shape[0] != 1:
                raise EnvContractError("act() takes one observation, not a batch")
            dist = policy.get_distribution(obs_t)
            if not isinstance(dist, CategoricalDistribution):
                return None
            probs = dist.distribution.probs[0].cpu().numpy().astype(np.float64)
        return probs

    def act(
        self, obs: Any, env: gym.Env, rng: np.random.Generator, *, deterministic: bool = False
    ) -> int:
        space = _discrete_space(env)
        if not deterministic:
            probs = self.action_probabilities(obs)
            if probs is not None:
                if probs.shape != (space.n,) or not np.all(np.isfinite(probs)):
                    raise InvalidActionError(
                        f"the policy's action probabilities {probs!r} do not fit {space!r}",
                        probs,
                    )
                a = int(rng.choice(space.n, p=probs / probs.sum()))
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
        a = int(np.argmax(p)) if deterministic else int(rng.choice(p.shape[0], p=p))
        self._t += 1
        return a + int(env.action_space.start)

    def _discount_repr(self) -> str:
        return "" if self.discount is None else f", discount={self.discount!r}"

    def _objective_repr(self) -> str:
        if isinstance(self.objective, str):
            return repr(self.objective)
        return getattr(self.objective, "__qualname__", repr(self.objective))


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

    def __repr__(self) -> str:
        return f"EpsilonGreedyPolicy(objective={self._objective_repr()}, epsilon={self.epsilon!r}{self._discount_repr()})"


# --------------------------------------------------------------------------- adapter


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


def save_sb3(model: Any, path: str | os.PathLike[str]) -> Path:
    """Save an SB3 model in its zip format, atomically (temp file + ``os.replace``).

    ``.zip`` is appended when ``path`` has no suffix (as SB3 does). Returns the path
    written.
    """
    path = Path(path)
    if path.suffix == "":
        path = path.with_name(path.name + ".zip")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            model.save(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_ppo(path: str | os.PathLike[str], *, device: str = "cpu") -> Any:
    """Load a PPO model saved by :func:`train_ppo` / :func:`save_sb3`.

    SB3's zip format is trusted input: like any pickle-based format it can run code,
    so load only files you or the package produced.
    """
    from stable_baselines3 import PPO

    return PPO.load(path, device=device)


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
        save_path: if given, the model is saved there (SB3 zip, atomically, ``.zip``
            appended when there is no suffix).
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
            ``checkpoint_every``, ``checkpoint_every`` without ``checkpoint_dir``, or
            ``split`` conflicting with ``env_kwargs["split"]``.
    """
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.utils import set_random_seed

    import behavioral

    if int(total_timesteps) < 1:
        raise InvalidArgumentError(f"total_timesteps must be >= 1, got {total_timesteps}")
    if int(n_envs) < 1:
        raise InvalidArgumentError(f"n_envs must be >= 1, got {n_envs}")
    callback = None
    if checkpoint_every is not None:
        if int(checkpoint_every) < 1 or checkpoint_dir is None:
            raise InvalidArgumentError(
                f"checkpoint_every must be >= 1 and needs checkpoint_dir, got "
                f"{checkpoint_every!r} and {checkpoint_dir!r}"
            )
        callback = _checkpoint_callback(int(checkpoint_every), Path(checkpoint_dir))
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
        "env_kwargs": {k: _json_scalar(v) for k, v in kwargs.items()},
        "split": split,
        "seed": int(seed),
        "n_envs": int(n_envs),
        "total_timesteps": int(total_timesteps),
        "ppo_kwargs": {k: _json_scalar(v) for k, v in dict(ppo_kwargs or {}).items()},
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
        save_sb3(model, save_path)
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


def _json_scalar(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_json_scalar(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_scalar(v) for k, v in value.items()}
    return repr(value)
