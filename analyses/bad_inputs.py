"""A re-runnable sweep of bad inputs: datasets, API arguments, output files, the CLI, resources.

Every case is run in its own process and recorded with:

* ``result`` -- ``refused`` (a library error / non-zero exit), ``accepted``, ``crashed`` (an
  exception that is not the library's, or a signal), ``timeout``;
* ``error`` -- the exception class (API) or ``exit N`` (CLI), and ``message``, its first line;
* ``one_line`` -- the CLI printed exactly one ``behavioral: error: ...`` line;
* ``code_ran`` -- a payload's marker file appeared (pickles, jsonpickle tags, modules in env
  ids, cloudpickle blobs in policy zips all try to write one);
* ``data_lost`` -- a file that existed before the case (precious files, earlier outputs)
  is gone or changed, unless the case asked for ``--force`` on it;
* ``debris`` -- hidden staging, old-copy or lock files left next to the outputs;
* ``traceback`` -- ``Traceback`` on stderr;
* ``coerced`` -- an input that must be refused was accepted (e.g. ``seed=1.5``);
* ``peak_mb`` -- the case's peak resident memory above the process it started from (a
  process with the library imported, about 400 MB, most of it torch).

Cases run in processes forked from one that has imported the library (so 300 cases take
minutes, not an hour of imports); the few that need the operating system to refuse writes
(a full disk, a read-only file system, a forbidden directory: ``tests/oslimits.py``) or a
signal run as fresh ``python -m behavioral`` processes. The summary table counts per
category; the CSV has one row per case.

    python analyses/bad_inputs.py                        # all cases -> analyses/results/bad_inputs.csv
    python analyses/bad_inputs.py --only datasets --csv /tmp/x.csv
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy/torch:
    os.environ.setdefault(_var, "1")  # no thread pools to inherit across fork()

import argparse
import base64
import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import pickle
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # oslimits: run where the OS refuses writes

import oslimits

import behavioral
from behavioral import files
from behavioral.cli import main as cli_main
from behavioral.errors import BehavioralError

RED = "behavioral/RedDoors-v0"
PAYLOAD = "sweep_payload"
TIMEOUT = 300.0


# ============================================================================ fixtures


@dataclasses.dataclass
class World:
    """Files every case starts from (built once), and where payloads leave markers."""

    root: Path
    dataset: Path  # a valid RedDoors deploy dataset (6 episodes)
    seals_dataset: Path
    report: Path  # a valid report directory
    zoo_zip: Path
    markers: Path

    def payload_module(self) -> None:
        """``sweep_payload``: importing it writes a marker (an attacker's module)."""
        code = f"open({str(self.markers / 'module-imported')!r}, 'w').write('ran')\n"
        (self.root / "modules").mkdir(exist_ok=True)
        (self.root / "modules" / f"{PAYLOAD}.py").write_text(code)
        sys.path.insert(0, str(self.root / "modules"))


class Marker:
    """Unpickling this writes a marker file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (Path.write_text, (self.path, "ran"))


def build_world(root: Path) -> World:
    from behavioral.environments import make_env
    from behavioral.policies import SoftOptimalPolicy
    from behavioral.rollout import rollout, save_dataset
    from behavioral.zoo import ZOO

    env = make_env(RED, split="deploy", kwargs={"size": 7})
    data = rollout(SoftOptimalPolicy("red_door", beta=5.0), env, episodes=6, seed=1)
    dataset = save_dataset(data, root / "base" / "dataset")
    seals_env = make_env("seals/CliffWorld7x4-v0")
    seals_data = rollout(SoftOptimalPolicy("reward", beta=2.0), seals_env, episodes=5, seed=0)
    seals_dataset = save_dataset(seals_data, root / "base" / "seals")
    result = behavioral.audit(data, n_bootstrap=20)
    report = result.save(root / "base" / "report")
    markers = root / "markers"
    markers.mkdir()
    world = World(root, dataset, seals_dataset, report, ZOO["reddoors-train"].path, markers)
    world.payload_module()
    return world


# ============================================================================ cases


@dataclasses.dataclass
class Case:
    category: str
    name: str
    expect: str = "refuse"  # or "accept"
    api: Callable[[Path, World], Any] | None = None  # run in the case directory
    argv: list[str] | None = None  # CLI arguments (in-process main, forked)
    prepare: Callable[[Path, World], None] | None = None  # builds the case's files
    process: Callable[[Path, World], subprocess.CompletedProcess[str]] | None = None
    may_change: tuple[str, ...] = ()  # paths (relative) the case may replace

    @property
    def front(self) -> str:
        return "api" if self.api else "cli" if self.argv is not None else "process"


CASES: list[Case] = []


def case(category: str, name: str, **kw: Any) -> None:
    CASES.append(Case(category, name, **kw))


# ---------------------------------------------------------------- dataset mutations


def copy_dataset(d: Path, w: World, name: str = "ds") -> Path:
    return Path(shutil.copytree(w.dataset, d / name))


def meta_of(p: Path) -> dict:
    return json.loads((p / "metadata.json").read_text())


def rehash(p: Path, meta: dict | None = None) -> None:
    meta = meta if meta is not None else meta_of(p)
    for name in ("arrays.npz", "episodes.json"):
        if (p / name).is_file() and not (p / name).is_symlink():
            blob = (p / name).read_bytes()
            meta.setdefault("files", {})[name] = {
                "sha256": hashlib.sha256(blob).hexdigest(),
                "bytes": len(blob),
            }
    (p / "metadata.json").write_text(json.dumps(meta))


def arrays_of(p: Path) -> dict[str, np.ndarray]:
    with np.load(p / "arrays.npz") as npz:
        return {k: npz[k] for k in npz.files}


def write_arrays(p: Path, arrays: dict[str, Any], *, rehash_after: bool = True) -> None:
    np.savez(p / "arrays.npz", **arrays)
    if rehash_after:
        rehash(p)


def edit_meta(edit: Callable[[dict], None]) -> Callable[[Path, World], None]:
    def prepare(d: Path, w: World) -> None:
        ds = copy_dataset(d, w)
        meta = meta_of(ds)
        edit(meta)
        if "files" in meta and isinstance(meta["files"], dict) and len(meta["files"]) == 2:
            rehash(ds, meta)  # keep the checksums right, as an attacker would
        else:
            (ds / "metadata.json").write_text(json.dumps(meta))

    return prepare


def edit_arrays(edit: Callable[[dict[str, np.ndarray]], None]) -> Callable[[Path, World], None]:
    def prepare(d: Path, w: World) -> None:
        ds = copy_dataset(d, w)
        arrays = arrays_of(ds)
        edit(arrays)
        write_arrays(ds, arrays)

    return prepare


def edit_episodes(edit: Callable[[dict], None]) -> Callable[[Path, World], None]:
    def prepare(d: Path, w: World) -> None:
        ds = copy_dataset(d, w)
        doc = json.loads((ds / "episodes.json").read_text())
        edit(doc)
        (ds / "episodes.json").write_text(json.dumps(doc))
        rehash(ds)

    return prepare


def load_ds(d: Path, w: World) -> Any:
    return behavioral.load_dataset(d / "ds")


def audit_ds(d: Path, w: World) -> Any:
    return behavioral.audit(d / "ds", n_bootstrap=20)


def marker(w: World, name: str) -> Path:
    return w.markers / name


def dataset_cases() -> None:
    payload_id = f"{PAYLOAD}:behavioral/RedDoors-v0"
    meta_edits: dict[str, Callable[[dict], None]] = {
        "env id with module part": lambda m: m.update(env_id=payload_id),
        "env id os.system module": lambda m: m.update(env_id="os:system-v0"),
        "env id dotted module": lambda m: m.update(env_id=f"{PAYLOAD}.x:RedDoors-v0"),
        "env id unregistered": lambda m: m.update(env_id="behavioral/NoSuch-v0"),
        "env id with spaces": lambda m: m.update(env_id="behavioral/Red Doors-v0"),
        "env id not a string": lambda m: m.update(env_id=3),
        "env id a list": lambda m: m.update(env_id=["behavioral/RedDoors-v0"]),
        "env id path traversal": lambda m: m.update(env_id="../../RedDoors-v0"),
        "env id newline": lambda m: m.update(env_id="behavioral/RedDoors-v0\nx"),
        "env kwargs py/object": lambda m: m.update(env_kwargs={"size": {"py/object": "os.system"}}),
        "env kwargs list value": lambda m: m.update(env_kwargs={"size": [7]}),
        "env kwargs gym.make option": lambda m: m.update(env_kwargs={"max_episode_steps": 3}),
        "env kwargs non-identifier key": lambda m: m.update(env_kwargs={"a b": 1}),
        "env kwargs size=151": lambda m: m.update(env_kwargs={"size": 151}),
        "env kwargs size=10**9": lambda m: m.update(env_kwargs={"size": 10**9}),
        "env kwargs size float": lambda m: m.update(env_kwargs={"size": 7.0}),
        "env kwargs max_steps huge": lambda m: m.update(env_kwargs={"size": 7, "max_steps": 10**8}),
        "env kwargs unknown": lambda m: m.update(env_kwargs={"size": 7, "colour": "red"}),
        "env kwargs not a dict": lambda m: m.update(env_kwargs=[["size", 7]]),
        "format other": lambda m: m.update(format="imitation"),
        "format version 99": lambda m: m.update(format_version=99),
        "format version true": lambda m: m.update(format_version=True),
        "episodes 0": lambda m: m.update(episodes=0),
        "episodes negative": lambda m: m.update(episodes=-5),
        "episodes 10**12": lambda m: m.update(episodes=10**12),
        "episodes float": lambda m: m.update(episodes=6.0),
        "n_actions 0": lambda m: m.update(n_actions=0),
        "n_actions 2": lambda m: m.update(n_actions=2),
        "obs_shape negative": lambda m: m.update(obs_shape=[-1, 7, 7]),
        "obs_shape 40 dims": lambda m: m.update(obs_shape=[1] * 40),
        "obs_shape strings": lambda m: m.update(obs_shape=["9", "7", "7"]),
        "obs_dtype object": lambda m: m.update(obs_dtype="|O"),
        "obs_dtype garbage": lambda m: m.update(obs_dtype="float99"),
        "obs_dtype other": lambda m: m.update(obs_dtype="<f8"),
        "seed string": lambda m: m.update(seed="zero"),
        "seed true": lambda m: m.update(seed=True),
        "split a number": lambda m: m.update(split=3),
        "policy a dict": lambda m: m.update(policy={"py/reduce": ["os.system", "true"]}),
        "objectives not names": lambda m: m.update(objectives=[1, 2]),
        "files missing": lambda m: m.pop("files"),
        "files wrong names": lambda m: m.update(files={"a": {}, "b": {}}),
        "files bad bytes type": lambda m: m.update(
            files={"arrays.npz": {"sha256": "x", "bytes": "12"}}
        ),
        "jsonpickle tag in metadata": lambda m: m.update(
            extra={"py/reduce": [{"py/function": "os.system"}, ["true"]]}
        ),
        "serialized tag in metadata": lambda m: m.update(extra={":serialized:": "gAR9lC4="}),
    }
    for key in ("env_id", "env_kwargs", "split", "seed", "episodes", "policy", "behavioral_version",
                "created", "obs_shape", "obs_dtype", "n_actions", "objectives"):  # fmt: skip
        meta_edits[f"missing {key}"] = lambda m, key=key: m.pop(key)
    for name, edit in meta_edits.items():
        case("datasets", f"metadata: {name}", api=audit_ds, prepare=edit_meta(edit))

    def raw(d: Path, w: World, text: str | bytes) -> None:
        ds = copy_dataset(d, w)
        data = text.encode() if isinstance(text, str) else text
        (ds / "metadata.json").write_bytes(data)

    for name, text in {
        "not JSON": "{not json",
        "truncated": lambda: meta_of_text()[:50],
        "a list": "[1, 2, 3]",
        "NaN constant": '{"format": NaN}',
        "deep nesting": "[" * 100_000 + "]" * 100_000,
        "not UTF-8": b"\xff\xfe{}",
        "2 MB": json.dumps({"pad": "x" * (2 << 20)}),
        "empty": "",
    }.items():
        case(
            "datasets",
            f"metadata.json {name}",
            api=load_ds,
            prepare=lambda d, w, t=text: raw(d, w, t() if callable(t) else t),
        )

    def obj_array(arrays: dict, w: World) -> None:
        evil = np.empty(1, dtype=object)
        evil[0] = Marker(marker(w, "npz-object"))
        arrays["obs"] = evil

    def prep_object(d: Path, w: World) -> None:
        ds = copy_dataset(d, w)
        arrays = arrays_of(ds)
        obj_array(arrays, w)
        np.savez(ds / "arrays.npz", **arrays)  # allow_pickle by default on save
        rehash(ds)

    case("datasets", "arrays: pickled object array", api=audit_ds, prepare=prep_object)

    def prep_raw_pickle(d: Path, w: World) -> None:
        ds = copy_dataset(d, w)
        arrays = arrays_of(ds)
        with zipfile.ZipFile(ds / "arrays.npz", "w") as zf:
            for k, v in arrays.items():
                if k == "rews":
                    zf.writestr("rews.npy", pickle.dumps(Marker(marker(w, "raw-pickle"))))
                else:
                    buf = io.BytesIO()
                    np.save(buf, v)
                    zf.writestr(f"{k}.npy", buf.getvalue())
        rehash(ds)

    case("datasets", "arrays: raw pickle as .npy", api=audit_ds, prepare=prep_raw_pickle)

    array_edits: dict[str, Callable[[dict[str, np.ndarray]], None]] = {
        "missing lengths": lambda a: a.pop("lengths"),
        "missing obs": lambda a: a.pop("obs"),
        "extra array": lambda a: a.update(extra=np.zeros(3)),
        "lengths wrong": lambda a: a.update(lengths=a["lengths"] + 1),
        "lengths zero": lambda a: a.update(lengths=np.zeros_like(a["lengths"])),
        "lengths negative": lambda a: a.update(lengths=-a["lengths"]),
        "lengths float": lambda a: a.update(lengths=a["lengths"].astype(float)),
        "lengths 2-D": lambda a: a.update(lengths=a["lengths"][:, None]),
        "terminal int": lambda a: a.update(terminal=a["terminal"].astype(np.int64)),
        "acts out of range": lambda a: a.update(acts=a["acts"] + 4),
        "acts negative": lambda a: a.update(acts=a["acts"] - 5),
        "acts float": lambda a: a.update(acts=a["acts"].astype(float)),
        "acts too few": lambda a: a.update(acts=a["acts"][:-1]),
        "rews int": lambda a: a.update(rews=a["rews"].astype(np.int64)),
        "rews NaN": lambda a: a["rews"].__setitem__(0, np.nan),
        "rews +inf": lambda a: a["rews"].__setitem__(1, np.inf),
        "rews -inf": lambda a: a["rews"].__setitem__(2, -np.inf),
        "obs NaN": lambda a: a["obs"].__setitem__((0, 0, 0, 0), np.nan),
        "obs inf": lambda a: a["obs"].__setitem__((1, 1, 1, 1), np.inf),
        "obs float64": lambda a: a.update(obs=a["obs"].astype(np.float64)),
        "obs big-endian": lambda a: a.update(obs=a["obs"].astype(">f4")),
        "obs wrong shape": lambda a: a.update(obs=a["obs"][:, :, :6]),
        "obs complex": lambda a: a.update(obs=a["obs"].astype(np.complex64)),
        "obs structured": lambda a: a.update(obs=np.zeros(len(a["obs"]), dtype=[("x", "f4")])),
        "states negative": lambda a: a.update(states=a["states"] - 1000),
        "states float": lambda a: a.update(states=a["states"].astype(float)),
        "states missing (kept tabular)": lambda a: a.pop("states"),
        "states forged (in range)": lambda a: a.update(states=(a["states"] + 1) % 10),
        "acts forged (in range)": lambda a: a.update(acts=(a["acts"] + 1) % 4),
        "rews forged": lambda a: a.update(rews=a["rews"] + 1.0),
        "obs forged": lambda a: a["obs"].__setitem__(1, 1.0 - a["obs"][1]),
    }
    for name, edit in array_edits.items():
        case("datasets", f"arrays: {name}", api=audit_ds, prepare=edit_arrays(edit))

    def prep_fortran(d: Path, w: World) -> None:
        ds = copy_dataset(d, w)
        arrays = arrays_of(ds)
        arrays["obs"] = np.asfortranarray(arrays["obs"])
        write_arrays(ds, arrays)

    case(
        "datasets",
        "arrays: Fortran-ordered obs",
        expect="accept",
        api=audit_ds,
        prepare=prep_fortran,
    )

    def prep_bytes(
        edit: Callable[[bytes], bytes], keep_hash: bool = False
    ) -> Callable[[Path, World], None]:
        def prepare(d: Path, w: World) -> None:
            ds = copy_dataset(d, w)
            blob = (ds / "arrays.npz").read_bytes()
            (ds / "arrays.npz").write_bytes(edit(blob))
            if not keep_hash:
                rehash(ds)

        return prepare

    for name, edit, keep in (
        ("truncated (checksum kept)", lambda b: b[: len(b) // 2], True),
        ("truncated (rehashed)", lambda b: b[: len(b) // 2], False),
        ("one byte flipped", lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:], True),
        ("not a zip", lambda b: b"plain text", False),
        ("empty", lambda b: b"", False),
    ):
        case("datasets", f"arrays.npz {name}", api=audit_ds, prepare=prep_bytes(edit, keep))
    # Bytes after the zip's end record are ignored (as zipfile and numpy do); the arrays are
    # exactly the recorded ones, so this one is accepted.
    case("datasets", "arrays.npz trailing bytes after the zip", expect="accept", api=audit_ds,
         prepare=prep_bytes(lambda b: b + b"\x00" * 1000))  # fmt: skip

    def prep_bz2(d: Path, w: World) -> None:
        ds = copy_dataset(d, w)
        arrays = arrays_of(ds)
        with zipfile.ZipFile(ds / "arrays.npz", "w", compression=zipfile.ZIP_BZIP2) as zf:
            for k, v in arrays.items():
                buf = io.BytesIO()
                np.save(buf, v)
                zf.writestr(f"{k}.npy", buf.getvalue())
        rehash(ds)

    case("datasets", "arrays.npz bzip2 members", api=audit_ds, prepare=prep_bz2)

    def prep_dup(d: Path, w: World) -> None:
        ds = copy_dataset(d, w)
        arrays = arrays_of(ds)
        with zipfile.ZipFile(ds / "arrays.npz", "w") as zf:
            for k, v in [*list(arrays.items()), ("obs", arrays["obs"])]:
                buf = io.BytesIO()
                np.save(buf, v)
                with contextlib.suppress(Exception), __import__("warnings").catch_warnings():
                    __import__("warnings").simplefilter("ignore")
                    zf.writestr(f"{k}.npy", buf.getvalue())
        rehash(ds)

    case("datasets", "arrays.npz duplicate member", api=audit_ds, prepare=prep_dup)

    def jp(doc: dict, w: World) -> None:
        doc["data"]["episode"][0] = {"py/reduce": [{"py/function": "os.system"}, ["true"]]}

    episode_edits: dict[str, Callable[[dict], None]] = {
        "n_rows wrong": lambda doc: doc.update(n_rows=3),
        "column shorter": lambda doc: doc["data"]["length"].pop(),
        "length forged": lambda doc: doc["data"]["length"].__setitem__(0, 99),
        "bool column string": lambda doc: doc["data"]["terminated"].__setitem__(0, "yes"),
        "dtype datetime": lambda doc: doc["columns"][0].update(dtype="datetime64[ns]"),
        "dtype object class": lambda doc: doc["columns"][0].update(dtype="object:os.system"),
        "column dropped": lambda doc: doc["data"].pop("episode"),
        "duplicate column": lambda doc: doc["columns"].append(doc["columns"][0]),
        "py/reduce value": lambda doc: doc["data"]["episode"].__setitem__(
            0, {"py/reduce": ["os.system", ["true"]]}
        ),
        "py/object key": lambda doc: doc.update({"py/object": "os.system"}),
        "nested list value": lambda doc: doc["data"]["outcome"].__setitem__(0, [1, 2]),
        "int overflow": lambda doc: doc["data"]["episode"].__setitem__(0, 2**70),
        "return NaN": lambda doc: doc["data"]["return.exit"].__setitem__(0, None),
        "return string": lambda doc: doc["data"]["return"].__setitem__(0, "1.0"),
        "outcome forged": lambda doc: doc["data"]["outcome"].__setitem__(
            0, "exit" if doc["data"]["outcome"][0] != "exit" else "other_door"
        ),
        "door colour forged": lambda doc: doc["data"]["outcome.door_color"].__setitem__(
            0, "blue" if doc["data"]["outcome.door_color"][0] != "blue" else "green"
        ),
        "return.exit forged": lambda doc: doc["data"]["return.exit"].__setitem__(
            0, 1.0 - doc["data"]["return.exit"][0]
        ),
        "return.red_door forged": lambda doc: doc["data"]["return.red_door"].__setitem__(0, 5.0),
        "terminated forged": lambda doc: doc["data"]["truncated"].__setitem__(
            0, not doc["data"]["truncated"][0]
        ),
        "level_seed forged": lambda doc: doc["data"]["level_seed"].__setitem__(
            0, doc["data"]["level_seed"][0] + 1
        ),
        "reset_seed missing": lambda doc: (
            doc.update(columns=[c for c in doc["columns"] if c["name"] != "reset_seed"]),
            doc["data"].pop("reset_seed"),
        ),
        "reset_seed negative": lambda doc: doc["data"]["reset_seed"].__setitem__(0, -1),
        "invented outcome column": lambda doc: (
            doc["columns"].append({"name": "outcome.won", "dtype": "bool"}),
            doc["data"].__setitem__("outcome.won", [True] * doc["n_rows"]),
        ),
        "invented return column": lambda doc: (
            doc["columns"].append({"name": "return.bonus", "dtype": "float64"}),
            doc["data"].__setitem__("return.bonus", [1.0] * doc["n_rows"]),
        ),
    }
    for name, edit in episode_edits.items():
        case("datasets", f"episodes.json: {name}", api=audit_ds, prepare=edit_episodes(edit))

    def prep_episodes_bytes(data: bytes) -> Callable[[Path, World], None]:
        def prepare(d: Path, w: World) -> None:
            ds = copy_dataset(d, w)
            (ds / "episodes.json").write_bytes(data)
            rehash(ds)

        return prepare

    for name, data in {
        "NaN constant": b'{"columns": [], "n_rows": NaN, "data": {}}',
        "not UTF-8": b"\xff\xfe",
        "not JSON": b"{",
        "70 MB": json.dumps({"pad": "x" * (70 << 20)}).encode(),
    }.items():
        case("datasets", f"episodes.json {name}", api=load_ds, prepare=prep_episodes_bytes(data))

    def prep_link(name: str) -> Callable[[Path, World], None]:
        def prepare(d: Path, w: World) -> None:
            ds = copy_dataset(d, w)
            outside = d / f"outside-{name}"
            shutil.move(ds / name, outside)
            (ds / name).symlink_to(outside)

        return prepare

    for name in ("arrays.npz", "episodes.json", "metadata.json"):
        case("datasets", f"files: {name} is a symlink out", api=load_ds, prepare=prep_link(name))

    def prep_link_etc(d: Path, w: World) -> None:
        ds = copy_dataset(d, w)
        (ds / "episodes.json").unlink()
        (ds / "episodes.json").symlink_to("/etc/passwd")

    case("datasets", "files: episodes.json -> /etc/passwd", api=load_ds, prepare=prep_link_etc)

    def prep_fifo(d: Path, w: World) -> None:
        ds = copy_dataset(d, w)
        (ds / "arrays.npz").unlink()
        os.mkfifo(ds / "arrays.npz")

    case("datasets", "files: arrays.npz is a FIFO", api=load_ds, prepare=prep_fifo)

    def prep_dir_member(d: Path, w: World) -> None:
        ds = copy_dataset(d, w)
        (ds / "episodes.json").unlink()
        (ds / "episodes.json").mkdir()

    case("datasets", "files: episodes.json is a directory", api=load_ds, prepare=prep_dir_member)
    for name in ("arrays.npz", "episodes.json", "metadata.json"):
        case(
            "datasets",
            f"files: {name} missing",
            api=load_ds,
            prepare=lambda d, w, n=name: (copy_dataset(d, w) / n).unlink(),
        )
    case(
        "datasets", "files: no such directory", api=lambda d, w: behavioral.load_dataset(d / "nope")
    )
    case("datasets", "files: a file, not a directory",
         api=lambda d, w: behavioral.load_dataset(w.dataset / "metadata.json"))  # fmt: skip
    case(
        "datasets",
        "honest dataset",
        expect="accept",
        api=audit_ds,
        prepare=lambda d, w: copy_dataset(d, w),
    )
    case(
        "datasets",
        "honest seals dataset",
        expect="accept",
        api=lambda d, w: behavioral.audit(w.seals_dataset, n_bootstrap=20),
    )
    case(
        "datasets",
        "forged return, replay=False (documented escape)",
        expect="accept",
        api=lambda d, w: behavioral.audit(d / "ds", replay=False, n_bootstrap=20),
        prepare=edit_episodes(lambda doc: doc["data"]["return.exit"].__setitem__(0, 7.0)),
    )
    # the same attacks through the CLI
    for name, prepare in (
        ("env id with module part", edit_meta(lambda m: m.update(env_id=payload_id))),
        ("pickled object array", prep_object),
        ("outcome forged", edit_episodes(episode_edits["outcome forged"])),
        ("rews NaN", edit_arrays(array_edits["rews NaN"])),
        ("symlink out", prep_link("arrays.npz")),
        ("reset_seed missing", edit_episodes(episode_edits["reset_seed missing"])),
        ("env kwargs size=151", edit_meta(meta_edits["env kwargs size=151"])),
    ):
        case(
            "datasets",
            f"cli audit --dataset: {name}",
            argv=["audit", "--dataset", "ds", "--out", "rep"],
            prepare=prepare,
        )
        case("datasets", f"cli irl: {name}", argv=["irl", "ds"], prepare=prepare)


def meta_of_text() -> str:
    return json.dumps({"format": "behavioral.dataset", "format_version": 1, "env_id": RED})


# ---------------------------------------------------------------- API arguments


def api_cases() -> None:
    from behavioral.environments import make_env
    from behavioral.policies import SoftOptimalPolicy, UniformPolicy

    def run_audit(**kwargs: Any) -> Callable[[Path, World], Any]:
        def run(d: Path, w: World) -> Any:
            env = kwargs.pop("env", None) or make_env(RED, split="deploy", kwargs={"size": 5})
            policy = kwargs.pop("policy", SoftOptimalPolicy("red_door", beta=5.0))
            return behavioral.audit(policy, env, **{"episodes": 3, "n_bootstrap": 10, **kwargs})

        return run

    bad = {
        "seed=1.5": {"seed": 1.5},
        "seed='3'": {"seed": "3"},
        "seed=True": {"seed": True},
        "seed=-1": {"seed": -1},
        "seed=None": {"seed": None},
        "seed=np.float64(2)": {"seed": np.float64(2.0)},
        "seed=[1]": {"seed": [1]},
        "deterministic='no'": {"deterministic": "no"},
        "deterministic=1": {"deterministic": 1},
        "deterministic=None": {"deterministic": None},
        "progress_bar='yes'": {"progress_bar": "yes"},
        "replay=1": {"replay": 1},
        "episodes=0": {"episodes": 0},
        "episodes=-3": {"episodes": -3},
        "episodes=2.0": {"episodes": 2.0},
        "episodes='5'": {"episodes": "5"},
        "episodes=True": {"episodes": True},
        "method='magic'": {"method": "magic"},
        "method=None": {"method": None},
        "method='MAXENT'": {"method": "MAXENT"},
        "confidence=1.5": {"confidence": 1.5},
        "confidence=0": {"confidence": 0},
        "confidence=1": {"confidence": 1},
        "confidence='0.9'": {"confidence": "0.9"},
        "confidence=nan": {"confidence": float("nan")},
        "confidence=True": {"confidence": True},
        "significance=2": {"significance": 2},
        "n_bootstrap=5": {"n_bootstrap": 5},
        "n_bootstrap=100.0": {"n_bootstrap": 100.0},
        "lapse='often'": {"lapse": "often"},
        "living_reward='yes'": {"living_reward": "yes"},
        "min_evidence=-1": {"min_evidence": -1},
        "min_explained=nan": {"min_explained": float("nan")},
        "objectives=list": {"objectives": ["exit"]},
        "objectives=str": {"objectives": "exit"},
        "objectives={3: ...}": {"objectives": {3: np.zeros(3)}},
        "objectives complex array": {"objectives": {"odd": np.ones(5) * (1 + 1j)}},
        "objectives complex callable": {"objectives": {"odd": lambda m: np.ones(m.n_states) * 1j}},
        "objectives NaN array": {"objectives": {"odd": lambda m: np.full(m.n_states, np.nan)}},
        "objectives string array": {"objectives": {"odd": np.array(["a", "b"])}},
        "objectives wrong shape": {"objectives": {"odd": np.zeros(3)}},
        "objectives object": {"objectives": {"odd": object()}},
        "base=3": {"base": 3},
        "base='nope'": {"base": "nope"},
        "method_kwargs=list": {"method_kwargs": [1]},
        "unknown keyword": {"episodez": 3},
        "unknown keyword 2": {"confidence_level": 0.9},
        "env=None (policy)": {"env": "NONE"},
        "env=object()": {"env": object()},
        "env=42": {"env": 42},
        "env module id": {"env": f"{PAYLOAD}:behavioral/RedDoors-v0"},
        "env unregistered": {"env": "behavioral/NoSuch-v0"},
        "env CartPole (no model)": {"env": "CartPole-v1"},
        "policy=5": {"policy": 5},
        "policy=None": {"policy": None},
        "policy acts 7": {"policy": lambda obs: 7},
        "policy acts 1.0": {"policy": lambda obs: 1.0},
        "policy acts NaN": {"policy": lambda obs: float("nan")},
    }
    for name, kwargs in bad.items():
        kw = dict(kwargs)
        if kw.get("env") == "NONE":

            def run(d: Path, w: World) -> Any:
                return behavioral.audit(SoftOptimalPolicy("exit"), None, episodes=2)

            case("api", f"audit({name})", api=run)
        else:
            case("api", f"audit({name})", api=run_audit(**kw))
    for name, kwargs in {
        "seed=np.int64(3)": {"seed": np.int64(3)},
        "episodes=np.int32(3)": {"episodes": np.int32(3)},
        "confidence=np.float32(0.9)": {"confidence": np.float32(0.9)},
        "deterministic=np.bool_(True)": {"deterministic": np.bool_(True)},
    }.items():
        case("api", f"audit({name})", expect="accept", api=run_audit(**kwargs))

    def rollout_with(**kwargs: Any) -> Callable[[Path, World], Any]:
        def run(d: Path, w: World) -> Any:
            env = make_env(RED, kwargs={"size": 5})
            return behavioral.rollout.rollout(
                UniformPolicy(), env, **{"episodes": 1, "seed": 0, **kwargs}
            )

        return run

    for name, kwargs in {
        "seed=1.5": {"seed": 1.5},
        "seed='0'": {"seed": "0"},
        "episodes=1.0": {"episodes": 1.0},
        "episodes=0": {"episodes": 0},
        "deterministic='no'": {"deterministic": "no"},
        "progress_bar=None": {"progress_bar": None},
    }.items():
        case("api", f"rollout({name})", api=rollout_with(**kwargs))
    for name, call in {
        "load_dataset(max_bytes=1.5)": lambda d, w: behavioral.load_dataset(
            w.dataset, max_bytes=1.5
        ),
        "load_dataset(max_bytes=0)": lambda d, w: behavioral.load_dataset(w.dataset, max_bytes=0),
        "load_dataset(path=None)": lambda d, w: behavioral.load_dataset(None),
        "save_dataset(overwrite='yes')": lambda d, w: behavioral.save_dataset(
            behavioral.load_dataset(w.dataset), d / "o", overwrite="yes"
        ),
        "Audit.save(overwrite=1)": lambda d, w: _saved_audit(w).save(d / "r", overwrite=1),
        "load_ppo(trusted='yes')": lambda d, w: _load_ppo(w.zoo_zip, trusted="yes"),
        "load_ppo(directory)": lambda d, w: _load_ppo(d),
        "make_env(kwargs=list)": lambda d, w: make_env(RED, kwargs=[("size", 7)]),
        "make_env(split=3)": lambda d, w: make_env(RED, split=3),
        "make_env(CartPole, split)": lambda d, w: make_env("CartPole-v1", split="train"),
        "train_ppo(total_timesteps=1.5)": lambda d, w: _train(total_timesteps=1.5),
        "train_ppo(seed='0')": lambda d, w: _train(seed="0"),
        "train_ppo(n_envs=0)": lambda d, w: _train(n_envs=0),
        "SoftOptimalPolicy(beta=-1)": lambda d, w: SoftOptimalPolicy("exit", beta=-1),
        "load_zoo('nope')": lambda d, w: behavioral.load_zoo("nope"),
        "load_zoo(3)": lambda d, w: behavioral.load_zoo(3),
    }.items():
        case("api", name, api=call)


def _saved_audit(w: World) -> Any:
    return behavioral.audit(behavioral.load_dataset(w.dataset), n_bootstrap=20)


def _load_ppo(path: Path, **kwargs: Any) -> Any:
    from behavioral.policies import load_ppo

    return load_ppo(path, **kwargs)


def _train(**kwargs: Any) -> Any:
    from behavioral.policies import train_ppo

    args = {"total_timesteps": 64, "seed": 0, "n_envs": 1, "progress_bar": False}
    return train_ppo("CartPole-v1", split=None, **{**args, **kwargs})


# ---------------------------------------------------------------- output files


def precious(d: Path, w: World) -> None:
    """Files a user has next to the outputs."""
    (d / "keep.txt").write_text("my notes")
    (d / "photos").mkdir()
    (d / "photos" / "cat.jpg").write_bytes(b"meow")
    shutil.copytree(w.report, d / "existing")
    shutil.copytree(w.dataset, d / "data")


def files_cases() -> None:
    roll = f"rollout --policy random --env {RED} --episodes 2"
    aud = f"audit --policy planner:red_door --env {RED} --episodes 3 --fast"
    train = f"train --env {RED} --timesteps 8"
    refused = {
        "rollout onto an existing dataset": f"{roll} --out data",
        "rollout onto a report": f"{roll} --out existing",
        "rollout onto a file": f"{roll} --out keep.txt",
        "rollout onto a photo folder": f"{roll} --out photos",
        "rollout --force onto a photo folder": f"{roll} --out photos --force",
        "rollout --force onto a file": f"{roll} --out keep.txt --force",
        "rollout --force onto a report": f"{roll} --out existing --force",
        "rollout under a file": f"{roll} --out keep.txt/sub",
        "rollout --out .": f"{roll} --out .",
        "rollout --out . --force": f"{roll} --out . --force",
        "rollout --out ''": f"{roll} --out ''",
        "rollout --out /": f"{roll} --out /",
        "rollout --out name too long": f"{roll} --out {'x' * 300}",
        "rollout --out /proc/x": f"{roll} --out /proc/x",
        "audit onto an existing report": f"{aud} --out existing",
        "audit onto a dataset --force": f"{aud} --out data --force",
        "audit onto a file --force": f"{aud} --out keep.txt --force",
        "audit onto photos --force": f"{aud} --out photos --force",
        "audit under a file": f"{aud} --out keep.txt/rep",
        "irl --out onto a file": "irl data --out keep.txt",
        "irl --out onto a directory --force": "irl data --out photos --force",
        "irl --out under a file": "irl data --out keep.txt/w.json",
        "train --out onto a file": f"{train} --out keep.txt",
        "demo --out onto photos --force": "demo --out photos --force --fast",
        "demo --out onto existing": "demo --out existing",
    }
    for name, command in refused.items():
        case("files", name, argv=shlex.split(command), prepare=precious)

    def model_dir(d: Path, w: World) -> None:
        precious(d, w)
        (d / "model.zip").mkdir()
        (d / "model.zip" / "notes.txt").write_text("a directory named like a zip")

    case("files", "train --out onto a directory --force",
         argv=shlex.split(f"{train} --out model.zip --force"), prepare=model_dir)  # fmt: skip
    case(
        "files",
        "rollout --out with NUL",
        argv=[*shlex.split(roll), "--out", "a\0b"],
        prepare=precious,
    )
    case("files", "rollout --force onto an existing dataset", expect="accept",
         argv=shlex.split(f"{roll} --out data --force"), prepare=precious, may_change=("data",))  # fmt: skip
    case("files", "irl --out new file", expect="accept", argv=shlex.split("irl data --out w.json"),
         prepare=precious)  # fmt: skip

    def appeared(d: Path, w: World) -> Any:
        target = d / "late"

        def fill(tmp: Path) -> None:
            (tmp / "summary.json").write_text("{}")
            target.mkdir()
            (target / "theirs.txt").write_text("do not delete")

        return files.write_dir(target, fill)

    case("files", "target appears while writing (dir)", api=appeared)

    def appeared_file(d: Path, w: World) -> Any:
        target = d / "late.json"
        with files.reserve(target, kind="file") as res, res.stage() as tmp:
            tmp.write_text("ours")
            target.write_text("theirs")

    case("files", "target appears while writing (file)", api=appeared_file)

    def appeared_save(d: Path, w: World) -> Any:
        import behavioral.report as report

        result = _saved_audit(w)
        real = report.write_report

        def write_and_race(audit: Any, out: Path) -> None:
            real(audit, out)
            (d / "rep").mkdir()
            (d / "rep" / "theirs.txt").write_text("do not delete")

        report.write_report = write_and_race
        return result.save(d / "rep")

    case("files", "Audit.save target appears meanwhile", api=appeared_save)

    def busy(d: Path, w: World) -> Any:
        with lock_held(d / "rep"):
            return files.write_dir(
                d / "rep", lambda t: (t / "summary.json").write_text("{}"), overwrite=True
            )

    case("files", "second writer while the first holds the lock", api=busy)

    def replace_fails(d: Path, w: World) -> Any:
        files.write_dir(d / "rep", lambda t: (t / "summary.json").write_text('{"v": 1}'))
        (d / "rep.sha").write_text(
            hashlib.sha256((d / "rep" / "summary.json").read_bytes()).hexdigest()
        )

        def fail(src: Path, dst: Path) -> None:
            raise OSError(28, "No space left on device", str(dst))

        files._rename_noreplace = fail
        return files.write_dir(
            d / "rep", lambda t: (t / "summary.json").write_text('{"v": 2}'), overwrite=True
        )

    case("files", "second rename of a replace fails", api=replace_fails)

    def fill_fails(d: Path, w: World) -> Any:
        files.write_dir(d / "rep", lambda t: (t / "summary.json").write_text('{"v": 1}'))

        def boom(t: Path) -> None:
            (t / "summary.json").write_text("half")
            raise OSError(28, "No space left on device")

        return files.write_dir(d / "rep", boom, overwrite=True)

    case("files", "writing fails mid-way during a replace", api=fill_fails)
    for name, call in {
        "check_target(kind='tree')": lambda d, w: files.check_target(d / "x", kind="tree"),
        "check_target(bytes path)": lambda d, w: files.check_target(b"/tmp/x"),
        "check_target(overwrite='yes')": lambda d, w: files.check_target(d / "x", overwrite="yes"),
        "write_dir over a symlink --force": lambda d, w: (
            (d / "link").symlink_to(d / "photos"),
            files.write_dir(d / "link", lambda t: None, overwrite=True),
        ),
    }.items():
        case("files", name, api=call, prepare=precious)


_HOLD = """
import sys
from behavioral import files
with files.reserve(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()  # until the sweep closes our stdin
"""


@contextlib.contextmanager
def lock_held(target: Path) -> Iterator[None]:
    """Another process holding ``target``'s lock (it lets go when the block ends)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=TIMEOUT)


# ---------------------------------------------------------------- the CLI


def cli_cases() -> None:
    base = "audit --out never"
    pol = f"{base} --policy random --env {RED}"
    refused = {
        "usage: no arguments": "",
        "usage: unknown subcommand": "frobnicate",
        "usage: audit --episodes 0": f"{pol} --episodes 0",
        "usage: audit --episodes -3": f"{pol} --episodes -3",
        "usage: audit --episodes many": f"{pol} --episodes many",
        "usage: audit --episodes 1e3": f"{pol} --episodes 1e3",
        "usage: audit --seed -1": f"{pol} --seed -1",
        "usage: audit --seed 1.5": f"{pol} --seed 1.5",
        "usage: audit --method magic": f"{pol} --method magic",
        "usage: irl --confidence 1.5": "irl data --confidence 1.5",
        "usage: irl --confidence nan": "irl data --confidence nan",
        "usage: irl --l2 -1": "irl data --l2 -1",
        "usage: irl --l2 inf": "irl data --l2 inf",
        "usage: train --timesteps 0": f"train --env {RED} --timesteps 0 --out p",
        "usage: train --n-envs 0": f"train --env {RED} --n-envs 0 --out p",
        "usage: --env-kwarg without =": f"{pol} --env-kwarg x",
        "usage: --env-kwarg bad key": f"{pol} --env-kwarg 'a b=1'",
        "usage: --max-dataset-bytes 0": "irl data --max-dataset-bytes 0",
        "--env unknown": f"{base} --policy random --env behavioral/NoSuch-v0",
        "--env nope": f"{base} --policy random --env nope",
        "--env with module": f"{base} --policy random --env {PAYLOAD}:behavioral/RedDoors-v0",
        "--env seals/CliffWorld-v0 (no such id)": f"{base} --policy random --env seals/CliffWorld-v0",
        "--env CartPole audit (no model)": f"{base} --policy random --env CartPole-v1",
        "--split sideways": f"{pol} --split sideways",
        "--split for CartPole": "rollout --policy random --env CartPole-v1 --split train --out x",
        "--env-kwarg size=151": f"{pol} --env-kwarg size=151",
        "--env-kwarg size=7.0": f"{pol} --env-kwarg size=7.0",
        "--env-kwarg size=[7]": f"{pol} --env-kwarg size=[7]",
        "--env-kwarg openness=NaN": f"{pol} --env-kwarg openness=NaN",
        "--env-kwarg max_episode_steps=3": f"{pol} --env-kwarg max_episode_steps=3",
        "--env-kwarg unknown": f"{pol} --env-kwarg colour=1",
        "--env-kwarg max_steps=10**9": f"{pol} --env-kwarg max_steps=1000000000",
        "--policy zoo:": f"{base} --policy zoo: --env {RED}",
        "--policy zoo:unknown": f"{base} --policy zoo:nope --env {RED}",
        "--policy planner:": f"{base} --policy planner: --env {RED}",
        "--policy planner:exit:-1": f"{base} --policy planner:exit:-1 --env {RED}",
        "--policy planner:exit:nan": f"{base} --policy planner:exit:nan --env {RED}",
        "--policy planner:exit:1:2": f"{base} --policy planner:exit:1:2 --env {RED}",
        "--policy planner:nope": f"{base} --policy planner:nope --env {RED}",
        "--policy planner on CartPole": "rollout --policy planner:exit --env CartPole-v1 --out x",
        "--policy missing.zip": f"{base} --policy missing.zip --env {RED}",
        "--policy a directory": f"{base} --policy photos --env {RED}",
        "--policy not a zip": f"{base} --policy keep.txt --env {RED}",
        "--policy without --env": f"{base} --policy random",
        "no --policy or --dataset": f"{base} --env {RED}",
        "--policy and --dataset": f"{base} --policy random --dataset data",
        "--dataset with --split": f"{base} --dataset data --split train",
        "--dataset with --env-kwarg": f"{base} --dataset data --env-kwarg size=9",
        "--dataset with --episodes": f"{base} --dataset data --episodes 3",
        "--dataset with --deterministic": f"{base} --dataset data --deterministic",
        "--dataset with another env": f"{base} --dataset data --env behavioral/WaterPlants-v0",
        "--dataset missing": f"{base} --dataset no/such",
        "--dataset a file": f"{base} --dataset keep.txt",
        "--no-replay with --policy": f"{pol} --no-replay",
        "--trust-policy-file with zoo": f"{base} --policy zoo:reddoors-train --trust-policy-file",
        "observation mismatch": f"{base} --policy zoo:waterplants-kettle --env {RED}",
        "irl missing dataset": "irl no/such",
        "irl --force without --out": "irl data --force",
        "irl --max-dataset-bytes 100": "irl data --max-dataset-bytes 100",
        "train without --env": "train --out p",
        "train unknown env": "train --env nope --out p",
        "train --split for CartPole": "train --env CartPole-v1 --split train --out p",
        "train --env-kwarg bad": f"train --env {RED} --env-kwarg size=4 --out p",
    }
    for name, command in refused.items():
        case("cli", name, argv=shlex.split(command), prepare=precious)
    accepted = {
        "rollout CartPole without --split": "rollout --policy random --env CartPole-v1 --episodes 2 --out cp",
        "rollout FrozenLake without --split": "rollout --policy random --env FrozenLake-v1 --episodes 2 --out fl",
        "audit seals/CliffWorld7x4-v0": "audit --policy random --env seals/CliffWorld7x4-v0 --episodes 10 --fast --out cliff",
        "audit --dataset": "audit --dataset data --fast --out rep",
        "irl to stdout": "irl data",
    }
    for name, command in accepted.items():
        case("cli", name, expect="accept", argv=shlex.split(command), prepare=precious)


# ---------------------------------------------------------------- policies (hostile zips)


def zip_with(w: World, d: Path, name: str = "evil.zip", **members: bytes) -> Path:
    with zipfile.ZipFile(w.zoo_zip) as zin, zipfile.ZipFile(d / name, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, members.pop(info.filename, None) or zin.read(info))
        for k, v in members.items():
            zout.writestr(k, v)
    return d / name


def zoo_data(w: World) -> dict:
    with zipfile.ZipFile(w.zoo_zip) as zf:
        return json.loads(zf.read("data"))


def policy_cases() -> None:
    def data_payload(keys: tuple[str, ...]) -> Callable[[Path, World], None]:
        def prepare(d: Path, w: World) -> None:
            data = zoo_data(w)
            blob = base64.b64encode(pickle.dumps(Marker(marker(w, "zip-data")))).decode()
            for k in keys:
                data[k][":serialized:"] = blob
            zip_with(w, d, data=json.dumps(data).encode())

        return prepare

    rollout_evil = [
        "rollout",
        "--policy",
        "evil.zip",
        "--split",
        "deploy",
        "--episodes",
        "2",
        "--out",
        "o",
    ]
    for keys in (("policy_class",), ("observation_space",), ("action_space",), ("lr_schedule", "clip_range"),
                 ("policy_class", "observation_space", "action_space", "lr_schedule")):  # fmt: skip
        name = "+".join(keys)
        case("policies", f"cloudpickle payload in data[{name}] (safe load acts)", expect="accept",
             argv=rollout_evil, prepare=data_payload(keys))  # fmt: skip

    def weights_payload(d: Path, w: World) -> None:
        zip_with(w, d, **{"policy.pth": pickle.dumps(Marker(marker(w, "zip-weights")))})

    def torch_object(d: Path, w: World) -> None:
        import torch

        buf = io.BytesIO()
        torch.save({"w": Marker(marker(w, "zip-torch"))}, buf)
        zip_with(w, d, **{"policy.pth": buf.getvalue()})

    def data_edit(edit: Callable[[dict], None]) -> Callable[[Path, World], None]:
        def prepare(d: Path, w: World) -> None:
            data = zoo_data(w)
            edit(data)
            zip_with(w, d, data=json.dumps(data).encode())

        return prepare

    def weights_edit(edit: Callable[[dict], dict]) -> Callable[[Path, World], None]:
        def prepare(d: Path, w: World) -> None:
            import torch

            with zipfile.ZipFile(w.zoo_zip) as zf:
                state = torch.load(io.BytesIO(zf.read("policy.pth")), weights_only=True)
            buf = io.BytesIO()
            torch.save(edit(dict(state)), buf)
            zip_with(w, d, **{"policy.pth": buf.getvalue()})

        return prepare

    def first_key(state: dict) -> str:
        return next(iter(state))

    refused = {
        "pickled policy.pth": weights_payload,
        "torch file holding an object": torch_object,
        "policy class unknown": data_edit(
            lambda x: x["policy_class"].update({"__init__": "<function Evil.__init__>"})
        ),
        "policy class missing": data_edit(lambda x: x.pop("policy_class")),
        "activation unknown class": data_edit(
            lambda x: x.update(
                policy_kwargs={":serialized:": "AA", "activation_fn": "<class 'evil.Act'>"}
            )
        ),
        "features extractor unknown": data_edit(
            lambda x: x.update(
                policy_kwargs={":serialized:": "AA", "features_extractor_class": "<class 'evil.X'>"}
            )
        ),
        "policy kwargs odd key": data_edit(
            lambda x: x.update(policy_kwargs={"evil": {"py/object": "os"}})
        ),
        "spaces only pickled": data_edit(lambda x: x["observation_space"].update(_shape="?")),
        "action space not Discrete": data_edit(
            lambda x: x["action_space"].update({":type:": "<class 'gymnasium.spaces.box.Box'>"})
        ),
        "use_sde true": data_edit(lambda x: x.update(use_sde=True)),
        "env id in metadata has a module": data_edit(
            lambda x: x["behavioral_metadata"].update(env_id=f"{PAYLOAD}:behavioral/RedDoors-v0")
        ),
        "data not JSON": lambda d, w: zip_with(w, d, data=b"{"),
        "data a list": lambda d, w: zip_with(w, d, data=b"[1]"),
        "data NaN constant": lambda d, w: zip_with(w, d, data=b'{"x": NaN}'),
        "weights wrong shape": weights_edit(
            lambda s: {**s, first_key(s): s[first_key(s)][..., :1]}
        ),
        "weights missing key": weights_edit(
            lambda s: {k: v for k, v in s.items() if k != first_key(s)}
        ),
        "weights extra key": weights_edit(lambda s: {**s, "extra": s[first_key(s)]}),
        "weights NaN": weights_edit(lambda s: {**s, first_key(s): s[first_key(s)] * float("nan")}),
        "weights float64": weights_edit(lambda s: {**s, first_key(s): s[first_key(s)].double()}),
        "not a zip": lambda d, w: (d / "evil.zip").write_bytes(b"not a zip"),
        "empty zip": lambda d, w: zipfile.ZipFile(d / "evil.zip", "w").close(),
        "zip without policy.pth": lambda d, w: _zip_only(d, w, "data"),
        "zip without data": lambda d, w: _zip_only(d, w, "policy.pth"),
    }
    for name, prepare in refused.items():
        case("policies", f"zip: {name}", argv=rollout_evil, prepare=prepare)
    case("policies", "api load_ppo: pickled weights",
         api=lambda d, w: _load_ppo(d / "evil.zip"), prepare=weights_payload)  # fmt: skip
    case("policies", "api load_ppo: cloudpickle payload in data", expect="accept",
         api=lambda d, w: _load_ppo(d / "evil.zip"), prepare=data_payload(("policy_class",)))  # fmt: skip
    for name in ("reddoors-train", "reddoors-diverse", "waterplants-kettle", "waterplants-hose"):
        case("policies", f"zoo {name} loads safely", expect="accept",
             api=lambda d, w, n=name: behavioral.load_zoo(n))  # fmt: skip


def _zip_only(d: Path, w: World, keep: str) -> None:
    with zipfile.ZipFile(w.zoo_zip) as zin, zipfile.ZipFile(d / "evil.zip", "w") as zout:
        zout.writestr(keep, zin.read(keep))


# ---------------------------------------------------------------- resources


def _zero_block() -> tuple[bytes, bytes]:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH), c.flush(zlib.Z_FINISH)


class _Canned:
    def __init__(self) -> None:
        self.block, self.final = _zero_block()

    def compress(self, data: bytes) -> bytes:
        if len(data) == 1 << 20 and not any(data[:64]):
            return self.block
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)

    def flush(self) -> bytes:
        return self.final


