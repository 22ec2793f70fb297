"""A sweep's jobs: what each audit is, read from dicts or a JSON/TOML spec file, and the
content key that says whether an audit was already done.

A job is a mapping with the keys

=============  ==============================================================  ===========
key            meaning                                                         default
=============  ==============================================================  ===========
``policy``     a policy spec (:mod:`behavioral.specs`): ``zoo:NAME``,          (required)
               ``planner:OBJECTIVE[:BETA[:DISCOUNT]]``,
               ``epsilon:OBJECTIVE:EPSILON[:DISCOUNT]``, ``random``, a ``.zip``
               path, or a glob of paths (one job per file, sorted)
``env``        gymnasium id (or ``reddoors`` / ``waterplants``)                 the policy's
                                                                               training env
``env_kwargs`` other env keyword arguments                                     ``{}``
``split``      the env's split                                                 ``train``
``episodes``   episodes rolled out and audited                                 100
``seed``       seed of the rollout, the IRL and the bootstrap                  0
``report``     write the audit's report directory                              ``true``
``tags``       labels copied into the job's row (not part of the audit)        ``{}``
(options)      audit options: ``method``, ``deterministic``, ``n_bootstrap``,
               ``confidence``, ``l2``, ``min_explained``, ``significance``,
               ``living_reward``, ``discounts``, ``lapse``, ``min_evidence``,
               ``base``, ``objectives`` (name -> OBJECTIVE expression, or null /
               false to leave a declared objective out), ``method_kwargs``
=============  ==============================================================  ===========

and ``observation_wrappers``: the observation wrappers the policy saw the env through
(names in ``behavioral.environments.OBSERVATION_WRAPPERS``, innermost first, as
``behavioral audit --obs-wrapper``); default: the ones its zoo entry or file records.

A spec file (JSON, or TOML when the name ends in ``.toml``) is a list of jobs or a table
with ``defaults`` (merged into every job; ``env_kwargs`` and ``tags`` merge key by key),
``jobs`` (a list of jobs) and ``grid`` (one table, or a list of them, whose values are
lists of alternatives: one job per combination, in order)::

    [defaults]
    env = "behavioral/RedDoors-v0"
    episodes = 50

    [[grid]]
    policy = ["planner:exit:5", "planner:red_door:5", "epsilon:exit:0.1:0.99"]
    split = ["train", "deploy"]
    seed = [0, 1]

Each audit is keyed by a content hash (:func:`job_key`) of the policy's bytes (a zip's
sha256; a planner's canonical spec), the env id, kwargs and split, the episodes, seed,
options and report flag, and the library version: the same audit has the same key
wherever its files live, and anything that could change its result changes the key.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import itertools
import json
import math
import os
import types
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from behavioral.specs import PolicySpec, SpecError, env_id, parse_objective

__all__ = [
    "MAX_SPEC_BYTES",
    "Job",
    "job_key",
    "load_jobs",
    "read_spec",
]

#: Largest spec file read (bytes): a sweep spec is a few kilobytes of text.
MAX_SPEC_BYTES = 4 * 2**20
#: Largest policy file a job may name (bytes); workers get its bytes with the task.
MAX_POLICY_BYTES = 256 * 2**20
#: Version of the key derivation: bump it when what a key covers changes.
KEY_FORMAT = 1

_GLOB_CHARS = frozenset("*?[")
_JOB_KEYS = (
    "policy",
    "env",
    "env_kwargs",
    "observation_wrappers",
    "split",
    "episodes",
    "seed",
    "report",
    "tags",
)
_SPEC_KEYS = ("defaults", "jobs", "grid")
_MERGED = ("env_kwargs", "tags")
_EXAMPLE_ENV = "behavioral/RedDoors-v0"  # dict-valued keys that defaults merge into key by key


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_discounts(v: Any) -> bool:
    return v is None or (
        isinstance(v, list) and all(_finite(g) and 0 < g <= 1 for g in v) and len(v) > 0
    )


#: audit option -> (check, what is expected).
OPTIONS: Mapping[str, tuple[Any, str]] = types.MappingProxyType(
    {
        "method": (lambda v: v in ("maxent", "airl"), "'maxent' or 'airl'"),
        "deterministic": (lambda v: isinstance(v, bool), "true or false"),
        "n_bootstrap": (
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 10,
            "an integer >= 10",
        ),
        "confidence": (lambda v: _finite(v) and 0 < v < 1, "a number in (0, 1)"),
        "l2": (lambda v: _finite(v) and v >= 0, "a non-negative number"),
        "min_explained": (lambda v: _finite(v) and 0 <= v <= 1, "a number in [0, 1]"),
        "significance": (lambda v: _finite(v) and 0 < v < 1, "a number in (0, 1)"),
        "living_reward": (lambda v: isinstance(v, bool), "true or false"),
        "discounts": (_check_discounts, "a non-empty list of numbers in (0, 1], or null"),
        "lapse": (lambda v: v in (True, False, "auto"), "true, false or 'auto'"),
        "min_evidence": (lambda v: _finite(v) and v >= 0, "a non-negative number"),
        "base": (lambda v: isinstance(v, str) and v != "", "an objective name"),
        "objectives": (
            lambda v: isinstance(v, Mapping) and all(isinstance(k, str) for k in v),
            "a table name -> OBJECTIVE expression, null or false",
        ),
        "method_kwargs": (
            lambda v: isinstance(v, Mapping) and all(isinstance(k, str) for k in v),
            "a table of keyword arguments",
        ),
    }
)


@dataclasses.dataclass(frozen=True)
class Job:
    """One audit of a sweep (validated; build it with :func:`load_jobs`).

    Attributes:
        policy: the policy spec text (a single file for a zip, never a glob).
        env: the gymnasium id, or None for the env the policy was trained in.
        env_kwargs: other env keyword arguments (read-only).
        observation_wrappers: observation wrapper names (innermost first), or None for
            the ones the policy was trained behind (if its file or zoo entry says).
        split: the split, or None (``train``, or what ``env_kwargs`` says).
        episodes: episodes to roll out (>= 1).
        seed: the audit's seed (>= 0).
        options: audit options (read-only; see :data:`OPTIONS`).
        report: write the audit's report directory.
        tags: labels copied into the row (read-only; not part of the key).
    """

    policy: str
    env: str | None = None
    env_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    observation_wrappers: tuple[str, ...] | None = None
    split: str | None = None
    episodes: int = 100
    seed: int = 0
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    report: bool = True
    tags: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("env_kwargs", "options", "tags"):
            object.__setattr__(self, name, types.MappingProxyType(dict(getattr(self, name))))

    @property
    def spec(self) -> PolicySpec:
        return PolicySpec.parse(self.policy)

    def task(self) -> dict[str, Any]:
        """The plain-data form a worker runs (see :func:`behavioral.sweeping.worker.run_job`)."""
        return {
            "policy": self.policy,
            "env": self.env,
            "env_kwargs": dict(self.env_kwargs),
            "observation_wrappers": self.observation_wrappers,
            "split": self.split,
            "episodes": self.episodes,
            "seed": self.seed,
            "options": _plain(self.options),
            "report": self.report,
        }


def job_fields(job: Job) -> dict[str, Any]:
    """A job as the mapping it could be written as in a spec (options at the top level)."""
    out = {k: _plain(getattr(job, k)) for k in _JOB_KEYS}
    out.update(_plain(job.options))
    return out


def _plain(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


# ----------------------------------------------------------------------------- reading


def read_spec(path: str | os.PathLike[str]) -> Any:
    """The parsed content of a JSON or TOML spec file (size-checked, nothing executed).

    Raises:
        FileNotFoundError: no such file.
        SpecError: too large, or not valid JSON/TOML.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep spec not found: {path}")
    size = path.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise SpecError(f"{path} is {size} bytes; a sweep spec may have at most {MAX_SPEC_BYTES}")
    data = path.read_bytes()[: MAX_SPEC_BYTES + 1]
    if path.suffix.lower() == ".toml":
        import tomllib

        try:
            return tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise SpecError(f"{path} is not valid TOML: {err}") from None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SpecError(f"{path} is not valid JSON: {err}") from None


