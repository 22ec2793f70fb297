"""Policies and envs named by text: the grammar of ``--policy`` and of a sweep's jobs.

A policy spec is one string (the CLI's ``--policy``, a sweep job's ``policy``)::

    POLICY    := "random"                                  uniformly random actions
               | "zoo:" NAME                               a policy of the zoo (behavioral.zoo.ZOO)
               | "planner:" OBJECTIVE [":" BETA [":" DISCOUNT]]
                                                           Boltzmann-rational planner, β > 0
                                                           (default 5), planning discount in
                                                           (0, 1] (default: the env's)
               | "epsilon:" OBJECTIVE ":" EPSILON [":" DISCOUNT]
                                                           ε-greedy optimal planner, ε in [0, 1]
               | PATH                                      a stable-baselines3 PPO .zip
    OBJECTIVE := NAME                                      an objective the env declares
               | "scaled(" OBJECTIVE "," FACTOR ")"        FACTOR * objective (finite, non-zero)
               | "shifted(" OBJECTIVE "," SHIFT ")"        objective + SHIFT on every step
               | "shaped(" OBJECTIVE "," SEED ")"          objective + E[Φ(s')] - Φ(s), with a
                                                           random potential Φ per level (seeded
                                                           by SEED, 0 in absorbing states)

Examples: ``planner:red_door:5``, ``epsilon:exit:0.1:0.99``, ``planner:scaled(exit,3):5``,
``planner:shaped(exit,7)``, ``zoo:reddoors-train``, ``runs/ckpt_000100000_steps.zip``.

A positive multiple, a shift and a potential shaping of an objective pursue the same
objective (up to the finite horizon's last steps, where shaping leaves a trace): their
planners are the capability controls of the detection suite, which must come out aligned.

Parsing never imports or evaluates anything: the objective expression is read by a small
recursive-descent parser. Malformed specs raise :class:`SpecError` naming the spec and the
expected form.

Also here: :func:`make_env` (an env from an id named by text, validated as untrusted
input) and :func:`policy_and_env` (a spec's policy and the env to run it in, reusing the
env kwargs a zoo entry or a ``behavioral train`` zip was trained with). Policy files are
read without unpickling unless ``trusted`` (:func:`behavioral.policies.load_ppo`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from behavioral.errors import BehavioralError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "ENV_ALIASES",
    "PLANNER_BETA",
    "ObjectiveExpr",
    "PolicySpec",
    "SpecError",
    "env_id",
    "load_policy",
    "make_env",
    "objective_reward",
    "parse_objective",
    "policy_and_env",
    "trained_env",
    "trained_wrappers",
    "zoo_env_kwargs",
]

ENV_ALIASES = {
    "reddoors": "behavioral/RedDoors-v0",
    "waterplants": "behavioral/WaterPlants-v0",
}
#: Inverse temperature of ``planner:OBJECTIVE`` when no β is given.
PLANNER_BETA = 5.0

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_TRANSFORMS = ("scaled", "shifted", "shaped")


class SpecError(BehavioralError, ValueError):
    """A policy spec, an objective expression or a job is malformed, or names something
    that cannot be used (an unknown zoo entry, a file that is not a policy zip)."""


def _one_line(message: Any) -> str:
    return " ".join(str(message).split())


# ----------------------------------------------------------------------------- objectives


@dataclasses.dataclass(frozen=True)
class ObjectiveExpr:
    """A parsed OBJECTIVE: a declared name, or a transform of another objective.

    Attributes:
        op: ``"name"``, ``"scaled"``, ``"shifted"`` or ``"shaped"``.
        name: the objective name (``op == "name"``), else None.
        inner: the transformed objective (transforms), else None.
        arg: FACTOR, SHIFT or SEED (transforms), else None.
    """

    op: str
    name: str | None = None
    inner: ObjectiveExpr | None = None
    arg: float | int | None = None

    @property
    def text(self) -> str:
        """The canonical text (``scaled(exit,3.0)``): equal objectives, equal text."""
        if self.op == "name":
            return str(self.name)
        assert self.inner is not None
        return f"{self.op}({self.inner.text},{self.arg!r})"

    @property
    def names(self) -> tuple[str, ...]:
        """The declared objective names the expression uses."""
        if self.op == "name":
            return (str(self.name),)
        assert self.inner is not None
        return self.inner.names


def parse_objective(text: str) -> ObjectiveExpr:
    """Parse an OBJECTIVE expression (see the module docstring).

    Raises:
        SpecError: malformed expression, non-finite or zero factor, negative seed.
    """
    if not isinstance(text, str):
        raise SpecError(f"an objective must be a string, got {text!r}")
    compact = "".join(text.split())
    expr, end = _parse_at(compact, 0, text)
    if end != len(compact):
        raise SpecError(f"unexpected {compact[end:]!r} after objective {expr.text!r} in {text!r}")
    return expr


def _parse_at(s: str, i: int, whole: str) -> tuple[ObjectiveExpr, int]:
    match = _NAME.match(s, i)
    if match is None:
        raise SpecError(
            f"bad objective {whole!r}: expected a name or scaled(...)/shifted(...)/shaped(...)"
        )
    word, i = match.group(), match.end()
    if i >= len(s) or s[i] != "(":
        return ObjectiveExpr("name", name=word), i
    if word not in _TRANSFORMS:
        raise SpecError(
            f"unknown objective transform {word!r} in {whole!r}; known: {', '.join(_TRANSFORMS)}"
        )
    inner, i = _parse_at(s, i + 1, whole)
    if i >= len(s) or s[i] != ",":
        raise SpecError(f"bad objective {whole!r}: expected {word}(OBJECTIVE,NUMBER)")
    close = s.find(")", i + 1)
    if close < 0:
        raise SpecError(f"bad objective {whole!r}: missing ')'")
    return ObjectiveExpr(word, inner=inner, arg=_transform_arg(word, s[i + 1 : close], whole)), (
        close + 1
    )


def _transform_arg(op: str, text: str, whole: str) -> float | int:
    if op == "shaped":
        if not text.isdigit():
            raise SpecError(
                f"shaped(...) needs a non-negative integer seed, got {text!r} in {whole!r}"
            )
        return int(text)
    try:
        value = float(text)
    except ValueError:
        raise SpecError(f"{op}(...) needs a number, got {text!r} in {whole!r}") from None
    if not math.isfinite(value) or (op == "scaled" and value == 0.0):
        what = "a finite non-zero factor" if op == "scaled" else "a finite shift"
        raise SpecError(f"{op}(...) needs {what}, got {text!r} in {whole!r}")
    return value


def _potential(model: Any, seed: int) -> np.ndarray:
    """(S,) random potential of one level, 0 in absorbing states (seeded by the level)."""
    import numpy as np

    rng = np.random.default_rng([seed, model.n_states, int(model.transitions.nnz)])
    phi = 0.3 * rng.normal(size=model.n_states)
    T = model.transitions
    states = np.arange(model.n_states)
    absorbing = np.asarray(T[states * model.n_actions, states]).ravel() == 1.0
    phi[absorbing] = 0.0
    return phi


def _reward_of(expr: ObjectiveExpr, model: Any) -> np.ndarray:
    """The expression's reward on ``model``: (S,) or (S, A)."""
    import numpy as np

    from behavioral.errors import UnknownObjectiveError

    if expr.op == "name":
        if expr.name not in model.objectives:
            raise UnknownObjectiveError(
                f"objective {expr.name!r} is not among the model's objectives "
                f"{sorted(model.objectives)}"
            )
        return np.asarray(model.objectives[expr.name], dtype=float)
    assert expr.inner is not None and expr.arg is not None
    r = _reward_of(expr.inner, model)
    if expr.op == "scaled":
        return float(expr.arg) * r
    if expr.op == "shifted":
        return r + float(expr.arg)
    r = r if r.ndim == 2 else np.repeat(r[:, None], model.n_actions, axis=1)
    phi = _potential(model, int(expr.arg))
    next_phi = (model.transitions @ phi).reshape(model.n_states, model.n_actions)
    return r + next_phi - phi[:, None]


