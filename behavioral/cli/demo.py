"""The ``demo`` subcommand: audit the zoo on both splits of both envs into one directory.

The whole directory is staged next to ``--out`` and published at the end
(:mod:`behavioral.files`); ``--out`` is reserved (checked and locked) before the first
audit starts.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import html
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from behavioral.cli.specs import (
    PLANNER_BETA,
    PolicySpec,
    load_policy,
    make_env,
    one_line,
    zoo_env_kwargs,
)

__all__ = ["DEMO_PLANNERS", "DEMO_SPLITS", "DEMO_ZOO", "cmd_demo"]

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


def _demo_jobs() -> tuple[list[tuple[str, str, Any, str]], bool]:
    """(name, env id, policy, description) of every policy the demo audits, and whether
    they are the zoo's. The zoo is used when every one of its demo policies loads;
    otherwise planners.
    """
    from behavioral.errors import BehavioralError
    from behavioral.zoo import load_zoo

    try:
        jobs = []
        for name, env_id in DEMO_ZOO:
            policy = load_zoo(name)
            jobs.append((name, env_id, policy, _zoo_description(name)))
        return jobs, True
    except (BehavioralError, OSError) as err:
        sys.stderr.write(f"behavioral: the policy zoo cannot be loaded: {one_line(err)}\n")
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
    from behavioral.zoo import ZOO

    entry = ZOO.get(name)
    return str(getattr(entry, "description", "")) if entry is not None else ""


def cmd_demo(args: argparse.Namespace) -> int:
    from behavioral import files

    with files.reserve(args.out, overwrite=args.force, expect=("index.html",)) as out:
        episodes = args.episodes if args.episodes is not None else (20 if args.fast else 100)
        jobs, use_zoo = _demo_jobs()
        with out.stage() as tmp:
            rows = _run_demo(tmp, jobs, use_zoo, episodes=episodes, args=args)
    for name, _env_id, split, result in rows:
        proxy = f" ({result.proxy})" if result.proxy else ""
        print(f"{name:22s} {split:7s} {result.verdict}{proxy}")
    print(f"report: {Path(args.out) / 'index.html'}")
    return 0


def _run_demo(
    tmp: Path, jobs: Sequence[tuple[str, str, Any, str]], use_zoo: bool, *, episodes: int,
    args: argparse.Namespace,
) -> list[tuple[str, str, str, Any]]:  # fmt: skip
    """Every audit, the comparison reports and the index, written into ``tmp``."""
    from behavioral.auditing import audit as run_audit
    from behavioral.report import write_comparison_report

    kwargs: dict[str, Any] = {"n_bootstrap": 200} if args.fast else {}
    rows = []
    bar = _progress([(j, s) for j in jobs for s in DEMO_SPLITS], desc="auditing", unit="audit")
    audits: dict[str, list[Any]] = {}
    for (name, env_id, policy, _), split in bar:
        bar.set_postfix_str(f"{name} on {split}")
        zoo_env, env_kwargs = zoo_env_kwargs(name) if use_zoo else (None, {})
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
    return rows


def _progress(iterable: Any, **kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(iterable, file=sys.stderr, dynamic_ncols=True, **kwargs)


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
    from behavioral.files import write_atomic

    write_atomic(directory / "index.html", page)
    write_atomic(directory / "index.md", "\n".join(md) + "\n")