def bomb_member(zf: zipfile.ZipFile, name: str, header: bytes, nbytes: int) -> None:
    """A deflated member of ``nbytes`` zeros after ``header``: MBs on disk, GBs unpacked."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=True) as out:
        out._compressor = _Canned()
        out.write(header)
        zeros = bytes(1 << 20)
        for _ in range(nbytes >> 20):
            out.write(zeros)
        out.write(bytes(nbytes % (1 << 20)))


_BOMB_CACHE: dict[str, bytes] = {}


def dataset_bomb(d: Path, w: World, *, member: str = "obs", gib: int = 3) -> None:
    key = f"{member}-{gib}"
    ds = copy_dataset(d, w)
    if key not in _BOMB_CACHE:
        arrays = arrays_of(ds)
        descr = {
            "obs": "<f4",
            "rews": "<f8",
            "acts": "<i8",
            "states": "<i8",
            "lengths": "<i8",
            "terminal": "|b1",
        }[member]
        item = np.dtype(descr).itemsize
        per_row = item * (int(np.prod(arrays["obs"].shape[1:])) if member == "obs" else 1)
        rows = (gib << 30) // per_row
        shape = (rows, *arrays["obs"].shape[1:]) if member == "obs" else (rows,)
        hdr = io.BytesIO()
        np.lib.format.write_array_header_2_0(
            hdr, {"descr": descr, "fortran_order": False, "shape": shape}
        )
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for k, v in arrays.items():
                if k != member:
                    b = io.BytesIO()
                    np.save(b, v)
                    zf.writestr(f"{k}.npy", b.getvalue())
            bomb_member(zf, f"{member}.npy", hdr.getvalue(), rows * per_row)
        _BOMB_CACHE[key] = buf.getvalue()
    (ds / "arrays.npz").write_bytes(_BOMB_CACHE[key])
    rehash(ds)


def huge_header(
    d: Path, w: World, *, member: str = "rews", elements: int = 10**12, episodes: int | None = None
) -> None:
    ds = copy_dataset(d, w)
    arrays = arrays_of(ds)
    hdr = io.BytesIO()
    descr = "<i8" if member in ("lengths", "acts", "states") else "<f8"
    np.lib.format.write_array_header_1_0(
        hdr, {"descr": descr, "fortran_order": False, "shape": (elements,)}
    )
    with zipfile.ZipFile(ds / "arrays.npz", "w") as zf:
        for k, v in arrays.items():
            b = io.BytesIO()
            np.save(b, v)
            zf.writestr(f"{k}.npy", hdr.getvalue() if k == member else b.getvalue())
    meta = meta_of(ds)
    if episodes is not None:
        meta["episodes"] = episodes
    rehash(ds, meta)


def policy_bomb(d: Path, w: World, member: str) -> None:
    with zipfile.ZipFile(w.zoo_zip) as zin, zipfile.ZipFile(d / "evil.zip", "w") as zout:
        for info in zin.infolist():
            if info.filename == member:
                bomb_member(zout, member, b"", 2 << 30)
            else:
                zout.writestr(info.filename, zin.read(info))


def resource_cases() -> None:
    for member, gib in (("obs", 3), ("rews", 2), ("states", 2)):
        case("resources", f"zip bomb: {member}.npy {gib} GiB", api=load_ds,
             prepare=lambda d, w, m=member, g=gib: dataset_bomb(d, w, member=m, gib=g))  # fmt: skip
    case("resources", "zip bomb via cli audit --dataset", argv=["audit", "--dataset", "ds", "--out", "r"],
         prepare=lambda d, w: dataset_bomb(d, w))  # fmt: skip
    case(
        "resources",
        "zip bomb via cli irl",
        argv=["irl", "ds"],
        prepare=lambda d, w: dataset_bomb(d, w),
    )
    case("resources", "zip bomb with the limit raised", api=lambda d, w: behavioral.load_dataset(d / "ds", max_bytes=1 << 36),
         prepare=lambda d, w: dataset_bomb(d, w))  # fmt: skip
    for member in ("rews", "acts", "lengths", "states"):
        case("resources", f"header claims 1e12 elements: {member}", api=load_ds,
             prepare=lambda d, w, m=member: huge_header(d, w, member=m))  # fmt: skip
    case("resources", "header 1e12 + metadata 1e12 episodes", api=lambda d, w: behavioral.load_dataset(d / "ds", max_bytes=1 << 62),
         prepare=lambda d, w: huge_header(d, w, member="lengths", episodes=10**12))  # fmt: skip
    case(
        "resources",
        "header 1e12 via cli",
        argv=["irl", "ds"],
        prepare=lambda d, w: huge_header(d, w),
    )
    for member in ("data", "policy.pth"):
        case("resources", f"policy zip bomb: {member} 2 GiB", argv=["rollout", "--policy", "evil.zip", "--out", "o"],
             prepare=lambda d, w, m=member: policy_bomb(d, w, m))  # fmt: skip
    for name, kwargs in {"size=151": {"size": 151}, "size=101": {"size": 101}, "size=10**6": {"size": 10**6},
                         "max_steps=10**9": {"max_steps": 10**9}, "tile_size=10**5": {"tile_size": 10**5}}.items():  # fmt: skip
        case("resources", f"gym.make RedDoors {name}",
             api=lambda d, w, k=kwargs: __import__("gymnasium").make(RED, **k))  # fmt: skip
        case("resources", f"dataset env_kwargs {name}", api=audit_ds,
             prepare=edit_meta(lambda m, k=kwargs: m.update(env_kwargs=dict(k))))  # fmt: skip
    case("resources", "WaterPlants max_steps=10**7",
         api=lambda d, w: __import__("gymnasium").make("behavioral/WaterPlants-v0", max_steps=10**7))  # fmt: skip
    case("resources", "largest RedDoors level model (size=51)", expect="accept",
         api=lambda d, w: _big_model())  # fmt: skip
    case("resources", "metadata.json 2 MB", api=load_ds,
         prepare=edit_meta(lambda m: m.update(policy="x" * (2 << 20))))  # fmt: skip


def _big_model() -> Any:
    import gymnasium as gym

    env = gym.make(RED, size=51)
    env.reset(seed=0)
    return env.unwrapped.tabular_model()


# ---------------------------------------------------------------- processes and the OS


def process_cases() -> None:
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONWARNINGS="ignore")
    py = sys.executable

    def full_disk(argv: list[str]) -> Callable[[Path, World], subprocess.CompletedProcess[str]]:
        def run(d: Path, w: World) -> subprocess.CompletedProcess[str]:
            return oslimits.run_on_full_disk(
                measured(d, [py, "-m", "behavioral", *argv]), d / "mnt", size="96k", cwd=d, env=env
            )

        return run

    def filled_disk(argv: list[str]) -> Callable[[Path, World], subprocess.CompletedProcess[str]]:
        def run(d: Path, w: World) -> subprocess.CompletedProcess[str]:
            command = f"head -c 1000000 /dev/zero > mnt/fill 2>/dev/null; exec {shlex.join(measured(d, [py, '-m', 'behavioral', *argv]))}"
            return oslimits.run_on_full_disk(
                ["sh", "-c", command], d / "mnt", size="96k", cwd=d, env=env
            )

        return run

    def read_only(argv: list[str]) -> Callable[[Path, World], subprocess.CompletedProcess[str]]:
        def run(d: Path, w: World) -> subprocess.CompletedProcess[str]:
            (d / "ro").mkdir()
            return oslimits.run_on_read_only(
                measured(d, [py, "-m", "behavioral", *argv]), d / "ro", cwd=d, env=env
            )

        return run

    def forbidden(argv: list[str]) -> Callable[[Path, World], subprocess.CompletedProcess[str]]:
        def run(d: Path, w: World) -> subprocess.CompletedProcess[str]:
            (d / "theirs").mkdir()
            os.chown(d / "theirs", 65534, 65534)
            return oslimits.run_without_dac(
                measured(d, [py, "-m", "behavioral", *argv]), cwd=d, env=env
            )

        return run

    roll = ["rollout", "--policy", "random", "--env", RED, "--episodes", "100"]
    if oslimits.namespaces_available():
        case(
            "os",
            "full disk: rollout",
            process=full_disk([*roll, "--out", "mnt/d"]),
            prepare=precious,
        )
        case(
            "os",
            "full disk: audit",
            process=full_disk(
                [
                    "audit",
                    "--policy",
                    "planner:exit",
                    "--env",
                    RED,
                    "--episodes",
                    "5",
                    "--fast",
                    "--out",
                    "mnt/r",
                ]
            ),
            prepare=precious,
        )
        case(
            "os",
            "full disk: irl (the disk filled by another file)",
            process=filled_disk(["irl", "data", "--out", "mnt/w.json"]),
            prepare=precious,
        )
        case(
            "os",
            "full disk: train",
            process=full_disk(
                ["train", "--env", RED, "--timesteps", "64", "--n-envs", "1", "--out", "mnt/p"]
            ),
            prepare=precious,
        )
        case(
            "os",
            "read-only: rollout",
            process=read_only([*roll, "--out", "ro/d"]),
            prepare=precious,
        )
        case(
            "os",
            "read-only: audit",
            process=read_only(["audit", "--policy", "zoo:reddoors-train", "--out", "ro/r"]),
            prepare=precious,
        )
        case(
            "os",
            "read-only: irl",
            process=read_only(["irl", "data", "--out", "ro/w.json"]),
            prepare=precious,
        )
        case(
            "os",
            "read-only: demo",
            process=read_only(["demo", "--out", "ro/demo"]),
            prepare=precious,
        )
    if oslimits.no_dac_available():
        case(
            "os",
            "forbidden: rollout",
            process=forbidden([*roll, "--out", "theirs/d"]),
            prepare=precious,
        )
        case(
            "os",
            "forbidden: audit",
            process=forbidden(["audit", "--policy", "zoo:reddoors-train", "--out", "theirs/r"]),
            prepare=precious,
        )
        case(
            "os",
            "forbidden: irl",
            process=forbidden(["irl", "data", "--out", "theirs/w.json"]),
            prepare=precious,
        )
        case(
            "os",
            "forbidden: train",
            process=forbidden(["train", "--env", RED, "--out", "theirs/p"]),
            prepare=precious,
        )

    def killed_between_renames(d: Path, w: World) -> subprocess.CompletedProcess[str]:
        code = (
            "import os, signal\nfrom behavioral import files\n"
            "files._rename_noreplace = lambda s, t: os.kill(os.getpid(), signal.SIGKILL)\n"
            "files.write_dir('existing', lambda t: (t / 'summary.json').write_text('{}'), overwrite=True, expect=('summary.json',))\n"
        )
        subprocess.run(
            [py, "-c", code], cwd=d, env=env, capture_output=True, check=False, timeout=TIMEOUT
        )
        # the next command (without --force) restores the old report and refuses
        return subprocess.run(measured(d, [py, "-m", "behavioral", "audit", "--dataset", "data", "--out", "existing"]),
                              cwd=d, env=env, capture_output=True, text=True, check=False, timeout=TIMEOUT)  # fmt: skip

    case(
        "os",
        "SIGKILL between the renames, then the next run",
        process=killed_between_renames,
        prepare=precious,
    )

    def sigterm_mid_write(d: Path, w: World) -> subprocess.CompletedProcess[str]:
        proc = subprocess.Popen([py, "-m", "behavioral", *roll[:-1], "3000", "--out", "data", "--force"],
                                cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        t0 = time.time()
        while not (d / ".data.lock").exists() and time.time() - t0 < TIMEOUT:
            time.sleep(0.05)
        time.sleep(2.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=TIMEOUT)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    case(
        "os",
        "SIGTERM during a --force rollout",
        process=sigterm_mid_write,
        prepare=precious,
        expect="refuse",
    )

    def two_writers(d: Path, w: World) -> subprocess.CompletedProcess[str]:
        with lock_held(d / "rep"):
            return subprocess.run(
                measured(d, [py, "-m", "behavioral", "audit", "--dataset", "data", "--out", "rep", "--force"]),
                cwd=d, env=env, capture_output=True, text=True, check=False, timeout=TIMEOUT,
            )  # fmt: skip

    case("os", "two writers to one --out", process=two_writers, prepare=precious)


# ============================================================================ running


def snapshot(d: Path) -> dict[str, str]:
    out = {}
    for p in sorted(d.rglob("*")):
        if p.is_file() and not p.is_symlink():
            with contextlib.suppress(OSError):
                out[str(p.relative_to(d))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def debris(d: Path) -> list[str]:
    import re

    pat = re.compile(r"^\..+\.(tmp|old)-\d+-[0-9a-f]{8}$|^\..+\.lock$")
    return [str(p.relative_to(d)) for p in d.rglob(".*") if pat.match(p.name)]


def vm_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def redirected(stdout: Path, stderr: Path) -> Iterator[None]:
    out = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    err = os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(out, 1)
    os.dup2(err, 2)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), write_through=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), write_through=True)
    yield


def run_forked(c: Case, d: Path, w: World) -> dict[str, Any]:
    """Run an API or CLI case in a child forked from this (library-imported) process."""
    result_file = d / ".case-result.json"
    stdout, stderr = d / ".case-stdout", d / ".case-stderr"
    base_rss = vm_rss_mb()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child
        os.chdir(d)
        signal.alarm(int(TIMEOUT))
        rec: dict[str, Any] = {}
        code = 0
        try:
            with redirected(stdout, stderr):
                try:
                    if c.api is not None:
                        c.api(d, w)
                        rec = {"result": "accepted"}
                    else:
                        code = cli_main(c.argv or [])
                        rec = {
                            "result": "accepted" if code == 0 else "refused",
                            "error": f"exit {code}",
                        }
                except SystemExit as exit_:
                    code = int(exit_.code or 0) if not isinstance(exit_.code, str) else 1
                    rec = {
                        "result": "accepted" if code == 0 else "refused",
                        "error": f"exit {code}",
                    }
                except (BehavioralError, OSError) as err:  # the OS's refusals are failures too
                    rec = {"result": "refused", "error": type(err).__name__, "message": str(err)}
                except BaseException as err:  # what an uncaught exception would print
                    traceback.print_exc()
                    rec = {"result": "crashed", "error": type(err).__name__, "message": str(err)}
                sys.stdout.flush()
                sys.stderr.flush()
        finally:
            with contextlib.suppress(Exception):
                result_file.write_text(json.dumps(rec, default=str))
            os._exit(0)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - t0
    try:
        rec = json.loads(result_file.read_text())
    except (OSError, ValueError):
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        rec = {
            "result": "timeout" if sig == signal.SIGALRM else "crashed",
            "error": f"signal {sig}",
        }
    rec["stdout"] = stdout.read_text(errors="replace") if stdout.exists() else ""
    rec["stderr"] = stderr.read_text(errors="replace") if stderr.exists() else ""
    rec["peak_mb"] = max(0.0, usage.ru_maxrss / 1024 - base_rss)
    rec["seconds"] = seconds
    for p in (result_file, stdout, stderr):
        p.unlink(missing_ok=True)
    return rec


_WAIT4 = """
import os, sys
out, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    os.execvp(argv[0], argv)
_, status, usage = os.wait4(pid, 0)
with open(out, "w") as fh:
    fh.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def measured(d: Path, argv: list[str]) -> list[str]:
    """``argv`` run under a parent that records its peak RSS (KiB) in ``d/.rss``."""
    return [sys.executable, "-c", _WAIT4, str(d / ".rss"), *argv]


