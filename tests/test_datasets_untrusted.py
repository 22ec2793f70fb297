"""Datasets handed over by the people being audited: nothing runs, memory stays bounded,
values are finite, files stay inside the directory, and what the file claims happened is
checked by replaying it."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import behavioral
from behavioral import rollout as rollout_mod
from behavioral.environments import make_env
from behavioral.errors import (
    BehavioralError,
    CorruptDatasetError,
    DatasetError,
    DatasetMismatchError,
    DatasetTooLargeError,
    UnsafeDatasetError,
)
from behavioral.policies import SoftOptimalPolicy
from behavioral.rollout import load_dataset, rollout, save_dataset

RED = "behavioral/RedDoors-v0"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = make_env(RED, split="deploy", kwargs={"size": 7})
    data = rollout(SoftOptimalPolicy("red_door", beta=5.0), env, episodes=6, seed=2)
    return save_dataset(data, tmp_path_factory.mktemp("ds") / "ds")


@pytest.fixture()
def saved(original: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(original, tmp_path / "ds"))


def _meta(path: Path) -> dict:
    return json.loads((path / "metadata.json").read_text())


def _rehash(path: Path, meta: dict | None = None) -> None:
    """Make the checksums match whatever the files now hold (an attacker can)."""
    meta = meta or _meta(path)
    for name in ("arrays.npz", "episodes.json"):
        blob = (path / name).read_bytes()
        meta["files"][name] = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
    (path / "metadata.json").write_text(json.dumps(meta))


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path / "arrays.npz") as npz:
        return {k: npz[k] for k in npz.files}


def _rewrite_arrays(path: Path, **changes: np.ndarray) -> None:
    arrays = {**_arrays(path), **changes}
    np.savez(path / "arrays.npz", **arrays)
    _rehash(path)


def _edit_episodes(path: Path, edit) -> None:
    doc = json.loads((path / "episodes.json").read_text())
    edit(doc)
    (path / "episodes.json").write_text(json.dumps(doc))
    _rehash(path)


def _payload(tmp_path: Path, name: str) -> Path:
    marker = tmp_path / f"{name}.ran"
    (tmp_path / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write('pwned')\n")
    return marker


# --------------------------------------------------------------------------- no code from data


def test_env_id_with_a_module_part_never_runs(saved: Path, tmp_path: Path, monkeypatch) -> None:
    marker = _payload(tmp_path, "ds_payload")
    monkeypatch.syspath_prepend(str(tmp_path))
    meta = _meta(saved)
    meta["env_id"] = "ds_payload:behavioral/RedDoors-v0"
    _rehash(saved, meta)  # metadata.json is not covered by the checksums anyway
    with pytest.raises(UnsafeDatasetError, match="module part"):
        load_dataset(saved)
    with pytest.raises(UnsafeDatasetError):
        behavioral.audit(saved)
    assert not marker.exists()


def test_env_id_attack_through_the_cli(
    saved: Path, tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from behavioral.cli import main

    marker = _payload(tmp_path, "cli_payload")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    meta = _meta(saved)
    meta["env_id"] = "cli_payload:behavioral/RedDoors-v0"
    _rehash(saved, meta)
    for args in (["audit", "--dataset", str(saved), "--out", "r"], ["irl", str(saved)]):
        capsys.readouterr()
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "module part" in err, err
    assert not marker.exists()
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "kwargs",
    [{"size": {"py/reduce": ["os.system", "true"]}}, {"size": [7]}, {"max_episode_steps": 3}],
)
def test_env_kwargs_must_be_plain_scalars(saved: Path, kwargs: dict) -> None:
    meta = _meta(saved)
    meta["env_kwargs"] = kwargs
    _rehash(saved, meta)
    with pytest.raises(DatasetError):
        load_dataset(saved)


# --------------------------------------------------------------------------- bounded memory


def _zero_chunk() -> tuple[bytes, bytes]:
    """A full-flushed deflate block of 1 MiB of zeros, repeatable, and the final block."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    return block, c.flush(zlib.Z_FINISH)


