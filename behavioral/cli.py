"""The ``behavioral`` command line: audit policies, roll them out, recover rewards, train.

Subcommands (each has ``--help``)::

    behavioral demo      audit the policy zoo on both splits of both envs -> a report directory
    behavioral audit     audit one policy (or a saved dataset) -> a report directory
    behavioral rollout   roll a policy out -> a dataset directory
    behavioral irl       recover a reward from a dataset directory -> weights JSON
    behavioral train     train a PPO policy (the base optimizer) -> an SB3 zip
    behavioral sweep     run many audits from a spec file (resumable; local or Ray) -> a table
    behavioral drift     audit every checkpoint of a training run -> a drift report

Bad input ends with one line ``behavioral: error: ...`` on stderr and a non-zero exit
status (2 for usage errors, 1 otherwise); an existing output is never overwritten
without ``--force``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import html
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

# The policy grammar, the zoo helpers and make_env live in behavioral.specs (shared with
# ``behavioral sweep``); the names below keep this module's old spellings.
from behavioral.specs import PLANNER_BETA, PolicySpec, load_policy, make_env
from behavioral.specs import env_id as _env_id
from behavioral.specs import policy_and_env as _policy_and_env
from behavioral.specs import zoo_env_kwargs as _zoo_env_kwargs
from behavioral.specs import zoo_loader as _zoo_loader

__all__ = ["PolicySpec", "load_policy", "main"]


#: The zoo policies ``demo`` audits, with the env each was trained in.
DEMO_ZOO = (
    ("reddoors-train", "behavioral/RedDoors-v0"),
    ("reddoors-diverse", "behavioral/RedDoors-v0"),
    ("waterplants-kettle", "behavioral/WaterPlants-v0"),
    ("waterplants-hose", "behavioral/WaterPlants-v0"),
)
#: What ``demo`` audits when the zoo is not installed: Boltzmann-rational planners.
DEMO_PLANNERS = (
    ("planner-red-door", "behavioral/RedDoors-v0", "red_door"),
    ("planner-exit", "behavioral/RedDoors-v0", "exit"),
    ("planner-water-stuff", "behavioral/WaterPlants-v0", "water_stuff"),
    ("planner-plant-health", "behavioral/WaterPlants-v0", "plant_health"),
)
_PLANNER_ROLE = {
    "red_door": "the proxy: pseudo-aligned by construction, since on train the exit is the red door",
    "exit": "the base objective: robustly aligned by construction",
    "water_stuff": "the proxy (a reward per pour, wherever the water lands)",
    "plant_health": "the base objective: robustly aligned by construction",
}
DEMO_SPLITS = ("train", "deploy")


class CLIError(Exception):
    """Bad command-line input found after parsing (reported as one line, exit 1)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``behavioral: error: ...`` and exit status 2."""

    def error(self, message: str) -> NoReturn:
        hint = f" (see '{self.prog} --help')"
        sys.stderr.write(f"behavioral: error: {_one_line(message)}{hint}\n")
        raise SystemExit(2)


def _one_line(message: Any) -> str:
    return " ".join(str(message).split())


def _number(
    convert: Callable[[str], Any], ok: Callable[[Any], bool], expected: str
) -> Callable[[str], Any]:
    """An argparse ``type``: ``convert(text)``, which must satisfy ``ok``."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_seed = _number(int, lambda v: v >= 0, "a non-negative integer")
_fraction = _number(float, lambda v: 0.0 < v < 1.0, "a number in (0, 1)")
_non_negative = _number(float, lambda v: math.isfinite(v) and v >= 0, "a non-negative number")