def fresh_process_mb(tmp: Path) -> float:
    """Peak RSS of a fresh process that imports what the CLI's commands import."""
    code = (
        "import behavioral.cli.commands, behavioral.rollout, behavioral.auditing, behavioral.report"
    )
    subprocess.run(measured(tmp, [sys.executable, "-c", code]), check=True, timeout=TIMEOUT)
    mb = int((tmp / ".rss").read_text()) / 1024
    (tmp / ".rss").unlink()
    return mb


def run_process(c: Case, d: Path, w: World) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = c.process(d, w)  # type: ignore[misc]
    rss = d / ".rss"
    peak = int(rss.read_text()) / 1024 - FRESH_MB if rss.exists() else float("nan")
    rss.unlink(missing_ok=True)
    code = proc.returncode
    rec = {
        "result": "accepted" if code == 0 else "refused" if code in (1, 2, 130, 143) else "crashed",
        "error": f"exit {code}",
        "stdout": proc.stdout or "",
        "stderr": proc.stderr or "",
        "peak_mb": max(0.0, peak) if peak == peak else peak,  # NaN: not measured
        "seconds": time.perf_counter() - t0,
    }
    return rec


BASELINE_MB = 0.0  # the forking process's RSS (cases forked from it)
FRESH_MB = 0.0  # a fresh process with the library imported (cases run as processes)