def _write_bomb_npz(path: Path, arrays: dict[str, np.ndarray], obs_header_shape: tuple) -> None:
    """arrays.npz whose obs.npy (float32, header ``obs_header_shape``) is all deflated
    zeros: a few MB on disk, gigabytes once decompressed."""
    block, final = _zero_chunk()
    zeros = bytes(1 << 20)
    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": obs_header_shape}
    )
    with zipfile.ZipFile(path, "w") as zf:
        for name, arr in arrays.items():
            if name != "obs":
                buf = io.BytesIO()
                np.save(buf, arr)
                zf.writestr(f"{name}.npy", buf.getvalue())
        info = zipfile.ZipInfo("obs.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as w:
            w._compressor = _Canned(block, final)  # deflate by repetition: seconds, not minutes
            w.write(header.getvalue())
            nbytes = 4 * int(np.prod(obs_header_shape))
            for _ in range(nbytes >> 20):
                w.write(zeros)
            w.write(bytes(nbytes % (1 << 20)))


class _Canned:
    """Stands in for zlib's compressor: the block for each MiB of zeros (and raw header)."""

    def __init__(self, block: bytes, final: bytes) -> None:
        self.block, self.final, self.pending = block, final, b""

    def compress(self, data: bytes) -> bytes:
        if len(data) == 1 << 20 and not any(data[:64]):
            return self.block
        c = zlib.compressobj(9, zlib.DEFLATED, -15)  # the header, stored in its own blocks
        return c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)

    def flush(self) -> bytes:
        return self.final


def _peak_rss_delta(code: str) -> tuple[str, float, float]:
    """Run ``code`` (which prints its result) after importing the library; return its
    output, the RSS before, and the peak RSS after (MB)."""
    script = (
        textwrap.dedent(
            """
        import resource
        import behavioral.rollout
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        """
        )
        + textwrap.dedent(code)
        + textwrap.dedent(
            """
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"RSS {before:.1f} {after:.1f}")
        """
        )
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr
    *out, last = proc.stdout.strip().splitlines()
    _, before, after = last.split()
    return "\n".join(out), float(before), float(after)


@pytest.fixture(scope="module")
def bomb(original: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = Path(shutil.copytree(original, tmp_path_factory.mktemp("bomb") / "ds"))
    arrays = _arrays(path)
    n_obs = arrays["obs"].shape[0]
    mib = 3 * 1024  # 3 GiB once decompressed
    rows = (mib << 20) // (4 * 9 * 7 * 7)
    _write_bomb_npz(path / "arrays.npz", arrays, (rows, 9, 7, 7))
    _rehash(path)
    assert n_obs < rows
    return path


@pytest.fixture()
def huge_header(saved: Path) -> Path:
    """rews.npy's header claims 10**12 float32 (4 TB); the member holds nothing else."""
    arrays = _arrays(saved)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)}
    )
    with zipfile.ZipFile(saved / "arrays.npz", "w") as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, arr)
            zf.writestr(f"{name}.npy", header.getvalue() if name == "rews" else buf.getvalue())
    _rehash(saved)
    return saved


def test_zip_bomb_and_huge_header_are_refused_without_allocating(
    bomb: Path, huge_header: Path
) -> None:
    with zipfile.ZipFile(bomb / "arrays.npz") as zf:
        info = zf.getinfo("obs.npy")
    assert info.file_size > 3 * 10**9 and (bomb / "arrays.npz").stat().st_size < 4 * 10**6
    out, before, after = _peak_rss_delta(
        f"""
        from behavioral.rollout import load_dataset
        from behavioral.errors import BehavioralError
        for path, max_bytes in [({str(bomb)!r}, None), ({str(bomb)!r}, 1 << 34),
                                ({str(huge_header)!r}, None), ({str(huge_header)!r}, 1 << 60)]:
            try:
                load_dataset(path, **({{}} if max_bytes is None else {{"max_bytes": max_bytes}}))
            except BehavioralError as err:
                print(type(err).__name__, err)
        """
    )
    bomb_default, bomb_raised, huge_default, huge_raised = out.splitlines()
    # the 3 MB bomb: refused by the size limit, which the message names with its knobs
    assert bomb_default.startswith("DatasetTooLargeError") and "max_bytes" in bomb_default
    assert "--max-dataset-bytes" in bomb_default
    # with the limit raised, the shape check against the metadata refuses it, still unread
    assert bomb_raised.startswith("CorruptDatasetError") and "obs must be" in bomb_raised
    # the 10**12-element header does not match its zip entry's size: refused from the header
    for line in (huge_default, huge_raised):
        assert line.startswith("CorruptDatasetError") and "truncated or forged" in line
    assert after - before < 50, (before, after)


