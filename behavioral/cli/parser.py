"""The argument parser of the ``behavioral`` command: one builder per subcommand, and
parent parsers for the flags they share (env, policy, output, seed, dataset)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from behavioral.cli.specs import one_line
from behavioral.cli.types import (
    env_kwarg,
    fraction,
    non_negative,
    objective_spec,
    positive_int,
    seed_int,
)

__all__ = ["build_parser"]

SAFETY = (
    "Files are data, never code: a policy .zip is read without unpickling anything (its "
    "weights with torch's weights-only loader), a dataset directory is checked (sizes, "
    "checksums, finite values, env ids without a module part) and replayed in its env, and "
    "--trust-policy-file is the only way to let SB3's own loader unpickle a zip -- use it "
    "only for files you made. Outputs are written to a temporary sibling and renamed into "
    "place; an existing one is replaced only with --force."
)
POLICY_HELP = (
    "zoo:NAME (a trained policy, e.g. zoo:reddoors-train), planner:OBJECTIVE[:BETA] (a "
    "Boltzmann-rational planner, e.g. planner:red_door:5), random, or the path of a "
    "stable-baselines3 PPO .zip (read without unpickling; see --trust-policy-file)"
)
ENV_HELP = (
    "registered gymnasium id (behavioral/RedDoors-v0, behavioral/WaterPlants-v0 -- aliases "
    "reddoors, waterplants -- behavioral/MiniGridCorner-v0, seals/CliffWorld7x4-v0, "
    "MiniGrid-FourRooms-v0, ...)"
)
OBJECTIVE_HELP = (
    "a candidate objective from Minigrid's vocabulary, NAME=PREDICATE with PREDICATE one "
    "of reach:TYPE[:COLOR] (on it, or facing it when it cannot be entered), "
    "at:TYPE[:COLOR], door_open[:COLOR], carrying[:TYPE[:COLOR]], lava, or "
    "region:X0,Y0,X1,Y1 (Minigrid's (x, y) cells, corners inclusive); a reward for "
    "entering the states where it holds, added to the env's own objectives (repeatable; "
    "Minigrid envs only; e.g. --objective corner=region:5,1,6,2 --objective key=carrying:key)"
)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``behavioral: error: ...`` and exit status 2."""

    def error(self, message: str) -> NoReturn:
        hint = f" (see '{self.prog} --help')"
        sys.stderr.write(f"behavioral: error: {one_line(message)}{hint}\n")
        raise SystemExit(2)


# ----------------------------------------------------------------------------- parents


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def env_flags(env_help: str = ENV_HELP) -> argparse.ArgumentParser:
    """``--env``, ``--split``, ``--env-kwarg``."""
    p = _parent()
    p.add_argument("--env", help=env_help)
    p.add_argument(
        "--split",
        default=None,
        help="the env's level distribution, e.g. train or deploy (default: the env's own; "
        "refused for envs without splits)",
    )
    p.add_argument(
        "--env-kwarg",
        type=env_kwarg,
        action="append",
        metavar="KEY=VALUE",
        help="extra env argument, e.g. size=7 (repeatable; JSON scalars; zoo policies and "
        "zips from 'behavioral train' default to the env arguments they were trained with)",
    )
    return p


def policy_flags(*, required: bool) -> argparse.ArgumentParser:
    """``--policy``, ``--obs-wrapper``, ``--trust-policy-file``, ``--episodes``,
    ``--deterministic``."""
    from behavioral.environments import OBSERVATION_WRAPPERS

    p = _parent()
    p.add_argument("--policy", required=required, help=POLICY_HELP)
    p.add_argument(
        "--obs-wrapper",
        action="append",
        choices=list(OBSERVATION_WRAPPERS),
        metavar="NAME",
        help="an observation wrapper the policy was trained behind, applied to --env "
        "(repeatable, innermost first; one of: " + ", ".join(OBSERVATION_WRAPPERS) + "); "
        "zoo policies and zips from 'behavioral train' know their own",
    )
    p.add_argument(
        "--trust-policy-file",
        action="store_true",
        help="load the --policy .zip with stable-baselines3's own loader, which unpickles "
        "objects from the file and can run code from it (only for files you made); needed "
        "for custom policy classes",
    )
    p.add_argument(
        "--episodes",
        type=positive_int,
        default=None,
        help="episodes to roll out (default: 100)",
    )
    p.add_argument(
        "--deterministic", action="store_true", help="roll out the policy's most probable actions"
    )
    return p