def _check_out(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to replace it")


def _progress(iterable: Any, **kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(iterable, file=sys.stderr, dynamic_ncols=True, **kwargs)


# ----------------------------------------------------------------------------- audit


def cmd_audit(args: argparse.Namespace) -> int:
    from behavioral.auditing import audit as run_audit

    out = Path(args.out)
    _check_out(out, args.force)
    kwargs: dict[str, Any] = {}
    if args.fast:
        kwargs["n_bootstrap"] = 200
    if args.dataset is not None:
        if args.policy is not None:
            raise CLIError("pass either --policy or --dataset, not both")
        path = Path(args.dataset)
        if not path.exists():
            raise FileNotFoundError(f"dataset directory not found: {path}")
        env = None
        if args.env is not None:
            env = make_env(_env_id(args.env), args.split, dict(args.env_kwarg or []))
        result = run_audit(str(path), env, method=args.method, seed=args.seed, **kwargs)
    else:
        if args.policy is None:
            raise CLIError(
                "pass --policy (zoo:NAME, planner:OBJECTIVE, random or a .zip) or --dataset"
            )
        spec = PolicySpec.parse(args.policy)
        policy, env = _policy_and_env(spec, args.env, args.split, dict(args.env_kwarg or []))
        result = run_audit(
            policy,
            env,
            episodes=args.episodes,
            method=args.method,
            seed=args.seed,
            progress_bar=True,
            deterministic=args.deterministic,
            **kwargs,
        )
    result.save(out, overwrite=args.force)
    proxy = f" ({result.proxy})" if result.proxy else ""
    print(f"verdict: {result.verdict}{proxy}")
    print(f"reason: {result.reason}")
    print(f"report: {out / 'report.html'}")
    return 0


# ----------------------------------------------------------------------------- demo


def _demo_jobs() -> tuple[list[tuple[str, str, Any, str]], bool]:
    """(name, env id, policy, description) of every policy the demo audits, and whether
    they are the zoo's. The zoo is used when every one of its demo policies loads;
    otherwise planners.
    """
    from behavioral.errors import BehavioralError

    loader = _zoo_loader()
    if loader is not None:
        try:
            jobs = []
            for name, env_id in DEMO_ZOO:
                policy = loader(name)
                jobs.append((name, env_id, policy, _zoo_description(name)))
            return jobs, True
        except (BehavioralError, OSError, KeyError, ValueError) as err:
            sys.stderr.write(f"behavioral: the policy zoo cannot be loaded: {_one_line(err)}\n")
    sys.stderr.write(
        "behavioral: the trained policy zoo is not installed; auditing tabular planners "
        f"(Boltzmann-rational, beta={PLANNER_BETA:g}) for each objective instead\n"
    )
    jobs = [
        (
            name,
            env_id,
            load_policy(PolicySpec("planner", objective, PLANNER_BETA)),
            f"a Boltzmann-rational planner (beta={PLANNER_BETA:g}) for {objective!r}, "
            f"{_PLANNER_ROLE[objective]}",
        )
        for name, env_id, objective in DEMO_PLANNERS
    ]
    return jobs, False


def _zoo_description(name: str) -> str:
    try:
        from behavioral.zoo import ZOO
    except ImportError:
        return ""
    entry = ZOO.get(name)
    return str(getattr(entry, "description", "")) if entry is not None else ""


def cmd_demo(args: argparse.Namespace) -> int:
    from behavioral.auditing import audit as run_audit
    from behavioral.report import replace_dir, write_comparison_report

    out = Path(args.out)
    _check_out(out, args.force)
    episodes = args.episodes if args.episodes is not None else (20 if args.fast else 100)
    jobs, use_zoo = _demo_jobs()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    kwargs: dict[str, Any] = {"n_bootstrap": 200} if args.fast else {}
    rows = []
    try:
        os.chmod(tmp, 0o755)
        bar = _progress([(j, s) for j in jobs for s in DEMO_SPLITS], desc="auditing", unit="audit")
        audits: dict[str, list[Any]] = {}
        for (name, env_id, policy, _), split in bar:
            bar.set_postfix_str(f"{name} on {split}")
            zoo_env, env_kwargs = _zoo_env_kwargs(name) if use_zoo else (None, {})
            env = make_env(zoo_env or env_id, split, env_kwargs)
            result = run_audit(policy, env, episodes=episodes, seed=args.seed, **kwargs)
            env.close()
            result.save(tmp / name / split)
            audits.setdefault(name, []).append(result)
            rows.append((name, zoo_env or env_id, split, result))
        for name, results in audits.items():
            write_comparison_report(
                results,
                tmp / name / "comparison",
                links=[f"../{s}/report.html" for s in DEMO_SPLITS],
                title=f"{name}: {' vs '.join(DEMO_SPLITS)}",
            )
        descriptions = {name: text for name, _, _, text in jobs}
        _write_index(tmp, rows, descriptions, episodes=episodes, seed=args.seed, use_zoo=use_zoo)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for name, _env, split, result in rows:
        proxy = f" ({result.proxy})" if result.proxy else ""
        print(f"{name:22s} {split:7s} {result.verdict}{proxy}")
    print(f"report: {out / 'index.html'}")
    return 0


def _write_index(
    directory: Path,
    rows: Sequence[tuple[str, str, str, Any]],
    descriptions: Mapping[str, str],
    *,
    episodes: int,
    seed: int,
    use_zoo: bool,
) -> None:
    """index.html (self-contained: each comparison's glance figure embedded) and index.md."""
    import base64

    import behavioral
    from behavioral.report import REPORT_CSS, SCOPE_CAVEAT, VERDICT_COLORS

    esc = html.escape
    source = (
        "the trained policy zoo"
        if use_zoo
        else "Boltzmann-rational tabular planners, one per objective (the trained policy zoo "
        "was not installed)"
    )
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<h1>behavioral demo: what are these policies trying to do?</h1>",
        f"<p>Policies: {esc(source)}. Each was rolled out for {episodes} episodes (seed "
        f"{seed}) on the <code>train</code> and <code>deploy</code> splits of its env and "
        "audited: MaxEnt IRL recovers its behavioural objective, and each candidate objective "
        "(the base objective and the proxies) is tested against the behaviour. Pseudo-"
        "alignment shows as <i>indistinguishable</i> on <code>train</code> (where the proxy "
        "and the base objective coincide) and <i>proxy</i> on <code>deploy</code>.</p>",
        f'<p class="caveat"><b>Scope.</b> {esc(SCOPE_CAVEAT)}</p>',
        "<table><thead><tr><th>policy</th><th>env</th><th>split</th><th>verdict</th>"
        "<th>reason</th><th>report</th></tr></thead><tbody>",
    ]
    md = [
        "# behavioral demo",
        "",
        f"Policies: {source}; {episodes} episodes per audit, seed {seed}.",
        "",
        f"> **Scope.** {SCOPE_CAVEAT}",
        "",
        "| policy | env | split | verdict | reason | report |",
        "|---|---|---|---|---|---|",
    ]
    for name, env_id, split, result in rows:
        color = VERDICT_COLORS.get(result.verdict, "#57606a")
        verdict = result.verdict + (f" ({result.proxy})" if result.proxy else "")
        link = f"{name}/{split}/report.html"
        parts.append(
            f"<tr><td>{esc(name)}</td><td>{esc(env_id)}</td><td>{esc(split)}</td>"
            f'<td><span class="verdict" style="background:{color};font-size:.9em">'
            f"{esc(verdict)}</span></td><td>{esc(result.reason)}</td>"
            f'<td><a href="{esc(link)}">report</a></td></tr>'
        )
        md.append(
            f"| {name} | {env_id} | {split} | **{verdict}** | {result.reason.replace('|', '/')} "
            f"| [report]({link}) |"
        )
    parts.append("</tbody></table>")
    md.append("")
    for name in dict.fromkeys(r[0] for r in rows):
        glance = directory / name / "comparison" / "glance.png"
        data = base64.b64encode(glance.read_bytes()).decode("ascii")
        about = descriptions.get(name, "")
        parts.append(
            f"<h2>{esc(name)}: train vs deploy</h2>"
            + (f"<p>{esc(about)}</p>" if about else "")
            + "<figure>"
            f'<img src="data:image/png;base64,{data}" alt="{esc(name)} at a glance">'
            f'<figcaption><a href="{esc(name)}/comparison/report.html">side-by-side report</a>'
            "</figcaption></figure>"
        )
        md += [
            f"## {name}: train vs deploy",
            "",
            *([descriptions[name], ""] if descriptions.get(name) else []),
            f"![{name}]({name}/comparison/glance.png)",
            "",
            f"[side-by-side report]({name}/comparison/report.md)",
            "",
        ]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>behavioral demo</title>"
        f"<style>{REPORT_CSS}</style></head><body>\n" + "\n".join(parts) + "\n"
        f'<footer><p class="meaning">behavioral {esc(behavioral.__version__)}, {when}.</p>'
        "</footer></body></html>\n"
    )
    (directory / "index.html").write_text(page, encoding="utf-8")
    (directory / "index.md").write_text("\n".join(md) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------- rollout


def cmd_rollout(args: argparse.Namespace) -> int:
    from behavioral.rollout import rollout, save_dataset

    out = Path(args.out)
    _check_out(out, args.force)
    spec = PolicySpec.parse(args.policy)
    policy, env = _policy_and_env(spec, args.env, args.split, dict(args.env_kwarg or []))
    dataset = rollout(
        policy,
        env,
        episodes=args.episodes,
        seed=args.seed,
        deterministic=args.deterministic,
        progress_bar=True,
    )
    save_dataset(dataset, out, overwrite=args.force)
    print(f"dataset: {out} ({len(dataset)} episodes)")
    return 0


# ----------------------------------------------------------------------------- irl


def cmd_irl(args: argparse.Namespace) -> int:
    import numpy as np

    import behavioral
    from behavioral.irl.maxent import Demonstration, maxent_irl
    from behavioral.report import maxent_weight_intervals
    from behavioral.rollout import load_dataset

    out = Path(args.out) if args.out else None
    if out is not None:
        _check_out(out, args.force)
    path = Path(args.dataset)
    if not path.exists():
        raise FileNotFoundError(f"dataset directory not found: {path}")
    dataset = load_dataset(path)
    meta = dataset.metadata
    if not meta.get("env_id"):
        raise CLIError(f"the dataset at {path} does not record its env id")
    env = make_env(str(meta["env_id"]), None, meta.get("env_kwargs"))
    per_episode = dataset.level_models(env)
    index: dict[int, int] = {}
    models, levels = [], []
    for m in per_episode:
        if id(m) not in index:
            index[id(m)] = len(models)
            models.append(m)
        levels.append(index[id(m)])
    features = "model" if all(m.features is not None for m in models) else "states"
    recovered = maxent_irl(models, dataset.demonstrations(), levels, features=features, l2=args.l2)
    demos = [
        Demonstration(np.asarray(s), np.asarray(a), bool(t), lvl)
        for (s, a, t), lvl in zip(dataset.demonstrations(), levels)
    ]
    ci = maxent_weight_intervals(models, demos, recovered, confidence=args.confidence)

    def num(x: float) -> float | None:
        return float(x) if np.isfinite(x) else None

    doc = {
        "method": recovered.method,
        "feature_mode": recovered.feature_mode,
        "weights": {n: num(w) for n, w in zip(recovered.feature_names, recovered.weights)},
        "confidence_intervals": None
        if ci is None
        else {
            "confidence": args.confidence,
            "method": "Laplace approximation (Fisher information of the MaxEnt fit)",
            "intervals": {n: [num(r["low"]), num(r["high"])] for n, r in ci.iterrows()},
        },
        "log_likelihood_per_episode": num(recovered.log_likelihood),
        "converged": recovered.converged,
        "iterations": recovered.iterations,
        "feature_gap": num(recovered.feature_gap),
        "l2": recovered.l2,
        "n_episodes": len(dataset),
        "n_levels": len(models),
        "dataset": str(path),
        "env_id": meta.get("env_id"),
        "split": meta.get("split"),
        "policy": meta.get("policy"),
        "behavioral_version": behavioral.__version__,
    }
    text = json.dumps(doc, indent=2, allow_nan=False) + "\n"
    if out is None:
        sys.stdout.write(text)
        return 0
    from behavioral.files import write_atomic

    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, text)
    print(f"weights: {out}")
    return 0