def judge(
    c: Case, rec: dict[str, Any], before: dict[str, str], d: Path, w: World
) -> dict[str, Any]:
    after = snapshot(d)
    lost = [
        p for p, h in before.items()
        if not any(p == m or p.startswith(m + "/") for m in c.may_change) and after.get(p) != h
    ]  # fmt: skip
    ran = sorted(p.name for p in w.markers.iterdir())
    for p in w.markers.iterdir():
        p.unlink()
    stderr = rec.get("stderr", "")
    err_lines = [ln for ln in stderr.splitlines() if ln.startswith("behavioral: error:")]
    message = rec.get("message") or (
        err_lines[0][len("behavioral: error: ") :] if err_lines else ""
    )
    if c.front != "api" and rec["result"] == "refused" and not message:
        message = (stderr.strip().splitlines() or [""])[-1]
    expect = c.expect
    coerced = expect == "refuse" and rec["result"] == "accepted"
    if c.front == "api":
        one_line = "\n" not in str(rec.get("message", ""))
    else:
        one_line = (
            rec["result"] == "accepted"
            or len(err_lines) == 1
            or rec.get("error") in ("exit 130", "exit 143")
        )
    return {
        "category": c.category,
        "case": c.name,
        "front": c.front,
        "expect": expect,
        "result": rec["result"],
        "error": rec.get("error", ""),
        "message": " ".join(str(message).split())[:240],
        "one_line": one_line,
        "code_ran": ";".join(ran),
        "data_lost": ";".join(lost[:5]),
        "debris": ";".join(debris(d)[:5]),
        "traceback": "Traceback" in stderr,
        "coerced": coerced,
        "wrongly_refused": expect == "accept" and rec["result"] != "accepted",
        "peak_mb": round(float(rec.get("peak_mb", float("nan"))), 1),
        "seconds": round(float(rec.get("seconds", 0.0)), 2),
    }


