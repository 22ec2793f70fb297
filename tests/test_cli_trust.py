"""The command line on bad input, foreign envs and hostile conditions: one line, a non-zero
exit, nothing lost, nothing run."""

from __future__ import annotations

import base64
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import oslimits
import pytest

from behavioral.cli import main
from behavioral.rollout import load_dataset
from behavioral.zoo import ZOO

RED = "behavioral/RedDoors-v0"
ENV = dict(os.environ, TQDM_DISABLE="1", PYTHONWARNINGS="ignore")


def call(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line(code: int, err: str, *needles: str) -> None:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("behavioral: error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "behavioral", *args]


@pytest.fixture()
def here(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli-data") / "data"
    assert (
        main(
            [
                "rollout", "--policy", "planner:red_door:5", "--env", RED, "--split", "deploy",
                "--env-kwarg", "size=7", "--episodes", "8", "--seed", "1", "--out", str(out),
            ]
        )
        == 0
    )  # fmt: skip
    return out


# --------------------------------------------------------------------------- options that do not apply


@pytest.mark.parametrize(
    "extra",
    [
        ("--split", "train"),
        ("--env-kwarg", "size=9"),
        ("--episodes", "5"),
        ("--deterministic",),
        ("--trust-policy-file",),
    ],
)
def test_rollout_options_are_refused_with_a_dataset(here, dataset, capsys, extra) -> None:
    code, _, err = call(capsys, "audit", "--dataset", str(dataset), *extra, "--out", "r")
    one_line(code, err, extra[0], "--dataset")
    assert not (here / "r").exists()


def test_dataset_options_are_refused_with_a_policy(here, capsys) -> None:
    code, _, err = call(capsys, "audit", "--policy", "random", "--env", RED, "--no-replay")
    one_line(code, err, "--no-replay")
    code, _, err = call(capsys, "audit", "--policy", "zoo:reddoors-train", "--trust-policy-file")
    one_line(code, err, "--trust-policy-file", ".zip")
    code, _, err = call(capsys, "irl", "somewhere", "--force")
    one_line(code, err, "--force", "--out")


# --------------------------------------------------------------------------- any env


def test_envs_without_splits_work_without_split(here, capsys) -> None:
    for env_id in ("CartPole-v1", "FrozenLake-v1"):
        code, _out, err = call(
            capsys, "rollout", "--policy", "random", "--env", env_id, "--episodes", "2",
            "--out", env_id,
        )  # fmt: skip
        assert code == 0, err
        assert len(load_dataset(here / env_id)) == 2
    code, _, err = call(
        capsys, "rollout", "--policy", "random", "--env", "CartPole-v1", "--split", "deploy",
        "--out", "x",
    )  # fmt: skip
    one_line(code, err, "has no splits")


def test_auditing_an_env_without_a_model_is_one_clear_line(here, capsys) -> None:
    t0 = time.perf_counter()
    code, _, err = call(capsys, "audit", "--env", "CartPole-v1", "--policy", "random")
    one_line(code, err, "CartPole-v1", "discrete model")
    assert time.perf_counter() - t0 < 30  # refused before rolling out
    assert not (here / "behavioral-report").exists()


def test_seals_ids_work(here, capsys) -> None:
    code, _out, err = call(
        capsys, "audit", "--env", "seals/CliffWorld7x4-v0", "--policy", "random",
        "--episodes", "10", "--fast", "--out", "cliff",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads((here / "cliff" / "summary.json").read_text())
    assert summary["metadata"]["env_id"] == "seals/CliffWorld7x4-v0"
    code, _, err = call(capsys, "audit", "--env", "seals/CliffWorld-v0", "--policy", "random")
    one_line(code, err, "CliffWorld7x4")  # gymnasium's suggestion


def test_observation_mismatch_is_one_line(here, capsys) -> None:
    code, _, err = call(
        capsys, "audit", "--policy", "zoo:waterplants-kettle", "--env", "reddoors", "--out", "m"
    )
    one_line(code, err, "(9, 6, 9)", "(9, 9, 9)")
    assert "Unexpected observation shape" not in err  # SB3's own message is not leaked


# --------------------------------------------------------------------------- outputs


def test_bad_targets_fail_before_any_work(here, capsys, monkeypatch) -> None:
    import behavioral.cli.commands as commands

    def never(*args, **kwargs):
        raise AssertionError("the work started before the output was checked")

    monkeypatch.setattr(commands, "policy_and_env", never)
    (here / "afile.txt").write_text("keep")
    code, _, err = call(
        capsys, "rollout", "--policy", "zoo:reddoors-train", "--out", "afile.txt/sub"
    )
    one_line(code, err, "afile.txt", "not a directory")
    (here / "photos").mkdir()
    (here / "photos" / "cat.jpg").write_bytes(b"meow")
    code, _, err = call(
        capsys, "audit", "--policy", "random", "--env", RED, "--out", "photos", "--force"
    )
    one_line(code, err, "does not look like")
    assert (here / "photos" / "cat.jpg").read_bytes() == b"meow"
    assert (here / "afile.txt").read_text() == "keep"


def test_irl_matches_the_audits_own_fit(here, dataset, capsys) -> None:
    code, out, err = call(capsys, "irl", str(dataset))
    assert code == 0, err
    irl = json.loads(out)
    code, _, err = call(capsys, "audit", "--dataset", str(dataset), "--fast", "--out", "a")
    assert code == 0, err
    recovered = json.loads((here / "a" / "summary.json").read_text())["recovered"]["weights"]
    assert set(irl["weights"]) == set(recovered)
    for name, w in irl["weights"].items():
        assert w == pytest.approx(recovered[name], abs=1e-6), name
    assert irl["n_levels"] <= 8


def test_unexpected_errors_are_one_line_too(here, capsys, monkeypatch) -> None:
    import behavioral.cli.commands as commands

    def broken(*args, **kwargs):
        raise TypeError("a bug\nover two lines")

    monkeypatch.setattr(commands, "policy_and_env", broken)
    code, _, err = call(capsys, "rollout", "--policy", "random", "--env", RED, "--out", "x")
    one_line(code, err, "unexpected TypeError", "BEHAVIORAL_TRACEBACK")
    monkeypatch.setenv("BEHAVIORAL_TRACEBACK", "1")
    with pytest.raises(TypeError):
        main(["rollout", "--policy", "random", "--env", RED, "--out", "y"])


def test_help_says_files_are_never_run(capsys) -> None:
    for args in (("--help",), ("audit", "--help"), ("rollout", "--help"), ("irl", "--help")):
        code, out, _ = call(capsys, *args)
        assert code == 0
        text = " ".join(out.split())
        assert "without unpickling" in text
    code, out, _ = call(capsys, "audit", "--help")
    assert "--trust-policy-file" in out and "--max-dataset-bytes" in out


# --------------------------------------------------------------------------- hostile files


def test_a_malicious_policy_zip_runs_nothing_unless_trusted(here, capsys) -> None:
    marker = here / "pwned"

    class Marker:
        def __reduce__(self):
            return (Path.write_text, (marker, "pwned"))

    src = ZOO["reddoors-train"].path
    with zipfile.ZipFile(src) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    data = json.loads(members["data"])
    data["policy_class"][":serialized:"] = base64.b64encode(pickle.dumps(Marker())).decode()
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(here / "evil.zip", "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    code, _, err = call(
        capsys, "rollout", "--policy", "evil.zip", "--split", "deploy", "--episodes", "2",
        "--out", "d",
    )  # fmt: skip
    assert code == 0, err  # the readable fields are enough: it acts, safely
    assert not marker.exists()
    code, _, err = call(
        capsys, "rollout", "--policy", "evil.zip", "--trust-policy-file", "--episodes", "2",
        "--out", "d2",
    )  # fmt: skip
    assert marker.exists()  # SB3's loader unpickled it: the opt-in is what its help says
    one_line(code, err, "cannot load")


# --------------------------------------------------------------------------- processes and the OS


def _wait_for(path: Path, timeout: float = 120) -> None:
    t0 = time.time()
    while not path.exists():
        if time.time() - t0 > timeout:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.05)


_PAUSED = """
import sys, time
from pathlib import Path
import behavioral.rollout as rollout
real = rollout._sha256

def paused(path):  # inside the staged dataset directory, before it is published
    Path("staged").touch()
    while not Path("go").exists():
        time.sleep(0.05)
    return real(path)

rollout._sha256 = paused
from behavioral.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def test_two_cli_writers_to_one_output(tmp_path: Path) -> None:
    args = ("rollout", "--policy", "random", "--env", RED, "--episodes", "30", "--out", "D")
    first = subprocess.Popen(
        [sys.executable, "-c", _PAUSED, *args], cwd=tmp_path, env=ENV, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        _wait_for(tmp_path / "staged")  # the first writer holds the lock, mid-write
        second = subprocess.run(
            cli(*args, "--force"), cwd=tmp_path, env=ENV, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        one_line(second.returncode, second.stderr, "being written by process", str(first.pid))
    finally:
        (tmp_path / "go").touch()
    assert first.wait(timeout=600) == 0
    assert len(load_dataset(tmp_path / "D")) == 30  # the survivor is complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D", "go", "staged"]


def test_sigterm_leaves_nothing_behind(tmp_path: Path) -> None:
    (tmp_path / "D").mkdir()
    (tmp_path / "D" / "metadata.json").write_text("{}")  # an older dataset, replaced by --force
    args = ("rollout", "--policy", "random", "--env", RED, "--episodes", "5", "--out", "D")
    proc = subprocess.Popen(
        [sys.executable, "-c", _PAUSED, *args, "--force"], cwd=tmp_path, env=ENV,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for(tmp_path / "staged")
    assert any(p.name.startswith(".D.tmp-") for p in tmp_path.iterdir())
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "behavioral: terminated"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D", "staged"]  # no debris, no lock
    assert (tmp_path / "D" / "metadata.json").read_text() == "{}"  # the old one is kept


@pytest.mark.skipif(not oslimits.namespaces_available(), reason="needs root and unshare -m")
def test_full_disk_and_read_only_targets_are_one_line(tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    script = (
        f"{sys.executable} -m behavioral rollout --policy random --env {RED} --episodes 200 "
        f"--out {mnt}/data; echo EXIT=$?; ls -A {mnt}"
    )
    proc = oslimits.run_on_full_disk(["sh", "-c", script], mnt, size="64k", cwd=tmp_path, env=ENV)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("behavioral")]
    assert lines == [f"behavioral: error: cannot write {mnt}/data: the disk is full"], proc.stderr
    assert "Traceback" not in proc.stderr
    assert "EXIT=1" in proc.stdout
    assert proc.stdout.strip().endswith("EXIT=1")  # nothing left in the mount: no debris
    ro = tmp_path / "ro"
    ro.mkdir()
    t0 = time.time()
    proc = oslimits.run_on_read_only(
        cli("audit", "--policy", "zoo:reddoors-train", "--out", f"{ro}/rep"),
        ro,
        cwd=tmp_path,
        env=ENV,
    )
    one_line(proc.returncode, proc.stderr, "read-only file system", f"{ro}")
    assert time.time() - t0 < 120  # before the audit, not after it


@pytest.mark.skipif(not oslimits.no_dac_available(), reason="needs root and setpriv")
def test_a_forbidden_target_is_one_line(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    proc = oslimits.run_without_dac(
        cli("rollout", "--policy", "random", "--env", RED, "--out", f"{theirs}/d"),
        cwd=tmp_path,
        env=ENV,
    )
    one_line(proc.returncode, proc.stderr, "permission denied", str(theirs))