def load_jobs(spec: Any) -> list[Job]:
    """Validated jobs from a spec: a path (JSON/TOML file), a table with ``defaults`` /
    ``jobs`` / ``grid``, or an iterable of job mappings (or :class:`Job` objects).

    Globs expand to one job per matching file (sorted).

    Raises:
        SpecError: a malformed spec or job (naming which job and what is wrong).
        FileNotFoundError: a policy file or spec file that does not exist.
        UnknownEnvError: an env id that is not registered.
    """
    if isinstance(spec, (str, os.PathLike)):
        spec = read_spec(spec)
    raw = _raw_jobs(spec)
    jobs: list[Job] = []
    for i, item in enumerate(raw):
        if isinstance(item, Job):
            item = job_fields(item)
        if not isinstance(item, Mapping):
            raise SpecError(f"job {i}: expected a table of job keys, got {type(item).__name__}")
        jobs += _validate(item, f"job {i}")
    if not jobs:
        raise SpecError("the sweep has no jobs")
    return jobs


def _raw_jobs(spec: Any) -> list[Any]:
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - set(_SPEC_KEYS))
        if unknown:
            raise SpecError(
                f"unknown sweep spec key(s) {unknown}; expected {', '.join(_SPEC_KEYS)} "
                "(or a list of jobs)"
            )
        defaults = spec.get("defaults") or {}
        if not isinstance(defaults, Mapping):
            raise SpecError("'defaults' must be a table of job keys")
        items = list(_as_list(spec.get("jobs"), "jobs"))
        for grid in _as_list(spec.get("grid"), "grid"):
            items += _expand_grid(grid)
        return [_merge(defaults, item) if isinstance(item, Mapping) else item for item in items]
    if isinstance(spec, Iterable) and not isinstance(spec, (str, bytes)):
        return list(spec)
    raise SpecError(f"a sweep spec is a list of jobs or a table, got {type(spec).__name__}")