def run_case(c: Case, w: World, workdir: Path) -> dict[str, Any]:
    d = Path(tempfile.mkdtemp(dir=workdir, prefix="case-"))
    if c.prepare is not None:
        c.prepare(d, w)
    before = snapshot(d)
    rec = run_process(c, d, w) if c.process is not None else run_forked(c, d, w)
    row = judge(c, rec, before, d, w)
    shutil.rmtree(d, ignore_errors=True)
    return row


def warm_up(w: World) -> None:
    """Compile the numba kernels and import what the cases use, before forking."""
    import gymnasium  # noqa: F401
    import stable_baselines3  # noqa: F401
    import torch

    torch.set_num_threads(1)
    import behavioral.report
    from behavioral.zoo import load_zoo

    load_zoo("reddoors-train")
    behavioral.audit(behavioral.load_dataset(w.dataset), n_bootstrap=20)


def summarize(rows: list[dict[str, Any]]) -> str:
    import pandas as pd

    df = pd.DataFrame(rows)
    g = df.groupby("category", sort=False)
    table = pd.DataFrame(
        {
            "cases": g.size(),
            "refused": g["result"].apply(lambda s: int((s == "refused").sum())),
            "accepted": g["result"].apply(lambda s: int((s == "accepted").sum())),
            "crashed/timeout": g["result"].apply(
                lambda s: int(s.isin(["crashed", "timeout"]).sum())
            ),
            "code ran": g["code_ran"].apply(lambda s: int((s != "").sum())),
            "data lost": g["data_lost"].apply(lambda s: int((s != "").sum())),
            "debris": g["debris"].apply(lambda s: int((s != "").sum())),
            "tracebacks": g["traceback"].sum().astype(int),
            "coerced": g["coerced"].sum().astype(int),
            "wrongly refused": g["wrongly_refused"].sum().astype(int),
            "not one line": g["one_line"].apply(lambda s: int((~s.astype(bool)).sum())),
            "max MB": g["peak_mb"].max(),
        }
    )
    table.loc["total"] = table.sum(numeric_only=True)
    table.loc["total", "max MB"] = df["peak_mb"].max()
    return table.to_markdown()