def output_flags(
    *, what: str, default: str | None = None, required: bool = False
) -> argparse.ArgumentParser:
    """``--out`` and ``--force``."""
    p = _parent()
    extra = f" (default: {default})" if default else ""
    p.add_argument("--out", default=default, required=required, help=f"{what} to write{extra}")
    p.add_argument(
        "--force",
        action="store_true",
        help=f"replace an existing {what} (kept until the new one is in place)",
    )
    return p


def seed_flag(
    what: str = "seed of the rollouts, the IRL method and the bootstrap",
) -> argparse.ArgumentParser:
    """``--seed``."""
    p = _parent()
    p.add_argument("--seed", type=seed_int, default=0, help=f"{what} (default: %(default)s)")
    return p


def dataset_flags() -> argparse.ArgumentParser:
    """``--max-dataset-bytes`` and ``--no-replay``, for commands that read datasets."""
    from behavioral.rollout import MAX_DATASET_BYTES

    p = _parent()
    p.add_argument(
        "--max-dataset-bytes",
        type=positive_int,
        default=MAX_DATASET_BYTES,
        metavar="N",
        help="the most array data a dataset may decompress to; larger ones are refused "
        "before anything is decompressed (default: %(default)s)",
    )
    p.add_argument(
        "--no-replay",
        action="store_true",
        help="do not replay the dataset's episodes in its env to check them (for envs that "
        "are not deterministic given the reset seed)",
    )
    return p


# ----------------------------------------------------------------------------- subcommands


def _add_demo(sub: Any) -> None:
    from behavioral.cli.demo import cmd_demo

    p = sub.add_parser(
        "demo",
        parents=[output_flags(what="report directory", default="behavioral-demo"), seed_flag()],
        help="audit the policy zoo on both splits of both envs and write a report directory",
        description="Audit each zoo policy (reddoors-train, reddoors-diverse, "
        "waterplants-kettle, waterplants-hose) on the train and deploy splits of its env, "
        "and write OUT/index.html with one report per audit and a train-vs-deploy report per "
        "policy. Without the zoo, tabular planners for each objective are audited instead.",
    )
    p.add_argument(
        "--episodes",
        type=positive_int,
        default=None,
        help="episodes per audit (default: 100, or 20 with --fast)",
    )
    p.add_argument(
        "--fast", action="store_true", help="fewer episodes and bootstrap samples (a quick look)"
    )
    p.set_defaults(func=cmd_demo)


def _add_audit(sub: Any) -> None:
    from behavioral.cli.commands import cmd_audit

    p = sub.add_parser(
        "audit",
        parents=[
            policy_flags(required=False),
            env_flags(ENV_HELP + "; default for zoo policies and trained zips: their env"),
            output_flags(what="report directory", default="behavioral-report"),
            seed_flag(),
            dataset_flags(),
        ],
        help="audit one policy (or a saved dataset) and write a report directory",
        description="Roll a policy out in an env (or load a dataset), recover its behavioural "
        "objective and compare it with the env's base objective and proxies. Writes "
        "report.html, report.md, summary.json and PNG heatmaps into --out. The env needs "
        "a discrete model of its levels: its own (this library's envs, seals' tabular "
        "envs) or one extracted from its steps (Minigrid envs, any env with Discrete "
        "actions and deterministic steps), whose base objective is the env's own reward, "
        "named 'reward'. " + SAFETY,
    )
    p.add_argument(
        "--dataset",
        help="a dataset directory written by 'behavioral rollout' (instead of --policy; its "
        "env, split and env arguments are the recorded ones)",
    )
    p.add_argument(
        "--method",
        choices=("maxent", "airl"),
        default="maxent",
        help="IRL method (default: %(default)s)",
    )
    p.add_argument(
        "--design",
        choices=("random", "sequential", "active"),
        default=None,
        help="random (default): --episodes episodes on the env's own levels; active: "
        "--episodes is a budget, levels are chosen by the evidence they are expected to add "
        "and the audit stops when an anytime-valid test decides; sequential: the same test "
        "on random levels of --levels",
    )
    p.add_argument(
        "--levels",
        default=None,
        metavar="SOURCE",
        help="where an active or sequential audit takes its levels: a split of the env "
        "(e.g. deploy) or reset seeds, comma-separated and START:STOP ranges (e.g. 0:100 "
        "for seeds 0 to 99) (default: the env's own levels, edited by mutation search when "
        "the env has editable levels)",
    )
    p.add_argument("--fast", action="store_true", help="fewer bootstrap samples")
    p.add_argument(
        "--objective",
        type=objective_spec,
        action="append",
        metavar="NAME=PREDICATE",
        help=OBJECTIVE_HELP,
    )
    p.add_argument(
        "--base",
        help="the base objective's name (default: the env's own; 'reward' for envs that "
        "declare none, e.g. Minigrid)",
    )
    p.set_defaults(func=cmd_audit)


