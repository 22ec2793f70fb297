"""Sweeps: the policy grammar, jobs and keys, the journal, and whole sweeps on a local
process pool and on Ray -- including resuming after SIGINT and SIGKILL."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import behavioral
from behavioral.errors import BehavioralError, UnknownEnvError
from behavioral.specs import PolicySpec, SpecError, objective_reward, parse_objective
from behavioral.sweeping.jobs import Job, job_fields, job_key, load_jobs
from behavioral.sweeping.journal import Journal, JournalError, SweepLockedError

RED = "behavioral/RedDoors-v0"
ROOT = Path(__file__).resolve().parents[1]
#: Small, quick audits: 7x7 RedDoors levels, few episodes and bootstrap samples, no report.
SMALL = {"env": RED, "env_kwargs": {"size": 7}, "episodes": 12, "n_bootstrap": 50, "report": False}


# ----------------------------------------------------------------------------- the grammar


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("random", "random"),
        ("zoo:reddoors-train", "zoo:reddoors-train"),
        ("planner:exit", "planner:exit:5.0"),
        ("planner:exit:5", "planner:exit:5.0"),
        ("planner:red_door:0.5:0.99", "planner:red_door:0.5:0.99"),
        ("epsilon:exit:0.1", "epsilon:exit:0.1"),
        ("epsilon:exit:0.3:0.99", "epsilon:exit:0.3:0.99"),
        ("planner:scaled(exit,3):5", "planner:scaled(exit,3.0):5.0"),
        ("planner:shifted( exit , 0.5 )", "planner:shifted(exit,0.5):5.0"),
        ("planner:shaped(exit,7)", "planner:shaped(exit,7):5.0"),
        ("planner:scaled(shaped(exit,7),2)", "planner:scaled(shaped(exit,7),2.0):5.0"),
        ("runs/ckpt_000100_steps.zip", "runs/ckpt_000100_steps.zip"),
    ],
)
def test_policy_specs_parse_to_canonical_text(text: str, canonical: str) -> None:
    spec = PolicySpec.parse(text)
    assert spec.text == canonical
    assert PolicySpec.parse(spec.text) == spec  # the canonical text round-trips


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "non-empty"),
        ("zoo:", "needs a name"),
        ("planner:", "expected planner:OBJECTIVE"),
        ("planner:exit:0", "positive"),
        ("planner:exit:nan", "positive"),
        ("planner:exit:five", "bad planner beta"),
        ("planner:exit:5:1.5", "discount"),
        ("planner:exit:5:0.9:1", "expected planner:OBJECTIVE"),
        ("epsilon:exit", "expected epsilon:OBJECTIVE:EPSILON"),
        ("epsilon:exit:1.5", "[0, 1]"),
        ("planner:scaled(exit,0)", "non-zero"),
        ("planner:scaled(exit,inf)", "finite"),
        ("planner:shaped(exit,-1)", "non-negative integer seed"),
        ("planner:shaped(exit,1.5)", "non-negative integer seed"),
        ("planner:squared(exit,2)", "unknown objective transform"),
        ("planner:scaled(exit,3", "missing ')'"),
        ("planner:scaled(exit)", "expected scaled(OBJECTIVE,NUMBER)"),
        ("planner:exit)", "unexpected"),
        ("planner:3exit", "expected a name"),
    ],
)
def test_policy_spec_errors_are_specific(text: str, needle: str) -> None:
    with pytest.raises(SpecError, match=None) as info:
        PolicySpec.parse(text)
    assert needle in str(info.value)
    assert isinstance(info.value, BehavioralError) and isinstance(info.value, ValueError)


@pytest.fixture(scope="module")
def red_model():
    import behavioral_envs  # noqa: F401
    import gymnasium as gym

    env = gym.make(RED, split="deploy", size=7)
    env.reset(seed=3)
    return env.unwrapped.tabular_model()


def test_objective_transforms_compute_what_they_say(red_model) -> None:
    m = red_model
    base = np.asarray(m.objectives["exit"], dtype=float)
    scaled = objective_reward("scaled(exit,3)")(m)
    shifted = objective_reward("shifted(exit,-0.5)")(m)
    shaped = objective_reward("shaped(exit,7)")(m)
    np.testing.assert_allclose(scaled, 3 * base)
    np.testing.assert_allclose(shifted, base - 0.5)
    # potential shaping r(s, a) + E[phi(s')] - phi(s), with phi = 0 in absorbing states
    from behavioral.specs import _potential

    full = base if base.ndim == 2 else np.repeat(base[:, None], m.n_actions, axis=1)
    phi = _potential(m, 7)
    states = np.arange(m.n_states)
    absorbing = np.asarray(m.transitions[states * m.n_actions, states]).ravel() == 1.0
    assert absorbing.any() and np.all(phi[absorbing] == 0) and np.all(phi[~absorbing] != 0)
    expected = full + (m.transitions @ phi).reshape(m.n_states, m.n_actions) - phi[:, None]
    np.testing.assert_allclose(shaped, expected, atol=1e-12)
    np.testing.assert_allclose(_potential(m, 7), phi)  # the same potential for the same level
    assert not np.allclose(_potential(m, 8), phi)
    assert objective_reward("exit") == "exit"
    assert parse_objective("scaled(shaped(exit,7),2)").names == ("exit",)


def test_a_planner_for_a_positive_multiple_plans_the_same_optimal_actions(red_model) -> None:
    from behavioral.specs import load_policy

    eps = load_policy(PolicySpec.parse("epsilon:exit:0.2"))
    eps3 = load_policy(PolicySpec.parse("epsilon:scaled(exit,3):0.2"))
    np.testing.assert_allclose(eps.plan(red_model), eps3.plan(red_model))


# ----------------------------------------------------------------------------- jobs


def test_jobs_from_a_toml_grid_with_defaults(tmp_path: Path) -> None:
    spec = tmp_path / "sweep.toml"
    spec.write_text(
        """
