"""Tests of the ``behavioral`` command line, run in subprocesses as a user would."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from behavioral.cli import main

SUBCOMMANDS = ("demo", "audit", "rollout", "irl", "train")
RED = "behavioral/RedDoors-v0"


def run(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", "behavioral", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


@dataclasses.dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def call(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """Run ``main(args)`` in this process (cheaper than a subprocess; same code path)."""
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exit_:  # argparse usage errors and --help
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def assert_one_line_error(proc: subprocess.CompletedProcess[str] | Result, *needles: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("behavioral: error: ")
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def dataset(workdir: Path) -> Path:
    proc = run(
        "rollout",
        "--policy",
        "planner:red_door:5",
        "--env",
        RED,
        "--split",
        "deploy",
        "--episodes",
        "6",
        "--seed",
        "3",
        "--out",
        "data",
        cwd=workdir,
    )
    assert proc.returncode == 0, proc.stderr
    assert (workdir / "data" / "metadata.json").exists()
    return workdir / "data"


def test_help_everywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proc = run("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for cmd in SUBCOMMANDS:
        assert cmd in proc.stdout
    for cmd in SUBCOMMANDS:
        res = call(capsys, cmd, "--help")
        assert res.returncode == 0, res.stderr
        assert res.stdout.startswith(f"usage: behavioral {cmd}")
        assert "--" in res.stdout


def test_audit_writes_a_report_and_never_overwrites_without_force(workdir: Path) -> None:
    args = ("audit", "--policy", "planner:red_door", "--env", RED, "--split", "deploy")
    proc = run(*args, "--episodes", "8", "--fast", "--out", "rep", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((workdir / "rep" / "summary.json").read_text())
    assert summary["verdict"] in ("proxy", "indistinguishable")
    assert summary["metadata"]["split"] == "deploy"
    assert f"verdict: {summary['verdict']}" in proc.stdout
    page = workdir / "rep" / "report.html"
    assert page.read_text(encoding="utf-8").count("<img ") >= 3
    before = page.stat().st_mtime_ns
    proc = run(*args, "--episodes", "8", "--out", "rep", cwd=workdir)
    assert_one_line_error(proc, "rep exists", "--force")
    assert page.stat().st_mtime_ns == before


def test_bad_input_in_a_subprocess(workdir: Path) -> None:
    base = ("audit", "--policy", "random", "--out", "never")
    proc = run(*base, "--env", "behavioral/NoSuchEnv-v0", cwd=workdir)
    assert proc.returncode == 1
    assert_one_line_error(proc, "NoSuchEnv")
    proc = run("audit", "--policy", "missing.zip", "--env", RED, "--out", "never", cwd=workdir)
    assert_one_line_error(proc, "policy file not found", "missing.zip")
    proc = run(*base, "--env", RED, "--episodes", "0", cwd=workdir)
    assert proc.returncode == 2
    assert_one_line_error(proc, "--episodes")
    assert not (workdir / "never").exists()


def test_bad_input_gives_one_line_errors(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    base = ("audit", "--policy", "random", "--out", "never")
    for bad in ("0", "-3", "many"):
        res = call(capsys, *base, "--env", RED, "--episodes", bad)
        assert res.returncode == 2
        assert_one_line_error(res, "--episodes")
    assert_one_line_error(call(capsys, *base, "--env", RED, "--seed", "-1"), "--seed")
    assert_one_line_error(call(capsys, *base, "--env", RED, "--split", "sideways"), "split")
    assert_one_line_error(call(capsys, *base, "--env", "nope"), "nope")
    assert_one_line_error(call(capsys, *base, "--env", RED, "--policy", "zoo:"), "zoo:NAME")
    assert_one_line_error(call(capsys, *base, "--env", RED, "--policy", "zoo:no-such-policy"))
    assert_one_line_error(call(capsys, *base, "--env", RED, "--policy", "planner:exit:-1"), "beta")
    assert_one_line_error(
        call(capsys, *base, "--env", RED, "--policy", "planner:no_such_objective"),
        "no_such_objective",
    )
    assert_one_line_error(call(capsys, *base, "--policy", "random"), "--env")
    assert_one_line_error(call(capsys, "audit", "--env", RED, "--out", "never"), "--policy")
    assert_one_line_error(call(capsys, "audit", "--method", "magic"), "--method")
    assert_one_line_error(call(capsys, "frobnicate"))
    assert_one_line_error(call(capsys))
    assert_one_line_error(call(capsys, "train", "--env", RED, "--out", "p", "--env-kwarg", "x"))
    bad_zip = workdir / "not_a_policy.zip"
    bad_zip.write_bytes(b"this is not a zip file")
    assert_one_line_error(
        call(capsys, "audit", "--policy", str(bad_zip), "--env", RED, "--out", "never"),
        "cannot load",
    )
    assert_one_line_error(
        call(capsys, "audit", "--policy", str(workdir), "--env", RED, "--out", "never"),
        "directory",
    )
    assert not (workdir / "never").exists()


def test_rollout_then_irl(
    workdir: Path,
    dataset: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proc = run("irl", str(dataset), "--out", "weights.json", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((workdir / "weights.json").read_text())
    assert doc["n_episodes"] == 6 and doc["env_id"] == RED and doc["split"] == "deploy"
    weights = doc["weights"]
    assert set(weights) >= {"exit", "red_door", "step"}
    # a red-door seeker on deploy levels: the red door outweighs the exit
    assert weights["red_door"] > weights["exit"]
    low, high = doc["confidence_intervals"]["intervals"]["red_door"]
    assert low <= weights["red_door"] <= high
    monkeypatch.chdir(workdir)
    # existing output is refused; standard output works without --out
    before = (workdir / "weights.json").read_text()
    assert_one_line_error(call(capsys, "irl", str(dataset), "--out", "weights.json"), "exists")
    assert (workdir / "weights.json").read_text() == before
    res = call(capsys, "irl", str(dataset))
    assert res.returncode == 0 and json.loads(res.stdout)["weights"] == weights
    (workdir / "weights.json").write_text("stale", encoding="utf-8")
    res = call(capsys, "irl", str(dataset), "--out", "weights.json", "--force")
    assert res.returncode == 0
    assert json.loads((workdir / "weights.json").read_text())["weights"] == weights
    # rollout refuses an existing dataset directory without --force
    res = call(
        capsys,
        "rollout",
        "--policy",
        "random",
        "--env",
        RED,
        "--episodes",
        "1",
        "--out",
        str(dataset),
    )
    assert_one_line_error(res, "exists")


def test_corrupt_and_missing_datasets(
    workdir: Path,
    dataset: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = workdir / "corrupt"
    bad.mkdir()
    for f in dataset.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    arrays = bad / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[: arrays.stat().st_size // 2])
    assert_one_line_error(run("irl", str(bad), cwd=workdir))
    monkeypatch.chdir(workdir)
    assert_one_line_error(call(capsys, "audit", "--dataset", str(bad), "--out", "x"))
    assert_one_line_error(call(capsys, "irl", "no/such/dir"), "not found")
    assert_one_line_error(
        call(capsys, "audit", "--dataset", "no/such/dir", "--out", "x"), "not found"
    )
    garbled = workdir / "garbled"
    garbled.mkdir()
    (garbled / "metadata.json").write_text("{not json", encoding="utf-8")
    assert_one_line_error(call(capsys, "irl", str(garbled)))
    assert not (workdir / "x").exists()


def test_audit_a_saved_dataset(
    workdir: Path,
    dataset: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(workdir)
    res = call(capsys, "audit", "--dataset", str(dataset), "--fast", "--out", "from_data")
    assert res.returncode == 0, res.stderr
    summary = json.loads((workdir / "from_data" / "summary.json").read_text())
    assert summary["n_episodes"] == 6
    assert_one_line_error(
        call(capsys, "audit", "--dataset", str(dataset), "--policy", "random", "--out", "y"),
        "not both",
    )


def test_demo_refuses_an_existing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "out").mkdir()
    assert_one_line_error(run("demo", "--out", "out", cwd=tmp_path), "exists", "--force")
    monkeypatch.chdir(tmp_path)
    assert call(capsys, "demo", "--episodes", "0").returncode == 2


@pytest.mark.slow
def test_demo_writes_the_report_directory(tmp_path: Path) -> None:
    proc = run("demo", "--fast", "--episodes", "3", "--out", "demo", cwd=tmp_path, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "demo"
    index = (out / "index.html").read_text(encoding="utf-8")
    reports = sorted(out.glob("*/*/report.html"))
    # four policies x (train, deploy, comparison)
    assert len(reports) == 12
    for page in reports:
        assert page.relative_to(out).as_posix() in index or "comparison" in page.as_posix()
    assert index.count("<img ") == 4
    proc = run("demo", "--fast", "--episodes", "3", "--out", "demo", cwd=tmp_path)
    assert_one_line_error(proc, "exists")


def test_train_then_audit_the_zip_in_the_env_it_was_trained_in(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("train", "--env", "reddoors", "--env-kwarg", "size=5", "--timesteps", "64")
    proc = run(*args, "--n-envs", "1", "--out", "tiny", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert (workdir / "tiny.zip").is_file()
    assert_one_line_error(run(*args, "--out", "tiny.zip", cwd=workdir), "exists")
    monkeypatch.chdir(workdir)
    # no --env: the zip's metadata names the env and its size
    res = call(
        capsys,
        "audit",
        "--policy",
        "tiny.zip",
        "--split",
        "deploy",
        "--episodes",
        "3",
        "--fast",
        "--out",
        "tiny-report",
    )
    assert res.returncode == 0, res.stderr
    meta = json.loads((workdir / "tiny-report" / "summary.json").read_text())["metadata"]
    assert meta["env_id"] == RED and meta["env_kwargs"]["size"] == 5
    assert meta["split"] == "deploy"