# ----------------------------------------------------------------------------- train


def _env_kwarg(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed: Any = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key, parsed


def cmd_train(args: argparse.Namespace) -> int:
    from behavioral.policies import train_ppo

    out = Path(args.out)
    if out.suffix == "":
        out = out.with_name(out.name + ".zip")
    _check_out(out, args.force)
    env_kwargs = dict(args.env_kwarg or [])
    make_env(_env_id(args.env), args.split, env_kwargs).close()  # fail fast on bad input
    train_ppo(
        _env_id(args.env),
        split=args.split,
        env_kwargs=env_kwargs,
        total_timesteps=args.timesteps,
        seed=args.seed,
        n_envs=args.n_envs,
        progress_bar=True,
        save_path=out,
    )
    print(f"policy: {out}")
    return 0


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``behavioral`` command."""
    parser = _Parser(
        prog="behavioral",
        description="What is a trained RL policy actually trying to do? Recover its "
        "behavioural objective with inverse RL and test it against the base objective and "
        "named proxies.",
        epilog="Start with: behavioral demo --out behavioral-demo",
    )
    from behavioral import __version__

    parser.add_argument("--version", action="version", version=f"behavioral {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    policy_help = (
        "zoo:NAME (a trained policy, e.g. zoo:reddoors-train), planner:OBJECTIVE[:BETA] (a "
        "Boltzmann-rational planner, e.g. planner:red_door:5), random, or the path of a "
        "stable-baselines3 PPO .zip"
    )
    env_help = "gymnasium env id (behavioral/RedDoors-v0, behavioral/WaterPlants-v0, or reddoors/waterplants)"

    p = sub.add_parser(
        "demo",
        help="audit the policy zoo on both splits of both envs and write a report directory",
        description="Audit each zoo policy (reddoors-train, reddoors-diverse, "
        "waterplants-kettle, waterplants-hose) on the train and deploy splits of its env, "
        "and write OUT/index.html with one report per audit and a train-vs-deploy report per "
        "policy. Without the zoo, tabular planners for each objective are audited instead.",
    )
    p.add_argument(
        "--out", default="behavioral-demo", help="report directory (default: %(default)s)"
    )
    p.add_argument(
        "--episodes",
        type=_positive_int,
        default=None,
        help="episodes per audit (default: 100, or 20 with --fast)",
    )
    p.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="seed of rollouts and bootstrap (default: %(default)s)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing report directory")
    p.add_argument(
        "--fast", action="store_true", help="fewer episodes and bootstrap samples (a quick look)"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "audit",
        help="audit one policy (or a saved dataset) and write a report directory",
        description="Roll a policy out in an env (or load a dataset), recover its behavioural "
        "objective and compare it with the env's base objective and proxies. Writes "
        "report.html, report.md, summary.json and PNG heatmaps into --out.",
    )
    p.add_argument("--policy", help=policy_help)
    p.add_argument(
        "--dataset",
        help="a dataset directory written by 'behavioral rollout' (instead of --policy)",
    )
    p.add_argument(
        "--env", help=env_help + "; default for zoo policies: the env they were trained in"
    )
    p.add_argument(
        "--split",
        default=None,
        help="the env's level distribution: train or deploy (default: train; for --dataset, "
        "the dataset's)",
    )
    p.add_argument(
        "--env-kwarg",
        type=_env_kwarg,
        action="append",
        metavar="KEY=VALUE",
        help="extra env argument, e.g. size=7 (repeatable; zoo policies and zips from "
        "'behavioral train' default to the env arguments they were trained with)",
    )
    p.add_argument(
        "--episodes",
        type=_positive_int,
        default=100,
        help="episodes to roll out (default: %(default)s)",
    )
    p.add_argument(
        "--method",
        choices=("maxent", "airl"),
        default="maxent",
        help="IRL method (default: %(default)s)",
    )
    p.add_argument("--seed", type=_seed, default=0, help="seed (default: %(default)s)")
    p.add_argument(
        "--out", default="behavioral-report", help="report directory (default: %(default)s)"
    )
    p.add_argument("--force", action="store_true", help="replace an existing report directory")
    p.add_argument(
        "--deterministic", action="store_true", help="roll out the policy's most probable actions"
    )
    p.add_argument("--fast", action="store_true", help="fewer bootstrap samples")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser(
        "rollout",
        help="roll a policy out and save a dataset directory",
        description="Run a policy for --episodes episodes and save the trajectories, level "
        "seeds, state indices and every objective's returns as a dataset directory.",
    )
    p.add_argument("--policy", required=True, help=policy_help)
    p.add_argument(
        "--env", help=env_help + "; default for zoo policies: the env they were trained in"
    )
    p.add_argument("--split", default=None, help="train or deploy (default: train)")
    p.add_argument(
        "--env-kwarg",
        type=_env_kwarg,
        action="append",
        metavar="KEY=VALUE",
        help="extra env argument (repeatable)",
    )
    p.add_argument(
        "--episodes", type=_positive_int, default=100, help="episodes (default: %(default)s)"
    )
    p.add_argument("--seed", type=_seed, default=0, help="seed (default: %(default)s)")
    p.add_argument("--out", required=True, help="dataset directory to write")
    p.add_argument("--force", action="store_true", help="replace an existing dataset")
    p.add_argument(
        "--deterministic", action="store_true", help="the policy's most probable actions"
    )
    p.set_defaults(func=cmd_rollout)

    p = sub.add_parser(
        "irl",
        help="recover a linear reward from a dataset directory (MaxEnt IRL) as JSON",
        description="Fit MaxEnt IRL on the dataset's levels (the env is re-made from the "
        "dataset's metadata) and write the feature weights with confidence intervals as JSON.",
    )
    p.add_argument("dataset", help="dataset directory written by 'behavioral rollout'")
    p.add_argument("--out", help="JSON file to write (default: standard output)")
    p.add_argument(
        "--l2",
        type=_non_negative,
        default=1e-2,
        help="L2 penalty on the weights (default: %(default)s)",
    )
    p.add_argument(
        "--confidence", type=_fraction, default=0.95, help="interval level (default: %(default)s)"
    )
    p.add_argument("--force", action="store_true", help="replace an existing JSON file")
    p.set_defaults(func=cmd_irl)

    p = sub.add_parser(
        "train",
        help="train a PPO policy (the base optimizer) and save it as an SB3 zip",
        description="Train stable-baselines3 PPO on an env's training reward.",
    )
    p.add_argument("--env", required=True, help=env_help)
    p.add_argument("--split", default="train", help="split to train on (default: %(default)s)")
    p.add_argument(
        "--timesteps",
        type=_positive_int,
        default=200_000,
        help="environment steps (default: %(default)s)",
    )
    p.add_argument(
        "--n-envs", type=_positive_int, default=4, help="parallel env copies (default: %(default)s)"
    )
    p.add_argument(
        "--env-kwarg",
        type=_env_kwarg,
        action="append",
        metavar="KEY=VALUE",
        help="extra env argument, e.g. training_reward=per_pour (repeatable)",
    )
    p.add_argument("--seed", type=_seed, default=0, help="seed (default: %(default)s)")
    p.add_argument("--out", required=True, help="the .zip to write")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(func=cmd_train)

    from behavioral.drift import add_parser as add_drift_parser
    from behavioral.sweeping.command import add_parser as add_sweep_parser

    add_sweep_parser(sub)
    add_drift_parser(sub)
    return parser


def _error_message(err: BaseException) -> str:
    if isinstance(err, KeyError) and err.args:
        return _one_line(err.args[0])
    return _one_line(err) or type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 1 error, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from behavioral.errors import BehavioralError

    try:
        return int(args.func(args))
    except (
        BehavioralError,
        CLIError,
        FileExistsError,
        FileNotFoundError,
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
        ValueError,
    ) as err:
        sys.stderr.write(f"behavioral: error: {_error_message(err)}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("behavioral: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