[defaults]
env = "reddoors"
episodes = 20
env_kwargs = {size = 7}
tags = {study = "grid"}

[[jobs]]
policy = "random"
split = "deploy"
env_kwargs = {max_steps = 30}

[[grid]]
policy = ["planner:exit:5", "planner:red_door"]
split = ["train", "deploy"]
seed = 3
n_bootstrap = [100]
"""
    )
    jobs = load_jobs(spec)
    assert len(jobs) == 5
    assert jobs[0].env == RED and dict(jobs[0].env_kwargs) == {"size": 7, "max_steps": 30}
    assert [(j.policy, j.split) for j in jobs[1:]] == [
        ("planner:exit:5.0", "train"),
        ("planner:exit:5.0", "deploy"),
        ("planner:red_door:5.0", "train"),
        ("planner:red_door:5.0", "deploy"),
    ]
    assert all(j.seed == 3 and j.options == {"n_bootstrap": 100} for j in jobs[1:])
    assert all(dict(j.tags) == {"study": "grid"} for j in jobs)
    assert all(j.episodes == 20 for j in jobs)


def test_a_glob_expands_to_one_job_per_file(tmp_path: Path) -> None:
    for step in (200, 100, 300):
        (tmp_path / f"ckpt_{step:06d}_steps.zip").write_bytes(b"zip %d" % step)
    jobs = load_jobs([{"policy": str(tmp_path / "ckpt_*.zip"), "env": RED}])
    assert [Path(j.policy).name for j in jobs] == [
        "ckpt_000100_steps.zip",
        "ckpt_000200_steps.zip",
        "ckpt_000300_steps.zip",
    ]


@pytest.mark.parametrize(
    ("job", "error", "needle"),
    [
        ({"policy": "random", "env": RED, "polcy": 1}, SpecError, "unknown key(s) ['polcy']"),
        ({"env": RED}, SpecError, "'policy' must be"),
        ({"policy": "planner:exit:-1", "env": RED}, SpecError, "job 0: planner beta"),
        ({"policy": "random", "env": RED, "episodes": 0}, SpecError, "'episodes'"),
        ({"policy": "random", "env": RED, "seed": -1}, SpecError, "'seed'"),
        ({"policy": "random", "env": RED, "episodes": True}, SpecError, "'episodes'"),
        ({"policy": "random", "env": RED, "n_bootstrap": 5}, SpecError, "n_bootstrap"),
        ({"policy": "random", "env": RED, "lapse": "maybe"}, SpecError, "lapse"),
        ({"policy": "random", "env": RED, "method": "bc"}, SpecError, "method"),
        ({"policy": "random", "env": RED, "discounts": [1.2]}, SpecError, "discounts"),
        (
            {"policy": "random", "env": RED, "objectives": {"x": "cubed(exit,3)"}},
            SpecError,
            "unknown objective transform",
        ),
        (
            {"policy": "random", "env": RED, "split": "train", "env_kwargs": {"split": "deploy"}},
            SpecError,
            "conflicts",
        ),
        ({"policy": "random", "env": RED, "report": "yes"}, SpecError, "'report'"),
        ({"policy": "random", "env": RED, "tags": {"verdict": "x"}}, SpecError, "tag name"),
        ({"policy": "random", "env": RED, "tags": {"t": [1]}}, SpecError, "tag 't'"),
        ({"policy": "random", "env": "NoSuchEnv-v0"}, UnknownEnvError, "NoSuchEnv-v0"),
        ({"policy": "planner:exit"}, SpecError, "a planner policy needs 'env'"),
        ({"policy": "nothing/here.zip", "env": RED}, FileNotFoundError, "policy file not found"),
        ({"policy": "nothing/*.zip", "env": RED}, SpecError, "no policy file matches"),
        ({"policy": "random", "env": RED, "env_kwargs": {"size": float("nan")}}, SpecError, "JSON"),
    ],
)
def test_job_errors_name_the_job_and_the_problem(job, error, needle) -> None:
    with pytest.raises(error) as info:
        load_jobs([job])
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"jobz": []}, "unknown sweep spec key"),
        ({"jobs": []}, "no jobs"),
        ({"grid": {"policy": []}}, "no alternatives"),
        ({"jobs": [1]}, "job 0: expected a table"),
        (42, "a list of jobs or a table"),
    ],
)
def test_spec_errors(spec, needle: str) -> None:
    with pytest.raises(SpecError, match=None) as info:
        load_jobs(spec)
    assert needle in str(info.value)


def test_spec_files_are_size_checked_and_parsed_safely(tmp_path: Path) -> None:
    from behavioral.sweeping.jobs import MAX_SPEC_BYTES

    big = tmp_path / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(MAX_SPEC_BYTES + 1)
    with pytest.raises(SpecError, match="at most"):
        load_jobs(big)
    bad = tmp_path / "bad.toml"
    bad.write_text("[defaults\n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_jobs(bad)
    with pytest.raises(FileNotFoundError):
        load_jobs(tmp_path / "missing.json")


def test_the_key_covers_policy_bytes_env_options_and_version(tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{n}.zip" for n in "abc")
    a.write_bytes(b"policy one")
    b.write_bytes(b"policy one")  # the same bytes elsewhere: the same audit
    c.write_bytes(b"policy two")
    job = Job(policy=str(a), env=RED, split="deploy", episodes=50)
    key = job_key(job)
    assert len(key) == 24 and int(key, 16) >= 0
    assert job_key(Job(policy=str(b), env=RED, split="deploy", episodes=50)) == key
    assert job_key(Job(policy=str(c), env=RED, split="deploy", episodes=50)) != key
    a.write_bytes(b"policy one, retrained")  # new bytes at the same path
    assert job_key(job) != key
    a.write_bytes(b"policy one")
    assert job_key(job) == key
    variants = [
        Job(policy=str(a), env=RED, split="train", episodes=50),
        Job(policy=str(a), env=RED, split="deploy", episodes=51),
        Job(policy=str(a), env=RED, split="deploy", episodes=50, seed=1),
        Job(policy=str(a), env=RED, split="deploy", episodes=50, env_kwargs={"size": 7}),
        Job(policy=str(a), env=RED, split="deploy", episodes=50, options={"n_bootstrap": 200}),
        Job(policy=str(a), env=RED, split="deploy", episodes=50, report=False),
    ]
    assert len({job_key(v) for v in variants} | {key}) == len(variants) + 1
    assert job_key(job, version="0.0.0-other") != key
    tagged = Job(policy=str(a), env=RED, split="deploy", episodes=50, tags={"step": 3})
    assert job_key(tagged) == key  # tags label a row, they do not change the audit
    same = [load_jobs([{"policy": p, "env": RED}])[0] for p in ("planner:exit", "planner:exit:5")]
    assert job_key(same[0]) == job_key(same[1])


# ----------------------------------------------------------------------------- journal


def test_the_journal_drops_a_torn_last_record_and_refuses_corruption(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        journal.append("a" * 24, "done", attempt=1, row={"verdict": "proxy", "x": float("nan")})
        journal.append("b" * 24, "retry", attempt=1, error="ValueError: once")
    path = tmp_path / "journal.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'{"v":1,"key":"cccccccccccccccccccccccc","status":"do')  # killed mid-write
    with Journal(tmp_path) as journal:
        assert journal.dropped_tail
        assert list(journal.latest()) == ["a" * 24]
        assert journal.latest()["a" * 24]["row"] == {"verdict": "proxy", "x": None}
    assert path.read_bytes().endswith(b"\n")
    lines = path.read_bytes().splitlines()
    path.write_bytes(lines[0] + b"\nnot json\n" + lines[1] + b"\n")
    with pytest.raises(JournalError, match=":2: not a JSON record"):
        Journal(tmp_path).__enter__()
    path.write_bytes(b'{"v":1,"key":"../etc","status":"done","attempt":1,"row":{}}\n')
    with pytest.raises(JournalError, match="bad key"):
        Journal(tmp_path).__enter__()


def test_one_sweep_directory_takes_one_sweep_at_a_time(tmp_path: Path) -> None:
    with Journal(tmp_path), pytest.raises(SweepLockedError):
        Journal(tmp_path).__enter__()
    with Journal(tmp_path):  # released
        pass


# ----------------------------------------------------------------------------- sweeps


def _journal(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]


def test_a_sweep_retries_a_failure_once_records_it_and_skips_finished_audits(
    tmp_path: Path,
) -> None:
    jobs = [
        {"policy": "planner:red_door:5", "split": "deploy", **SMALL, "report": True},
        {"policy": "planner:exit:5", "split": "deploy", **SMALL},
        # declared by WaterPlants, not by RedDoors: fails in the worker, every time
        {"policy": "planner:water_stuff:5", "split": "deploy", **SMALL},
    ]
    out = tmp_path / "sweep"
    table = behavioral.sweep(jobs, out=out, workers=2, progress=False)
    assert table.attrs == {"run": 2, "skipped": 0, "failed": 1}
    assert list(table["status"]) == ["done", "done", "failed"]
    assert list(table["attempts"]) == [1, 1, 2]
    assert (
        "UnknownObjectiveError" in table.loc[2, "error"] and "water_stuff" in table.loc[2, "error"]
    )
    assert table.loc[0, "verdict"] == "proxy" and table.loc[0, "proxy"] == "red_door"
    assert table.loc[1, "verdict"] == "aligned"
    assert Path(table.loc[0, "report"], "report.html").is_file()
    assert pd.isna(table.loc[1, "report"])  # report=False
    for col in ("ll.exit", "ll_low.exit", "delta.red_door", "delta_high.red_door", "epic.exit"):
        assert np.isfinite(table.loc[0, col])
    assert table.loc[0, "delta_low.red_door"] <= table.loc[0, "delta.red_door"]
    assert table.loc[0, "delta.red_door"] <= table.loc[0, "delta_high.red_door"]
    assert 0 <= table.loc[0, "rate.red_decoy"] <= 1 and table.loc[0, "rate.red_decoy"] > 0.5
    assert table.loc[0, "policy_ll"] < 0 and table.loc[0, "seconds"] > 0
    records = _journal(out)
    assert [r["status"] for r in records if r["status"] != "done"] == ["retry", "failed"]
    # on disk: the same rows, the report relative to the sweep directory
    on_disk = pd.read_parquet(out / "results.parquet")
    assert list(on_disk["verdict"].fillna("-")) == ["proxy", "aligned", "-"]
    assert on_disk.loc[0, "report"] == f"reports/{table.loc[0, 'key']}"
    assert len(pd.read_csv(out / "results.csv")) == 3

    # Again: the finished audit is skipped, the failed one tried again, and the one whose
    # report directory was removed is recomputed.
    shutil.rmtree(table.loc[0, "report"])
    again = behavioral.sweep(jobs, out=out, workers=2, progress=False)
    assert again.attrs == {"run": 1, "skipped": 1, "failed": 1}
    assert list(again["status"]) == ["done", "skipped", "failed"]
    assert Path(again.loc[0, "report"], "report.html").is_file()
    pd.testing.assert_series_equal(again["ll.exit"], table["ll.exit"])  # the same audits
    done = [r["key"] for r in _journal(out) if r["status"] == "done"]
    assert done.count(table.loc[1, "key"]) == 1  # the finished audit was not recomputed


def _sweep_cli(spec: Path, out: Path, log: Path, *extra: str) -> subprocess.Popen:
    """The CLI in a subprocess, its output in ``log`` (a pipe would stay open as long as
    any descendant lives, which is what the test checks separately)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    with open(log, "w") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "behavioral", "sweep", str(spec), "--out", str(out), *extra],
            stdout=fh,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )


def _wait_for_done_records(out: Path, n: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = out / "journal.jsonl"
        if path.exists() and sum(r["status"] == "done" for r in _journal(out)) >= n:
            return
        assert proc.poll() is None, "the sweep ended before it was interrupted"
        time.sleep(0.2)
    raise AssertionError("the sweep finished no audit in time")


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_sweep_resumes_without_recomputing(tmp_path: Path, sig: int) -> None:
    policies = ["planner:exit:5", "planner:red_door:5", "planner:exit:1", "planner:red_door:1"]
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps({"defaults": {**SMALL, "split": "deploy"}, "grid": {"policy": policies}})
    )
    out = tmp_path / "sweep"
    log = tmp_path / "log.txt"
    proc = _sweep_cli(spec, out, log, "--workers", "1", "--no-progress")
    _wait_for_done_records(out, 1, proc)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130
        text = log.read_text()
        assert "run it again to resume" in text
        assert "Traceback" not in text and "leaked" not in text
    else:
        assert proc.returncode == -signal.SIGKILL
    before = _journal(out)
    finished = {r["key"] for r in before if r["status"] == "done"}
    assert 0 < len(finished) < len(policies)
    worker = int(next(r for r in before if r["status"] == "done")["row"]["worker"].split(":")[1])
    assert _gone(worker, timeout=30), "a worker outlived its sweep"

    table = behavioral.sweep(spec, out=out, workers=1, progress=False)
    assert table.attrs == {
        "run": len(policies) - len(finished),
        "skipped": len(finished),
        "failed": 0,
    }
    assert set(table.loc[table["status"] == "skipped", "key"]) == finished
    after = _journal(out)
    done_keys = [r["key"] for r in after if r["status"] == "done"]
    assert sorted(done_keys) == sorted(set(done_keys))  # every audit exactly once
    assert len(done_keys) == len(policies) and len(table) == len(policies)
    on_disk = pd.read_csv(out / "results.csv")
    assert sorted(on_disk["key"]) == sorted(table["key"]) and on_disk["key"].is_unique