def _as_list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value] if what == "grid" else _bad_list(what)
    if isinstance(value, list):
        return value
    return _bad_list(what)


def _bad_list(what: str) -> list[Any]:
    raise SpecError(
        f"'{what}' must be a list of tables" + (" or one table" if what == "grid" else "")
    )


def _expand_grid(grid: Any) -> list[dict[str, Any]]:
    """One job per combination of the grid's alternatives (a scalar is one alternative)."""
    if not isinstance(grid, Mapping) or not grid:
        raise SpecError("a grid must be a non-empty table of key -> list of alternatives")
    axes = []
    for key, values in grid.items():
        alternatives = values if isinstance(values, list) else [values]
        if not alternatives:
            raise SpecError(f"grid key {key!r} has no alternatives")
        axes.append([(key, v) for v in alternatives])
    return [dict(combo) for combo in itertools.product(*axes)]


def _merge(defaults: Mapping[str, Any], job: Mapping[str, Any]) -> dict[str, Any]:
    out = {**defaults, **job}
    for key in _MERGED:
        a, b = defaults.get(key), job.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out[key] = {**a, **b}
    return out


# ----------------------------------------------------------------------------- validation


def _validate(item: Mapping[str, Any], where: str) -> list[Job]:
    unknown = sorted(k for k in item if k not in _JOB_KEYS and k not in OPTIONS)
    if unknown:
        raise SpecError(
            f"{where}: unknown key(s) {unknown}; job keys are {', '.join(_JOB_KEYS)} and the "
            f"audit options {', '.join(OPTIONS)}"
        )
    policy = item.get("policy")
    if not isinstance(policy, str):
        raise SpecError(f"{where}: 'policy' must be a policy spec string, got {policy!r}")
    env = item.get("env")
    if env is not None:
        if not isinstance(env, str) or not env:
            raise SpecError(f"{where}: 'env' must be a gymnasium id, got {env!r}")
        env = _registered(env_id(env), where)
    env_kwargs = dict(_mapping(item.get("env_kwargs"), "env_kwargs", where))
    split = _split(item.get("split"), env_kwargs, where)
    options = _options(item, where)
    common = {
        "env": env,
        "env_kwargs": env_kwargs,
        "observation_wrappers": _wrappers(item.get("observation_wrappers"), where),
        "split": split,
        "episodes": _int(item.get("episodes", 100), "episodes", 1, where),
        "seed": _int(item.get("seed", 0), "seed", 0, where),
        "options": options,
        "report": _bool(item.get("report", True), "report", where),
        "tags": _tags(item.get("tags"), where),
    }
    _json_ready(env_kwargs, f"{where}: env_kwargs")
    try:
        spec = PolicySpec.parse(policy)
    except SpecError as err:
        raise SpecError(f"{where}: {err}") from None
    if spec.kind in ("planner", "epsilon", "random") and env is None:
        raise SpecError(f"{where}: a {spec.kind} policy needs 'env' (e.g. {_EXAMPLE_ENV})")
    if spec.kind != "file":
        return [Job(policy=spec.text, **common)]
    return [Job(policy=path, **common) for path in _policy_files(policy, where)]