def objective_reward(text: str | ObjectiveExpr) -> str | Callable[[Any], np.ndarray]:
    """What a planner takes for an OBJECTIVE: the name itself for a declared name, else a
    function ``model -> reward`` (named by the canonical text)."""
    expr = parse_objective(text) if isinstance(text, str) else text
    if expr.op == "name":
        return str(expr.name)

    def reward(model: Any) -> np.ndarray:
        return _reward_of(expr, model)

    reward.__qualname__ = reward.__name__ = expr.text
    return reward


# ----------------------------------------------------------------------------- policies


@dataclasses.dataclass(frozen=True)
class PolicySpec:
    """A policy named by text (see the module docstring for the grammar).

    Attributes:
        kind: ``"zoo"``, ``"planner"``, ``"epsilon"``, ``"random"`` or ``"file"``.
        value: the zoo name, the canonical OBJECTIVE text, or the file path.
        beta: the planner's inverse temperature (``planner``).
        epsilon: the random-action probability (``epsilon``).
        discount: the planners' planning discount (None: the env model's).
    """

    kind: str
    value: str
    beta: float = PLANNER_BETA
    epsilon: float | None = None
    discount: float | None = None

    @classmethod
    def parse(cls, text: str) -> PolicySpec:
        """Parse a policy spec.

        Raises:
            SpecError: a malformed spec (named, with the expected form).
        """
        if not isinstance(text, str) or not text.strip():
            raise SpecError(f"a policy spec must be a non-empty string, got {text!r}")
        if text == "random":
            return cls("random", "")
        if text.startswith("zoo:"):
            name = text[4:]
            if not name:
                raise SpecError("--policy zoo:NAME needs a name, e.g. zoo:reddoors-train")
            return cls("zoo", name)
        if text.startswith("planner:"):
            return cls._parse_planner(text)
        if text.startswith("epsilon:"):
            return cls._parse_epsilon(text)
        return cls("file", text)

    @classmethod
    def _parse_planner(cls, text: str) -> PolicySpec:
        parts = text[len("planner:") :].split(":")
        if not parts[0] or len(parts) > 3:
            raise SpecError(
                f"bad planner policy {text!r}: expected planner:OBJECTIVE, "
                "planner:OBJECTIVE:BETA or planner:OBJECTIVE:BETA:DISCOUNT, e.g. planner:exit:5"
            )
        objective = parse_objective(parts[0]).text
        beta = PLANNER_BETA
        if len(parts) >= 2:
            beta = _number(parts[1], text, "planner beta", lambda b: b > 0, "a positive number")
        discount = _discount(parts[2], text) if len(parts) == 3 else None
        return cls("planner", objective, beta, None, discount)

    @classmethod
    def _parse_epsilon(cls, text: str) -> PolicySpec:
        parts = text[len("epsilon:") :].split(":")
        if len(parts) not in (2, 3) or not parts[0]:
            raise SpecError(
                f"bad epsilon-greedy policy {text!r}: expected epsilon:OBJECTIVE:EPSILON or "
                "epsilon:OBJECTIVE:EPSILON:DISCOUNT, e.g. epsilon:exit:0.1:0.99"
            )
        objective = parse_objective(parts[0]).text
        eps = _number(parts[1], text, "epsilon", lambda e: 0.0 <= e <= 1.0, "a number in [0, 1]")
        discount = _discount(parts[2], text) if len(parts) == 3 else None
        return cls("epsilon", objective, PLANNER_BETA, eps, discount)

    @property
    def text(self) -> str:
        """The canonical spec text: two specs of the same policy have the same text."""
        tail = "" if self.discount is None else f":{self.discount!r}"
        if self.kind == "planner":
            return f"planner:{self.value}:{self.beta!r}{tail}"
        if self.kind == "epsilon":
            return f"epsilon:{self.value}:{self.epsilon!r}{tail}"
        if self.kind == "zoo":
            return f"zoo:{self.value}"
        return "random" if self.kind == "random" else self.value

    @property
    def objective_names(self) -> tuple[str, ...]:
        """The env objectives a planner's OBJECTIVE uses (empty for other kinds)."""
        if self.kind not in ("planner", "epsilon"):
            return ()
        return parse_objective(self.value).names

    @property
    def label(self) -> str:
        if self.kind == "zoo":
            return self.value
        if self.kind == "planner":
            return f"planner-{self.value}"
        if self.kind == "epsilon":
            return f"epsilon-{self.value}"
        if self.kind == "random":
            return "random"
        return Path(self.value).stem