def test_metadata_claiming_1e12_episodes_is_refused(saved: Path) -> None:
    meta = _meta(saved)
    meta["episodes"] = 10**12
    _rehash(saved, meta)
    with pytest.raises(CorruptDatasetError, match="lengths must be"):
        load_dataset(saved, max_bytes=1 << 60)


def test_limits_name_themselves_and_how_to_raise_them(saved: Path, monkeypatch) -> None:
    with pytest.raises(DatasetTooLargeError, match=r"max_bytes=N\) or the CLI's --max-dataset"):
        load_dataset(saved, max_bytes=1000)
    assert len(load_dataset(saved, max_bytes=10**6)) == 6
    monkeypatch.setattr(rollout_mod, "MAX_EPISODES_JSON_BYTES", 100)
    with pytest.raises(DatasetTooLargeError, match=r"episodes\.json"):
        load_dataset(saved)


def test_oversized_metadata_is_refused(saved: Path) -> None:
    meta = _meta(saved)
    meta["policy"] = "x" * (2 << 20)
    (saved / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetTooLargeError, match=r"metadata\.json"):
        load_dataset(saved)


# --------------------------------------------------------------------------- files in the directory


@pytest.mark.parametrize("name", ["arrays.npz", "episodes.json", "metadata.json"])
def test_symbolic_links_are_refused(saved: Path, tmp_path: Path, name: str) -> None:
    outside = tmp_path / f"outside-{name}"
    shutil.move(saved / name, outside)
    (saved / name).symlink_to(outside)
    with pytest.raises(UnsafeDatasetError, match="symbolic link"):
        load_dataset(saved)


def test_special_files_are_refused(saved: Path) -> None:
    (saved / "episodes.json").unlink()
    os.mkfifo(saved / "episodes.json")
    with pytest.raises(CorruptDatasetError, match="not a regular file"):
        load_dataset(saved)


# --------------------------------------------------------------------------- finite values


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_rewards_and_observations_are_refused(saved: Path, value: float) -> None:
    arrays = _arrays(saved)
    rews = arrays["rews"].copy()
    rews[1] = value
    _rewrite_arrays(saved, rews=rews)
    with pytest.raises(CorruptDatasetError, match="rewards hold NaN or infinite"):
        load_dataset(saved)
    obs = arrays["obs"].copy()
    obs[0, 0, 0, 0] = value
    _rewrite_arrays(saved, rews=arrays["rews"], obs=obs)
    with pytest.raises(CorruptDatasetError, match="observations hold NaN or infinite"):
        load_dataset(saved)


def test_non_finite_returns_are_refused(saved: Path) -> None:
    _edit_episodes(saved, lambda d: d["data"]["return.exit"].__setitem__(0, None))
    with pytest.raises(CorruptDatasetError, match="finite numbers"):
        load_dataset(saved)


# --------------------------------------------------------------------------- replayed claims


def _env(saved: Path):
    meta = _meta(saved)
    return make_env(meta["env_id"], kwargs=meta["env_kwargs"])


def test_an_honest_dataset_replays(saved: Path) -> None:
    load_dataset(saved).verify(_env(saved))


