"""Checkpoints and drift: train_ppo keeps checkpoints without changing training; the drift
table, the proxy's onset and the drift report; ``behavioral drift`` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from behavioral.drift import (
    DriftError,
    checkpoint_steps,
    drift_table,
    proxy_onset,
    write_drift_report,
)
from behavioral.errors import InvalidArgumentError

RED = "behavioral/RedDoors-v0"
TINY_PPO = {"n_steps": 64, "batch_size": 64, "n_epochs": 2}


# ----------------------------------------------------------------------------- checkpoints


def test_checkpoint_steps_come_from_the_last_number_of_each_name(tmp_path: Path) -> None:
    for name in ("ckpt_000002000_steps.zip", "ckpt_000000000_steps.zip", "run3-step-500.zip"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    steps = checkpoint_steps(tmp_path)
    assert [s for s, _ in steps] == [0, 500, 2000]
    assert steps[1][1].name == "run3-step-500.zip"


@pytest.mark.parametrize(
    ("names", "error", "needle"),
    [
        ((), DriftError, "no checkpoint .zip"),
        (("final.zip",), DriftError, "no number in its name"),
        (("a_100.zip", "b_100.zip"), DriftError, "both step 100"),
    ],
)
def test_checkpoint_steps_errors(tmp_path: Path, names, error, needle) -> None:
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(error, match=None) as info:
        checkpoint_steps(tmp_path)
    assert needle in str(info.value)
    with pytest.raises(FileNotFoundError):
        checkpoint_steps(tmp_path / "missing")


#: The small training run whose checkpoints the tests audit (with and without checkpoints).
RUN = dict(
    split="train",
    env_kwargs={"size": 7},
    total_timesteps=600,
    seed=3,
    n_envs=2,
    progress_bar=False,
    ppo_kwargs=TINY_PPO,
)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, one_torch_thread) -> tuple[Path, object]:
    from behavioral.policies import train_ppo

    directory = tmp_path_factory.mktemp("ckpt")
    model = train_ppo(RED, **RUN, checkpoint_every=200, checkpoint_dir=directory)
    return directory, model


def test_checkpoints_do_not_change_training(checkpoints) -> None:
    import torch

    from behavioral.policies import load_ppo, train_ppo

    directory, model = checkpoints
    names = sorted(p.name for p in directory.glob("*.zip"))
    # before training, at the first update boundary (every 64 steps x 2 envs = 128) at or
    # past each multiple of 200, and at the end (600 steps round up to 5 rollouts = 640)
    assert names == [f"ckpt_{s:09d}_steps.zip" for s in (0, 256, 512, 640)]
    plain = train_ppo(RED, **RUN)
    a, b = model.policy.state_dict(), plain.policy.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    last = load_ppo(directory / names[-1])
    assert all(torch.equal(last.policy.state_dict()[k], a[k]) for k in a)
    assert last.behavioral_metadata["checkpoint_timesteps"] == 640
    assert load_ppo(directory / names[0]).behavioral_metadata["checkpoint_timesteps"] == 0
    assert "checkpoint_timesteps" not in model.behavioral_metadata
    first = load_ppo(directory / names[0]).policy.state_dict()
    assert not all(torch.equal(first[k], a[k]) for k in a)  # it did train in between


@pytest.mark.parametrize(
    "kwargs", [{"checkpoint_every": 0, "checkpoint_dir": "x"}, {"checkpoint_every": 5}]
)
def test_bad_checkpoint_arguments(kwargs) -> None:
    from behavioral.policies import train_ppo

    with pytest.raises(InvalidArgumentError, match="checkpoint_every"):
        train_ppo(RED, total_timesteps=10, seed=0, progress_bar=False, **kwargs)


# ----------------------------------------------------------------------------- the table


def _sweep_table(verdicts, proxies, coinciding=None, steps=None) -> pd.DataFrame:
    """A sweep table as ``behavioral.sweep`` returns it, for a drift over ``steps``."""
    n = len(verdicts)
    steps = steps or [1000 * i for i in range(n)]
    rng = np.random.default_rng(0)
    delta = rng.normal(size=n)
    return pd.DataFrame(
        {
            "step": steps,
            "status": ["done"] * n,
            "verdict": verdicts,
            "proxy": proxies,
            "base": ["exit"] * n,
            "coinciding": coinciding or [""] * n,
            "episodes": [20] * n,
            "delta.exit": [0.0] * n,
            "delta_low.exit": [0.0] * n,
            "delta_high.exit": [0.0] * n,
            "delta.red_door": delta,
            "delta_low.red_door": delta - 0.5,
            "delta_high.red_door": delta + 0.5,
            "rate.exit": np.linspace(0.1, 0.9, n),
            "rate.red_decoy": np.linspace(0.0, 0.5, n),
            "report": [f"/abs/sweep/reports/{i:024x}" for i in range(n)],
        }
    )


def test_drift_table_keeps_each_proxy_s_evidence_by_step() -> None:
    table = _sweep_table(["aligned", "proxy"], [None, "red_door"], steps=[5000, 0])
    drift = drift_table(table)
    assert list(drift["step"]) == [0, 5000]  # sorted by step
    assert "evidence.red_door" in drift.columns and "evidence.exit" not in drift.columns
    np.testing.assert_allclose(drift["evidence.red_door"], table["delta.red_door"][::-1])
    np.testing.assert_allclose(drift["evidence_high.red_door"], table["delta_high.red_door"][::-1])
    with pytest.raises(DriftError, match="step"):
        drift_table(table.drop(columns="step"))


@pytest.mark.parametrize(
    ("verdicts", "proxies", "coinciding", "onset"),
    [
        (
            ["indistinguishable", "proxy", "aligned", "proxy", "proxy"],
            None,
            None,
            ("red_door", 3000),
        ),
        (["proxy", "proxy", "proxy"], None, None, ("red_door", 0)),
        (["proxy", "proxy", "aligned"], None, None, None),
        (["aligned", "unexplained", "indistinguishable"], None, None, None),
        # another proxy named in between breaks the run unless it is the same reward there
        (
            ["proxy", "proxy", "proxy"],
            ["water_pots", "water_stuff", "water_pots"],
            ["", "", ""],
            ("water_pots", 2000),
        ),
        (
            ["proxy", "proxy", "proxy"],
            ["water_pots", "water_stuff", "water_pots"],
            ["", "water_pots", ""],
            ("water_pots", 0),
        ),
    ],
)
def test_proxy_onset_is_where_the_proxy_is_named_from_then_on(
    verdicts, proxies, coinciding, onset
) -> None:
    proxies = proxies or ["red_door" if v == "proxy" else None for v in verdicts]
    drift = drift_table(_sweep_table(verdicts, proxies, coinciding))
    assert proxy_onset(drift) == onset


def test_the_drift_report_is_self_contained_and_escaped(tmp_path: Path) -> None:
    table = _sweep_table(
        ["indistinguishable", "proxy", "proxy"], [None, "<b>red</b>", "<b>red</b>"]
    )
    table = table.rename(columns={c: c.replace("red_door", "<b>red</b>") for c in table.columns})
    drift = drift_table(table)
    paths = write_drift_report(drift, tmp_path / "out", about={"checkpoints": "<i>run</i>"})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "drift.csv",
        "drift.html",
        "drift.json",
        "drift.png",
    ]
    page = paths["html"].read_text()
    assert "<script" not in page.lower() and "http://" not in page and "https://" not in page
    assert page.count('src="data:image/png;base64,') == 1
    assert "<b>red</b>" not in page and "&lt;b&gt;red&lt;/b&gt;" in page
    assert "<i>run</i>" not in page
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(paths["json"].read_text())
    assert doc["onset"] == {"proxy": "<b>red</b>", "step": 1000}
    assert len(doc["steps"]) == 3 and doc["steps"][0]["step"] == 0
    csv = pd.read_csv(paths["csv"])
    # report links relative to the output directory
    assert not any(str(r).startswith("/") for r in csv["report"])


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_behavioral_drift_audits_every_checkpoint(checkpoints, tmp_path: Path) -> None:
    directory, _ = checkpoints
    out = tmp_path / "drift"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "behavioral",
            "drift",
            str(directory),
            "--split",
            "deploy",
            "--episodes",
            "10",
            "--fast",
            "--workers",
            "2",
            "--no-progress",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "checkpoints from step 0 to 640" in proc.stdout
    drift = pd.read_csv(out / "drift.csv")
    assert list(drift["step"]) == [0, 256, 512, 640]
    assert set(drift["verdict"]) <= {"aligned", "proxy", "indistinguishable", "unexplained"}
    assert drift["evidence.red_door"].notna().all() and "rate.red_decoy" in drift
    for report in drift["report"]:
        assert (out / report / "report.html").is_file()
    results = pd.read_csv(out / "results.csv")
    # the checkpoints' training env kwargs (7x7 levels) were reused on deploy
    assert all('"size": 7' in k and '"split": "deploy"' in k for k in results["env_kwargs"])
