"""The command line on Minigrid: any registered MiniGrid-* id audited through extracted
levels, objectives named from Minigrid's vocabulary, the corner zoo with its observation
wrapper."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_cli import assert_one_line_error, call, run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def here(tmp_path: Path) -> Path:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(cwd)


def _summary(path: Path) -> dict:
    return json.loads((path / "summary.json").read_text())


def test_random_on_fourrooms(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = call(
        capsys, "audit", "--env", "MiniGrid-FourRooms-v0", "--policy", "random",
        "--episodes", "3", "--fast", "--out", "fr",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = _summary(here / "fr")
    assert summary["verdict"] == "unexplained"  # random actions
    assert summary["metadata"]["env_id"] == "MiniGrid-FourRooms-v0"
    assert f"verdict: {summary['verdict']}" in res.stdout
    assert (here / "fr" / "level0.png").stat().st_size > 10_000


@pytest.mark.slow
def test_random_on_fourrooms_as_the_issue_asks(tmp_path: Path) -> None:
    """``behavioral audit --env MiniGrid-FourRooms-v0 --policy random``, as typed (100
    episodes; about a minute)."""
    proc = run("audit", "--env", "MiniGrid-FourRooms-v0", "--policy", "random", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "verdict: unexplained" in proc.stdout
    assert (tmp_path / "behavioral-report" / "report.html").is_file()


def test_objectives_by_vocabulary_name(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = call(
        capsys, "audit", "--env", "MiniGrid-LavaGapS5-v0", "--policy", "planner:reward:20",
        "--objective", "corner=region:3,1,3,1", "--objective", "burnt=lava", "--base", "reward",
        "--episodes", "10", "--fast", "--out", "lava",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = _summary(here / "lava")
    assert summary["base"] == "reward"
    assert set(summary["proxies"]) == {"corner", "burnt"}
    names = {row["objective"] for row in summary["table"]}
    assert names == {"reward", "corner", "burnt"}


def test_objective_errors(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ("audit", "--policy", "random", "--episodes", "2", "--out", "never")
    res = call(capsys, *base, "--env", "MiniGrid-Empty-5x5-v0", "--objective", "c=region:1,2")
    assert res.returncode == 2
    assert_one_line_error(res, "region:X0,Y0,X1,Y1")
    res = call(capsys, *base, "--env", "MiniGrid-Empty-5x5-v0", "--objective", "c=reach:gool")
    assert_one_line_error(res, "unknown Minigrid object type 'gool'")
    res = call(capsys, *base, "--env", "MiniGrid-Empty-5x5-v0", "--objective", "no_name")
    assert_one_line_error(res, "NAME=PREDICATE")
    res = call(capsys, *base, "--env", "reddoors", "--objective", "c=lava")
    assert res.returncode == 1
    assert_one_line_error(res, "not a Minigrid env")
    res = call(capsys, *base, "--env", "Pendulum-v1")
    assert_one_line_error(res, "cannot audit Pendulum-v1", "Discrete")
    assert not (here / "never").exists()
    help_text = call(capsys, "audit", "--help").stdout
    assert "--objective NAME=PREDICATE" in help_text and "region:X0,Y0,X1,Y1" in help_text


def test_corner_zoo_policy_then_its_dataset(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = call(
        capsys, "rollout", "--policy", "zoo:minigrid-corner1", "--split", "deploy",
        "--episodes", "12", "--out", "data",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    meta = json.loads((here / "data" / "metadata.json").read_text())
    assert meta["observation_wrappers"] == ["behavioral.minigrid.flat_observations"]
    assert meta["env_kwargs"] == {"size": 9, "corner_size": 1, "split": "deploy"}
    # the audit re-makes the env with its observation wrapper from the dataset's names
    res = call(capsys, "audit", "--dataset", "data", "--fast", "--out", "rep")
    assert res.returncode == 0, res.stderr
    summary = _summary(here / "rep")
    assert summary["metadata"]["policy_name"] == "minigrid-corner1"
    assert summary["verdict"] == "proxy" and summary["proxy"] == "corner", summary["reason"]


def test_irl_on_a_minigrid_dataset_weighs_the_levels_features(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res = call(
        capsys, "rollout", "--policy", "planner:reward:20", "--env", "MiniGrid-LavaGapS5-v0",
        "--episodes", "10", "--out", "lava",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    res = call(capsys, "irl", "lava", "--out", "w.json")
    assert res.returncode == 0, res.stderr
    doc = json.loads((here / "w.json").read_text())
    assert list(doc["weights"]) == ["reward", "lava"]  # the audit's features of these levels
    assert doc["weights"]["reward"] > 0 > doc["weights"]["lava"]  # seeks the goal, not lava


@pytest.fixture(scope="module")
def image_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PPO zip trained the way Minigrid users often do: behind ``ImgObsWrapper``
    (image only), saved by SB3 itself (no metadata of ours)."""
    import gymnasium as gym
    import minigrid  # noqa: F401
    from minigrid.wrappers import ImgObsWrapper
    from stable_baselines3 import PPO

    env = ImgObsWrapper(gym.make("MiniGrid-Empty-5x5-v0"))
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(64)
    path = tmp_path_factory.mktemp("zips") / "img.zip"
    model.save(path)
    return path