def _add_rollout(sub: Any) -> None:
    from behavioral.cli.commands import cmd_rollout

    p = sub.add_parser(
        "rollout",
        parents=[
            policy_flags(required=True),
            env_flags(ENV_HELP + "; default for zoo policies and trained zips: their env"),
            output_flags(what="dataset directory", required=True),
            seed_flag("seed of the rollout"),
        ],
        help="roll a policy out and save a dataset directory",
        description="Run a policy for --episodes episodes and save the trajectories, level "
        "seeds, state indices and every objective's returns as a dataset directory. " + SAFETY,
    )
    p.set_defaults(func=cmd_rollout)


def _add_irl(sub: Any) -> None:
    from behavioral.cli.commands import cmd_irl

    p = sub.add_parser(
        "irl",
        parents=[output_flags(what="JSON file"), dataset_flags()],
        help="recover a linear reward from a dataset directory (MaxEnt IRL) as JSON",
        description="Fit MaxEnt IRL on the dataset's levels (the env is re-made from the "
        "dataset's validated metadata), the same fit the audit makes, and write the feature "
        "weights with confidence intervals as JSON (to standard output without --out). " + SAFETY,
    )
    p.add_argument("dataset", help="dataset directory written by 'behavioral rollout'")
    p.add_argument(
        "--l2",
        type=non_negative,
        default=1e-2,
        help="L2 penalty on the weights (default: %(default)s, as in the audit)",
    )
    p.add_argument(
        "--confidence", type=fraction, default=0.95, help="interval level (default: %(default)s)"
    )
    p.set_defaults(func=cmd_irl)


def _add_train(sub: Any) -> None:
    from behavioral.cli.commands import cmd_train

    p = sub.add_parser(
        "train",
        parents=[
            env_flags(),
            output_flags(what=".zip file", required=True),
            seed_flag("seed of the training"),
        ],
        help="train a PPO policy (the base optimizer) and save it as an SB3 zip",
        description="Train stable-baselines3 PPO on an env's training reward (split: train "
        "for envs with splits, unless --split says otherwise).",
    )
    p.add_argument(
        "--timesteps",
        type=positive_int,
        default=200_000,
        help="environment steps (default: %(default)s)",
    )
    p.add_argument(
        "--n-envs", type=positive_int, default=4, help="parallel env copies (default: %(default)s)"
    )
    p.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=None,
        metavar="STEPS",
        help="also save a checkpoint every STEPS environment steps (for behavioral drift)",
    )
    p.add_argument(
        "--checkpoint-dir",
        default=None,
        help="directory of the checkpoints (default: OUT without .zip, plus -checkpoints)",
    )
    p.set_defaults(func=cmd_train)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``behavioral`` command."""
    from behavioral import __version__

    parser = Parser(
        prog="behavioral",
        description="What is a trained RL policy actually trying to do? Recover its "
        "behavioural objective with inverse RL and test it against the base objective and "
        "named proxies.",
        epilog="Start with: behavioral demo --out behavioral-demo. " + SAFETY,
    )
    parser.add_argument("--version", action="version", version=f"behavioral {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for add in (_add_demo, _add_audit, _add_rollout, _add_irl, _add_train, _add_sweeps):
        add(sub)
    return parser


def _add_sweeps(sub: Any) -> None:
    """``sweep`` (many audits from a spec file) and ``drift`` (a run's checkpoints)."""
    from behavioral.drift import add_parser as add_drift
    from behavioral.sweeping.command import add_parser as add_sweep

    add_sweep(sub)
    add_drift(sub)