@pytest.mark.parametrize(
    ("column", "forge", "needle"),
    [
        ("outcome", lambda v: "exit" if v != "exit" else "other_door", "outcome"),
        ("outcome.door_color", lambda v: "blue" if v != "blue" else "green", "door_color"),
        ("return.exit", lambda v: v + 1.0, "return.exit"),
        ("return", lambda v: v + 0.5, "return"),
        ("level_seed", lambda v: v + 1, "level_seed"),  # integers compare exactly
        ("truncated", lambda v: not v, "truncated"),
    ],
)
def test_forged_outcomes_and_returns_are_caught(
    saved: Path, column: str, forge, needle: str
) -> None:
    def edit(doc: dict) -> None:
        doc["data"][column][0] = forge(doc["data"][column][0])

    _edit_episodes(saved, edit)
    data = load_dataset(saved)  # a consistent file: only the env can tell
    with pytest.raises(DatasetMismatchError, match=needle):
        data.verify(_env(saved))
    with pytest.raises(DatasetMismatchError, match="does not replay"):
        behavioral.audit(saved, n_bootstrap=20)


def test_an_invented_outcome_column_is_caught(saved: Path) -> None:
    def edit(doc: dict) -> None:
        doc["columns"].append({"name": "outcome.won", "dtype": "bool"})
        doc["data"]["outcome.won"] = [True] * doc["n_rows"]

    _edit_episodes(saved, edit)
    with pytest.raises(DatasetMismatchError, match=r"outcome\.won"):
        load_dataset(saved).verify(_env(saved))


@pytest.mark.parametrize("array", ["states", "rews", "acts", "obs"])
def test_forged_arrays_are_caught_by_the_replay(saved: Path, array: str) -> None:
    arrays = _arrays(saved)
    forged = arrays[array].copy()
    if array == "states":
        forged[1] = (forged[1] + 1) % 10
    elif array == "rews":
        forged[0] += 1.0
    elif array == "acts":
        forged[0] = (forged[0] + 1) % 4
    else:
        forged[1] = 1.0 - forged[1]
    _rewrite_arrays(saved, **{array: forged})
    with pytest.raises(DatasetMismatchError):
        load_dataset(saved).verify(_env(saved))


def test_dropped_state_indices_are_caught(saved: Path) -> None:
    arrays = _arrays(saved)
    del arrays["states"]
    np.savez(saved / "arrays.npz", **arrays)
    _rehash(saved)
    with pytest.raises(DatasetMismatchError, match="no state indices but the env has them"):
        load_dataset(saved).verify(_env(saved))


def test_replay_can_be_skipped_for_nondeterministic_envs(saved: Path) -> None:
    _edit_episodes(saved, lambda d: d["data"]["return.exit"].__setitem__(0, 7.0))
    result = behavioral.audit(saved, replay=False, n_bootstrap=20)
    assert result.verdict in ("proxy", "indistinguishable", "aligned", "unexplained")


def test_a_dataset_without_reset_seeds_is_a_clear_error(
    saved: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def edit(doc: dict) -> None:
        doc["columns"] = [c for c in doc["columns"] if c["name"] != "reset_seed"]
        doc["data"].pop("reset_seed")

    _edit_episodes(saved, edit)
    with pytest.raises(DatasetError, match="no 'reset_seed' column"):
        behavioral.audit(saved)
    from behavioral.cli import main

    assert main(["irl", str(saved)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "reset_seed" in err, err


def test_library_errors_only(saved: Path) -> None:
    """Every refusal above is a BehavioralError (and a DatasetError)."""
    for edit in (
        lambda m: m.update(env_id=3),
        lambda m: m.update(env_kwargs=[1]),
        lambda m: m.update(obs_shape=[-1]),
        lambda m: m.update(files={}),
    ):
        meta = _meta(saved)
        edit(meta)
        (saved / "metadata.json").write_text(json.dumps(meta))
        with pytest.raises(DatasetError):
            load_dataset(saved)
    with pytest.raises(BehavioralError):
        load_dataset(saved, max_bytes=1.5)