def test_a_users_image_policy_is_told_its_wrapper_and_audited_with_it(
    here: Path, image_zip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ("audit", "--env", "MiniGrid-Empty-5x5-v0", "--policy", str(image_zip))
    res = call(capsys, *base, "--episodes", "3", "--fast", "--out", "bare")
    assert_one_line_error(res)
    assert "--obs-wrapper minigrid.wrappers.ImgObsWrapper" in res.stderr
    assert not (here / "bare").exists()
    res = call(
        capsys, *base, "--obs-wrapper", "minigrid.wrappers.ImgObsWrapper",
        "--episodes", "3", "--fast", "--out", "wrapped",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    meta = _summary(here / "wrapped")["metadata"]
    assert meta["env_id"] == "MiniGrid-Empty-5x5-v0"
    assert meta["observation_wrappers"] == ["minigrid.wrappers.ImgObsWrapper"]
    assert "minigrid.wrappers.ImgObsWrapper" in (here / "wrapped" / "report.md").read_text()
    res = call(capsys, *base, "--obs-wrapper", "os.system", "--out", "x")
    assert res.returncode != 0 and "invalid choice" in res.stderr


def test_a_babyai_level_is_audited(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """BabyAI levels: the instruction's progress is part of the extracted state, and the
    mission text (BabyAI's own mission space) is recorded with the observations."""
    res = call(
        capsys, "audit", "--env", "BabyAI-GoToLocalS5N2-v0", "--policy", "planner:reward:5",
        "--episodes", "8", "--fast", "--out", "baby",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert _summary(here / "baby")["verdict"] == "aligned"


def test_active_audit_of_minigrid_levels(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--design active`` on a Minigrid id: the levels given as reset seeds are
    extracted and scored, and the anytime-valid test decides; a split name is refused in
    one line (Minigrid ids have no splits)."""
    res = call(
        capsys, "audit", "--env", "MiniGrid-Empty-Random-6x6-v0", "--policy", "planner:reward:5",
        "--objective", "corner=region:1,1,1,1", "--design", "active", "--levels", "0,1,2,3,4,5",
        "--episodes", "20", "--fast", "--out", "act",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = _summary(here / "act")
    assert summary["verdict"] == "aligned"
    assert summary["sequential"]["design"] == "active" and summary["sequential"]["n_episodes"] < 20
    assert (here / "act" / "design_levels.png").stat().st_size > 10_000
    res = call(
        capsys, "audit", "--env", "MiniGrid-Empty-Random-6x6-v0", "--policy", "random",
        "--objective", "corner=region:1,1,1,1", "--design", "active", "--levels", "deploy",
        "--episodes", "4", "--out", "no",
    )  # fmt: skip
    assert_one_line_error(res, "has no splits")