def test_cli_sweep_errors_are_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps([{"policy": "planner:exit:0", "env": RED}]))
    proc = subprocess.run(
        [sys.executable, "-m", "behavioral", "sweep", str(spec), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("behavioral: error: job 0: planner beta")
    assert not (tmp_path / "o").exists()  # nothing is created for a bad spec


# ----------------------------------------------------------------------------- Ray


def test_ray_and_local_sweeps_give_identical_audits(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    jobs = [
        {"policy": "planner:exit:5", "split": "deploy", **SMALL},
        {"policy": "planner:red_door:5", "split": "deploy", **SMALL, "report": True},
    ]
    local = behavioral.sweep(jobs, out=tmp_path / "local", workers=2, progress=False)
    ray_table = behavioral.sweep(
        jobs, executor="ray", workers=2, out=tmp_path / "ray", progress=False
    )
    assert list(local["status"]) == ["done"] * 2 == list(ray_table["status"])
    assert list(local["verdict"]) == ["aligned", "proxy"]
    # the Ray worker sent its report back to the driver
    assert Path(ray_table.loc[1, "report"], "report.html").is_file()
    for col in ("key", "verdict", "proxy", "ll.exit", "ll.red_door", "delta_low.red_door"):
        pd.testing.assert_series_equal(local[col], ray_table[col])
    assert ray_table["worker"].nunique() >= 1


def test_the_example_spec_loads() -> None:
    jobs = load_jobs(ROOT / "docs" / "sweep-example.toml")
    assert len(jobs) == 12
    assert jobs[-1].options["objectives"] == {"water_stuff": False}
    assert len({job_key(j) for j in jobs}) == 12


@pytest.mark.slow
def test_sweep_speed_benchmark_runs() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "analyses/benchmarks/sweep_speed.py"), "--scale", "quick"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "4 audits" in proc.stdout and "identical verdicts across runs: True" in proc.stdout
    speedups = [float(x) for x in re.findall(r"speed-up ([\d.]+)x", proc.stdout)]
    assert len(speedups) == 2 and speedups[0] == 1.0 and speedups[1] > 0


def test_a_job_names_the_observation_wrappers_its_policy_saw(tmp_path: Path) -> None:
    """``observation_wrappers`` reaches the audit (recorded in its report); names outside
    the fixed table are refused; jobs without it keep the keys they had."""
    jobs = load_jobs(
        [
            {
                "policy": "zoo:minigrid-corner1",
                "env": "behavioral/MiniGridCorner-v0",
                "observation_wrappers": ["behavioral.minigrid.flat_observations"],
                "split": "deploy",
                "episodes": 3,
                "n_bootstrap": 50,
                "report": False,
            }
        ]
    )
    assert jobs[0].observation_wrappers == ("behavioral.minigrid.flat_observations",)
    plain = Job(policy="random", env=RED)
    assert job_key(plain, version="x") == job_key(
        Job(policy="random", env=RED, observation_wrappers=None), version="x"
    )
    assert job_key(plain, version="x") != job_key(
        Job(policy="random", env=RED, observation_wrappers=()), version="x"
    )
    with pytest.raises(SpecError, match="unknown observation wrapper"):
        load_jobs([{"policy": "random", "env": RED, "observation_wrappers": ["os.system"]}])
    with pytest.raises(SpecError, match="list of names"):
        load_jobs([{"policy": "random", "env": RED, "observation_wrappers": "x"}])
    bare = load_jobs([{**job_fields(jobs[0]), "observation_wrappers": []}])  # explicitly none
    table = behavioral.sweep([*jobs, *bare], out=tmp_path / "sweep")
    assert table["status"].tolist()[0] == "done", table.get("error")
    assert table["verdict"].iloc[0] in ("proxy", "indistinguishable", "unexplained")
    # the bare env's Dict observations do not fit the policy: the wrapper named reached it
    assert table["status"].iloc[1] == "failed"
    assert "flat_observations" in table["error"].iloc[1]