def _wrappers(value: Any, where: str) -> tuple[str, ...] | None:
    """The job's observation wrapper names (checked against the fixed table), or None."""
    from behavioral.environments import check_observation_wrappers
    from behavioral.errors import InvalidArgumentError

    if value is None:
        return None
    if not isinstance(value, list):
        raise SpecError(
            f"{where}: 'observation_wrappers' must be a list of names, got {value!r:.60}"
        )
    try:
        return check_observation_wrappers(value)
    except InvalidArgumentError as err:
        raise SpecError(f"{where}: {err}") from None


def _split(split: Any, env_kwargs: dict[str, Any], where: str) -> str | None:
    """The job's split (``env_kwargs["split"]`` moves here)."""
    if "split" in env_kwargs:
        if split is not None and split != env_kwargs["split"]:
            raise SpecError(
                f"{where}: split={split!r} conflicts with env_kwargs split={env_kwargs['split']!r}"
            )
        split = env_kwargs.pop("split")
    if split is not None and (not isinstance(split, str) or not split):
        raise SpecError(f"{where}: 'split' must be a string, got {split!r}")
    return split


def _options(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The job's audit options, each checked against :data:`OPTIONS`."""
    options = {k: item[k] for k in OPTIONS if k in item}
    for name, value in options.items():
        check, expected = OPTIONS[name]
        if not check(value):
            raise SpecError(f"{where}: option {name!r} must be {expected}, got {value!r}")
    for expr in dict(options.get("objectives") or {}).values():
        if expr is not None and expr is not False and not isinstance(expr, str):
            raise SpecError(
                f"{where}: objectives map names to OBJECTIVE expressions, or to null or false "
                "to leave a declared objective out"
            )
        if isinstance(expr, str):
            try:
                parse_objective(expr)
            except SpecError as err:
                raise SpecError(f"{where}: {err}") from None
    _json_ready(options, f"{where}: options")
    return options


def _registered(name: str, where: str) -> str:
    import behavioral_envs  # noqa: F401  (registers the project's env ids)
    import gymnasium as gym

    from behavioral.errors import UnknownEnvError

    try:
        gym.spec(name)
    except gym.error.Error as err:
        raise UnknownEnvError(f"{where}: unknown env {name!r}: {err}") from None
    return name


def _policy_files(pattern: str, where: str) -> list[str]:
    files = _matching(pattern, where)
    for name in files:
        size = os.path.getsize(name)
        if size > MAX_POLICY_BYTES:
            raise SpecError(f"{where}: {name} has {size} bytes (at most {MAX_POLICY_BYTES})")
    return files


def _matching(pattern: str, where: str) -> list[str]:
    if _GLOB_CHARS & set(pattern):
        matches = sorted(p for p in glob.glob(pattern) if Path(p).is_file())
        if not matches:
            raise SpecError(f"{where}: no policy file matches {pattern!r}")
        return matches
    path = Path(pattern)
    if not path.exists():
        raise FileNotFoundError(
            f"{where}: policy file not found: {path} (expected zoo:NAME, planner:OBJECTIVE, "
            "epsilon:OBJECTIVE:EPSILON, random, a .zip path or a glob)"
        )
    if not path.is_file():
        raise SpecError(f"{where}: {path} is not a file")
    return [pattern]


def _mapping(value: Any, name: str, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise SpecError(f"{where}: {name!r} must be a table with string keys, got {value!r}")
    return value


def _int(value: Any, name: str, low: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SpecError(f"{where}: {name!r} must be an integer >= {low}, got {value!r}")
    return int(value)


def _bool(value: Any, name: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"{where}: {name!r} must be true or false, got {value!r}")
    return value


def _tags(value: Any, where: str) -> dict[str, Any]:
    from behavioral.sweeping.table import RESERVED_COLUMNS

    tags = dict(_mapping(value, "tags", where))
    for k, v in tags.items():
        if not k.isidentifier() or k in RESERVED_COLUMNS:
            raise SpecError(
                f"{where}: tag name {k!r} must be an identifier that is not a column of the "
                "results table"
            )
        if not (v is None or isinstance(v, (bool, int, str)) or _finite(v)):
            raise SpecError(f"{where}: tag {k!r} must be a string, number or boolean, got {v!r}")
    return tags


def _json_ready(value: Any, where: str) -> None:
    try:
        json.dumps(value, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise SpecError(f"{where} must be plain JSON values: {err}") from None


# ----------------------------------------------------------------------------- keys


def _file_sha256(path: str, cache: dict[Any, str]) -> str:
    st = os.stat(path)
    token = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if token not in cache:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        cache[token] = h.hexdigest()
    return cache[token]


def policy_identity(policy: str, cache: dict[Any, str] | None = None) -> dict[str, Any]:
    """What a policy *is*, for the key: a file's sha256 (not its path), a zoo entry's name
    and zip's sha256, or a planner's canonical spec."""
    cache = {} if cache is None else cache
    spec = PolicySpec.parse(policy)
    if spec.kind == "file":
        return {"sha256": _file_sha256(spec.value, cache)}
    if spec.kind == "zoo":
        from behavioral.zoo import ZOO

        entry = ZOO.get(spec.value)
        digest = (
            _file_sha256(str(entry.path), cache)
            if entry is not None and entry.path.is_file()
            else None
        )
        return {"zoo": spec.value, "sha256": digest}
    return {"spec": spec.text}


def job_key(job: Job, *, version: str | None = None, cache: dict[Any, str] | None = None) -> str:
    """The audit's content key: 24 hex digits of a sha256 over (policy bytes, env id,
    env kwargs, split, episodes, seed, options, report flag, library version).

    ``version`` defaults to ``behavioral.__version__``; ``cache`` memoises file digests
    (by path, size and modification time) across calls.
    """
    if version is None:
        import behavioral

        version = behavioral.__version__
    doc = {
        "format": KEY_FORMAT,
        "behavioral": version,
        "policy": policy_identity(job.policy, cache),
        "env": job.env,
        "env_kwargs": _plain(job.env_kwargs),
        "split": job.split,
        "episodes": job.episodes,
        "seed": job.seed,
        "options": _plain(job.options),
        "report": job.report,
    }
    if job.observation_wrappers is not None:  # keys of jobs without them stay as they were
        doc["observation_wrappers"] = list(job.observation_wrappers)
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def unique_in_order(keys: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(keys))