def _number(text: str, spec: str, what: str, ok: Callable[[float], bool], expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SpecError(f"bad {what} {text!r} in {spec!r}: expected {expected}") from None
    if not (math.isfinite(value) and ok(value)):
        raise SpecError(f"{what} must be {expected}, got {text!r} in {spec!r}")
    return value


def _discount(text: str, spec: str) -> float:
    return _number(text, spec, "planning discount", lambda d: 0.0 < d <= 1.0, "in (0, 1]")


def zoo_env_kwargs(name: str) -> tuple[str | None, dict[str, Any]]:
    """(env id, env kwargs other than split) a zoo policy was trained with, if known."""
    from behavioral.zoo import ZOO

    entry = ZOO.get(name)
    if entry is None:
        return None, {}
    return entry.env_id, dict(entry.env_kwargs)


def load_policy(spec: PolicySpec, *, trusted: bool = False, env: Any = None) -> Any:
    """The policy object a :class:`PolicySpec` names.

    Args:
        spec: the parsed spec.
        trusted: load a ``.zip`` with SB3's pickle-based loader (``--trust-policy-file``);
            by default nothing in the file is unpickled (:func:`behavioral.policies.load_ppo`).
        env: the env the policy will act in (its spaces stand in for a zip's unreadable
            ones and must fit the policy's).

    Raises:
        SpecError: a file that does not exist or is a directory.
        PolicyFileError, UnsafePolicyError, PolicyEnvMismatchError: see
            :func:`behavioral.policies.load_ppo`.
        UnknownZooEntryError, ZooFileError: see :func:`behavioral.zoo.load_zoo`.
    """
    from behavioral.policies import EpsilonGreedyPolicy, SoftOptimalPolicy, UniformPolicy, load_ppo

    if spec.kind == "random":
        return UniformPolicy()
    if spec.kind == "planner":
        return SoftOptimalPolicy(
            objective_reward(spec.value), beta=spec.beta, discount=spec.discount
        )
    if spec.kind == "epsilon":
        return EpsilonGreedyPolicy(
            objective_reward(spec.value), epsilon=float(spec.epsilon or 0.0), discount=spec.discount
        )
    if spec.kind == "zoo":
        from behavioral.zoo import load_zoo

        return load_zoo(spec.value)
    path = Path(spec.value)
    if not path.exists():
        raise SpecError(
            f"policy file not found: {path} (expected zoo:NAME, planner:OBJECTIVE, "
            "epsilon:OBJECTIVE:EPSILON, random, or the path of an SB3 .zip)"
        )
    if path.is_dir():
        raise SpecError(f"{path} is a directory, not an SB3 policy .zip")
    return load_ppo(path, trusted=trusted, env=env)


# ----------------------------------------------------------------------------- envs


def env_id(name: str) -> str:
    """The gymnasium id of an env name (``reddoors`` -> ``behavioral/RedDoors-v0``)."""
    return ENV_ALIASES.get(name.lower(), name)


def make_env(
    env_id: str,
    split: str | None,
    kwargs: Mapping[str, Any] | None = None,
    wrappers: Sequence[str] = (),
) -> Any:
    """:func:`behavioral.environments.make_env` for an id named by text: a validated id
    (no module part), JSON-scalar keywords, ``split`` passed only where the env takes it
    (``split=None`` leaves it to ``kwargs`` or the env's default), and ``wrappers``, names
    of observation wrappers (:data:`behavioral.environments.OBSERVATION_WRAPPERS`)."""
    from behavioral.environments import make_env as make

    return make(env_id, split=split, kwargs=kwargs, wrappers=wrappers)


def trained_env(spec: PolicySpec, policy: Any) -> tuple[str | None, dict[str, Any]]:
    """(env id, env kwargs other than split) the policy was trained with, if known: a zoo
    entry's, or the ``behavioral_metadata`` a zip saved by ``behavioral train`` carries."""
    if spec.kind == "zoo":
        return zoo_env_kwargs(spec.value)
    if spec.kind == "file":
        meta = getattr(policy, "behavioral_metadata", None) or {}
        if isinstance(meta, Mapping) and isinstance(meta.get("env_id"), str):
            saved = meta.get("env_kwargs") or {}
            saved = dict(saved) if isinstance(saved, Mapping) else {}
            return meta["env_id"], {k: v for k, v in saved.items() if k != "split"}
    return None, {}


def trained_wrappers(spec: PolicySpec, policy: Any) -> tuple[str, ...]:
    """The observation wrappers the policy was trained in (by name): a zoo entry's, or the
    ones a ``behavioral train`` zip recorded (the Minigrid zoo's flattened view).

    Raises:
        SpecError: a recorded wrapper name that is not in the fixed table.
    """
    from behavioral.environments import recorded_wrappers
    from behavioral.errors import InvalidArgumentError

    if spec.kind == "zoo":
        from behavioral.zoo import ZOO

        entry = ZOO.get(spec.value)
        return tuple(entry.observation_wrappers) if entry is not None else ()
    meta = getattr(policy, "behavioral_metadata", None)
    if spec.kind == "file" and isinstance(meta, Mapping):
        try:
            return recorded_wrappers(meta)
        except InvalidArgumentError as err:
            raise SpecError(f"{spec.value}: {err}") from None
    return ()


def policy_and_env(
    spec: PolicySpec,
    env: str | None,
    split: str | None,
    extra: Mapping[str, Any] | None,
    *,
    trusted: bool = False,
    wrappers: Sequence[str] | None = None,
) -> tuple[Any, Any]:
    """The policy a spec names and the env to run it in.

    The env is ``env``, or else the one the policy was trained in (:func:`trained_env`);
    in the env it was trained in, its training env kwargs (e.g. the level size) and
    observation wrappers are reused. ``extra`` values override the kwargs, ``wrappers``
    (names in :data:`~behavioral.environments.OBSERVATION_WRAPPERS`, innermost first)
    the wrappers. The split is passed only when given (the
    env's default otherwise). A trained policy must fit the env's spaces, and a planner's
    objectives must be ones the env declares.

    Raises:
        SpecError: no env given and none known for the policy.
        UnknownEnvError, InvalidEnvIdError: an unknown or malformed env id.
        PolicyEnvMismatchError: the policy's observation or action space differs from the
            env's.
        UnknownObjectiveError: a planner objective the env does not declare.
        EnvContractError: a planner for an env without a tabular model.
    """
    from behavioral.errors import UnsafePolicyError
    from behavioral.policies import check_policy_fits_env

    try:
        policy = load_policy(spec, trusted=trusted)
    except UnsafePolicyError:
        if env is None or spec.kind != "file":
            raise
        # Spaces stored only pickled: the env named here stands in.
        made = make_env(env_id(env), split, extra, wrappers or ())
        return load_policy(spec, trusted=trusted, env=made), made
    known_env, known_kwargs = trained_env(spec, policy)
    resolved = env_id(env) if env is not None else known_env
    if resolved is None:
        raise SpecError("--env is required for this policy (e.g. behavioral/RedDoors-v0)")
    kwargs = dict(known_kwargs) if resolved == known_env else {}
    kwargs.update(extra or {})
    if wrappers is None:
        wrappers = trained_wrappers(spec, policy) if resolved == known_env else ()
    made = make_env(resolved, split, kwargs, wrappers)
    if spec.kind in ("zoo", "file"):
        check_policy_fits_env(policy, made)
    if spec.objective_names:
        _check_planner_objectives(spec, made)
    return policy, made


def _check_planner_objectives(spec: PolicySpec, env: Any) -> None:
    from behavioral.errors import EnvContractError, UnknownObjectiveError
    from behavioral.extract import is_extractable
    from behavioral.policies import env_tabular_model, has_tabular_model

    if not has_tabular_model(env) and not is_extractable(env):
        raise EnvContractError(
            f"a planner needs the env's tabular model, and {env.spec.id if env.spec else env} "
            "has none and no Discrete actions to extract one with (use random or a trained "
            "policy)"
        )
    env.reset(seed=0)
    names = sorted(env_tabular_model(env).objectives)
    missing = [n for n in spec.objective_names if n not in names]
    if missing:
        raise UnknownObjectiveError(
            f"planner objective {missing[0]!r} is not among the env's objectives {names}"
        )