def main() -> None:
    global BASELINE_MB, FRESH_MB
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--csv", type=Path, default=REPO / "analyses" / "results" / "bad_inputs.csv"
    )
    parser.add_argument(
        "--only", help="run only this category (datasets, api, files, cli, policies, resources, os)"
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args()
    for add in (
        dataset_cases,
        api_cases,
        files_cases,
        cli_cases,
        policy_cases,
        resource_cases,
        process_cases,
    ):
        add()
    cases = [c for c in CASES if args.only in (None, c.category)]
    if args.list:
        for c in cases:
            print(f"{c.category:10s} {c.front:8s} {c.expect:7s} {c.name}")
        print(f"{len(cases)} cases")
        return
    os.environ.setdefault("TQDM_DISABLE", "1")
    import warnings

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory(prefix="bad-inputs-") as tmp:
        root = Path(tmp)
        world = build_world(root)
        warm_up(world)
        BASELINE_MB = vm_rss_mb()
        FRESH_MB = fresh_process_mb(root)
        rows = []
        t0 = time.perf_counter()
        for i, c in enumerate(cases, 1):
            row = run_case(c, world, root)
            rows.append(row)
            flags = [k for k in ("code_ran", "data_lost", "debris") if row[k]]
            flags += [k for k in ("traceback", "coerced", "wrongly_refused") if row[k]]
            flags += [] if row["one_line"] else ["not one line"]
            mark = " <-- " + ", ".join(flags) if flags else ""
            print(
                f"[{i:3d}/{len(cases)}] {row['category']:9s} {row['result']:8s} {row['case']}{mark}",
                flush=True,
            )
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    fields = list(rows[0])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    files.write_atomic(args.csv, buf.getvalue())
    print()
    print(summarize(rows))
    print(f"\n{len(rows)} cases in {time.perf_counter() - t0:.0f} s; rows in {args.csv}")
    print(
        f"peak MB: above the process a case starts from -- {BASELINE_MB:.0f} MB for cases forked "
        f"from the sweep, {FRESH_MB:.0f} MB for a fresh python with the library imported"
    )


if __name__ == "__main__":
    main()
