"""Tests of behavioral.files: the one persistence layer (staging, publishing, locks, recovery)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import oslimits
import pytest

from behavioral import files
from behavioral.errors import (
    BehavioralError,
    OutputBusyError,
    OutputError,
    OutputExistsError,
)

REPO = Path(__file__).resolve().parents[1]


def _report(tmp: Path, text: str = "new") -> None:
    (tmp / "summary.json").write_text(json.dumps({"v": text}))
    (tmp / "sub").mkdir()
    (tmp / "sub" / "page.html").write_text(text * 1000)


def _content(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): p.read_text() for p in sorted(path.rglob("*")) if p.is_file()}


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


# --------------------------------------------------------------------------- basics


def test_write_dir_publishes_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = files.write_dir(tmp_path / "rep", _report, expect=("summary.json",))
    assert out == tmp_path / "rep"
    assert json.loads((out / "summary.json").read_text()) == {"v": "new"}
    assert _siblings(out) == ["rep"]  # no staging area, no lock file left
    before = _content(out)
    with pytest.raises(OutputExistsError, match="--force"):
        files.write_dir(out, lambda t: _report(t, "other"))
    assert _content(out) == before
    files.write_dir(out, lambda t: _report(t, "other"), overwrite=True, expect=("summary.json",))
    assert json.loads((out / "summary.json").read_text()) == {"v": "other"}
    assert _siblings(out) == ["rep"]


def test_overwrite_never_replaces_something_else(tmp_path: Path) -> None:
    unrelated = tmp_path / "photos"
    unrelated.mkdir()
    (unrelated / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(OutputExistsError, match="does not look like"):
        files.write_dir(unrelated, _report, overwrite=True, expect=("summary.json",))
    assert (unrelated / "cat.jpg").read_bytes() == b"meow"
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep")
    with pytest.raises(OutputExistsError, match="is a file, not a directory"):
        files.write_dir(a_file, _report, overwrite=True)
    with pytest.raises(OutputExistsError, match="is a directory, not a file"):
        files.write_file(unrelated, b"x", overwrite=True)
    assert a_file.read_text() == "keep"
    empty = tmp_path / "empty"
    empty.mkdir()
    files.write_dir(empty, _report, overwrite=True, expect=("summary.json",))  # empty: fine
    assert (empty / "summary.json").exists()


def test_targets_are_checked_before_any_work(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "afile.txt").write_text("x")
    calls = []
    with pytest.raises(OutputError, match="is a file, not a directory"):
        files.write_dir(tmp_path / "afile.txt" / "sub", calls.append)
    with pytest.raises(OutputError, match="names no file"):
        files.check_target("/")
    with pytest.raises(OutputError, match="empty"):
        files.check_target("")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(OutputExistsError, match="current directory"):
        files.check_target(".", overwrite=True, expect=("summary.json",))
    assert calls == []
    # parents are created by reserve, not by check_target
    files.check_target(tmp_path / "a" / "b" / "c")
    assert not (tmp_path / "a").exists()
    files.write_file(tmp_path / "a" / "b" / "c", "hi")
    assert (tmp_path / "a" / "b" / "c").read_text() == "hi"


def test_bad_arguments_are_library_errors(tmp_path: Path) -> None:
    for kwargs in ({"kind": "tree"}, {"overwrite": "yes"}):
        with pytest.raises(BehavioralError):
            files.check_target(tmp_path / "x", **kwargs)
    with pytest.raises(BehavioralError):
        files.check_target(b"/tmp/bytes")


@pytest.mark.skipif(not oslimits.no_dac_available(), reason="needs root and setpriv")
def test_unwritable_parent_fails_before_work(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chown(shared, 65534, 65534)  # another user's directory, mode 0755
    code = textwrap.dedent(
        f"""
        from behavioral import files
        from behavioral.errors import OutputError
        try:
            files.check_target({str(shared / "rep")!r})
        except OutputError as err:
            print("REFUSED", err)
        """
    )
    proc = oslimits.run_without_dac([sys.executable, "-c", code], cwd=tmp_path)
    assert "REFUSED" in proc.stdout, proc.stderr
    assert "permission denied" in proc.stdout


@pytest.mark.skipif(not oslimits.namespaces_available(), reason="needs root and unshare -m")
def test_read_only_and_full_file_systems(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    code = textwrap.dedent(
        f"""
        from behavioral import files
        from behavioral.errors import OutputError
        try:
            files.check_target({str(ro / "rep")!r})
        except OutputError as err:
            print("REFUSED", err)
        """
    )
    proc = oslimits.run_on_read_only([sys.executable, "-c", code], ro, cwd=tmp_path)
    assert "REFUSED" in proc.stdout and "read-only file system" in proc.stdout, proc.stderr
    # a full disk fails while staging: the staged copy is removed, the old output kept
    full = tmp_path / "full"
    code = textwrap.dedent(
        f"""
        import os
        from behavioral import files
        files.write_dir({str(full / "rep")!r}, lambda t: (t / "a").write_text("old"))
        try:
            files.write_dir({str(full / "rep")!r}, lambda t: (t / "a").write_bytes(os.urandom(1 << 20)),
                            overwrite=True)
        except OSError as err:
            print("ERRNO", err.errno)
        print(sorted(os.listdir({str(full)!r})), open({str(full / "rep" / "a")!r}).read())
        """
    )
    proc = oslimits.run_on_full_disk([sys.executable, "-c", code], full, size="128k", cwd=tmp_path)
    assert "ERRNO 28" in proc.stdout, proc.stderr
    assert "['rep'] old" in proc.stdout


# --------------------------------------------------------------------------- appeared meanwhile


def test_a_target_that_appears_while_writing_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "rep"

    def fill(tmp: Path) -> None:
        _report(tmp)
        target.mkdir()  # someone else creates it meanwhile
        (target / "theirs.txt").write_text("mine, do not delete")

    with pytest.raises(OutputExistsError, match="appeared"):
        files.write_dir(target, fill)
    assert _content(target) == {"theirs.txt": "mine, do not delete"}
    assert _siblings(target) == ["rep"]
    # the same for a file (an empty directory or file counts too)
    wfile = tmp_path / "w.json"
    with files.reserve(wfile, kind="file") as res:
        with pytest.raises(OutputExistsError), res.stage() as tmp:
            tmp.write_text("ours")
            wfile.write_text("theirs")
    assert wfile.read_text() == "theirs"
    empty = tmp_path / "e"
    with pytest.raises(OutputExistsError):
        files.write_dir(empty, lambda t: empty.mkdir())
    assert empty.is_dir() and not any(empty.iterdir())


def test_failed_fill_leaves_target_and_old_copy_untouched(tmp_path: Path) -> None:
    out = files.write_dir(tmp_path / "rep", _report)
    before = _content(out)

    def boom(tmp: Path) -> None:
        _report(tmp, "half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        files.write_dir(out, boom, overwrite=True)
    assert _content(out) == before
    assert _siblings(out) == ["rep"]


# --------------------------------------------------------------------------- replace faults


def test_a_failing_second_rename_restores_the_old_copy(tmp_path: Path, monkeypatch) -> None:
    out = files.write_dir(tmp_path / "rep", _report)
    before = _content(out)

    def fail(src: Path, dst: Path) -> None:
        assert not dst.exists()  # the old copy has been renamed away: the fault's moment
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(files, "_rename_noreplace", fail)
    with pytest.raises(OSError, match="No space"):
        files.write_dir(out, lambda t: _report(t, "new"), overwrite=True)
    assert _content(out) == before
    assert _siblings(out) == ["rep"]


def _child(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=120,
    )


def test_sigkill_between_the_renames_is_recovered_by_the_next_writer(tmp_path: Path) -> None:
    out = files.write_dir(tmp_path / "rep", _report)
    before = _content(out)
    proc = _child(
        """
        import os, signal
        from pathlib import Path
        from behavioral import files

        def killed(src, dst):  # after the old copy was moved aside, before the new one
            os.kill(os.getpid(), signal.SIGKILL)

        files._rename_noreplace = killed
        def fill(tmp):
            (tmp / "summary.json").write_text('{"v": "new"}')
        files.write_dir("rep", fill, overwrite=True)
        """,
        tmp_path,
    )
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()  # the kill left no report at the path ...
    names = _siblings(out)
    assert any(n.startswith(".rep.old-") for n in names)  # ... but the old one aside
    assert any(n.startswith(".rep.tmp-") for n in names)
    # the next writer (without --force) restores the old report and refuses
    with pytest.raises(OutputExistsError):
        files.write_dir(out, lambda t: _report(t, "third"))
    assert _content(out) == before
    assert _siblings(out) == ["rep"]


def test_sigkill_after_the_renames_leaves_the_new_copy(tmp_path: Path) -> None:
    out = files.write_dir(tmp_path / "rep", _report)
    proc = _child(
        """
        import os, signal
        from behavioral import files

        def killed(path):  # the new one is in place; the old one is being deleted
            os.kill(os.getpid(), signal.SIGKILL)

        files._remove = killed
        files.write_dir("rep", lambda t: (t / "summary.json").write_text('{"v": "new"}'),
                        overwrite=True)
        """,
        tmp_path,
    )
    assert proc.returncode == -signal.SIGKILL
    assert json.loads((out / "summary.json").read_text()) == {"v": "new"}
    assert any(n.startswith(".rep.old-") for n in _siblings(out))
    with files.reserve(out, overwrite=True) as res:
        assert any("removed .rep.old-" in line for line in res.recovered)
    assert _siblings(out) == ["rep"]


def test_signals_between_the_renames_are_deferred(tmp_path: Path) -> None:
    out = files.write_dir(tmp_path / "rep", _report)
    proc = _child(
        """
        import os, signal
        from pathlib import Path
        from behavioral import files

        real = files._rename_noreplace
        def interrupted(src, dst):
            os.kill(os.getpid(), signal.SIGINT)   # Ctrl-C right between the renames
            os.kill(os.getpid(), signal.SIGTERM)
            real(src, dst)

        files._rename_noreplace = interrupted
        signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(SystemExit(143)))
        try:
            files.write_dir("rep", lambda t: (t / "summary.json").write_text('{"v": "new"}'),
                            overwrite=True)
        except (KeyboardInterrupt, SystemExit) as err:
            print("interrupted after publishing:", type(err).__name__)
        """,
        tmp_path,
    )
    assert "interrupted after publishing" in proc.stdout, proc.stderr
    assert json.loads((out / "summary.json").read_text()) == {"v": "new"}
    files.write_dir(out, _report, overwrite=True)  # cleans any old copy left behind
    assert _siblings(out) == ["rep"]


def test_debris_of_other_targets_is_never_touched(tmp_path: Path) -> None:
    (tmp_path / ".rep.tmp-x").mkdir()  # not our pattern
    (tmp_path / ".rep.tmp-1.tmp-123-abcdef12").mkdir()  # the debris of target "rep.tmp-1"
    (tmp_path / ".report.tmp-99-abcdef12").mkdir()  # the debris of target "report"
    stale = tmp_path / ".rep.tmp-99-0123abcd"  # the debris of "rep", its writer dead
    stale.mkdir()
    files.write_dir(tmp_path / "rep", _report)
    assert not stale.exists()
    assert (tmp_path / ".rep.tmp-x").exists()
    assert (tmp_path / ".rep.tmp-1.tmp-123-abcdef12").exists()
    assert (tmp_path / ".report.tmp-99-abcdef12").exists()


# --------------------------------------------------------------------------- locks


def test_nested_reservations_share_the_lock(tmp_path: Path) -> None:
    target = tmp_path / "rep"
    with files.reserve(target) as outer:
        assert (tmp_path / ".rep.lock").exists()
        files.write_dir(target, _report)  # e.g. the CLI reserves, Audit.save writes
        assert (tmp_path / ".rep.lock").exists()  # still held by the outer reservation
        assert outer.target == target
    assert _siblings(target) == ["rep"]


_HOLDER = """
import sys, time
from behavioral import files
with files.reserve(sys.argv[1]) as res:
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    with res.stage() as tmp:
        (tmp / "summary.json").write_text('{"v": "first"}')
        (tmp / "big.txt").write_text("x" * 100000)
print("published", flush=True)
"""


def test_two_processes_writing_one_target_cannot_both_succeed(tmp_path: Path) -> None:
    target = tmp_path / "rep"
    first = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(target), "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert first.stdout is not None
    assert first.stdout.readline().strip() == "locked"
    second = _child(
        f"""
        from behavioral import files
        from behavioral.errors import OutputBusyError
        try:
            files.write_dir({str(target)!r}, lambda t: (t / "summary.json").write_text("{{}}"),
                            overwrite=True)
        except OutputBusyError as err:
            print("BUSY", err)
        """,
        tmp_path,
    )
    assert "BUSY" in second.stdout, second.stderr
    assert f"process {first.pid}" in second.stdout
    assert first.wait(timeout=120) == 0
    assert json.loads((target / "summary.json").read_text()) == {"v": "first"}
    assert len((target / "big.txt").read_text()) == 100000  # complete
    assert _siblings(target) == ["rep"]


def test_same_process_second_writer_is_refused_from_another_thread(tmp_path: Path) -> None:
    # flock is per open file: a second, independent reservation in this process on another
    # descriptor would not conflict, which is why reservations are shared per process.
    target = tmp_path / "rep"
    with files.reserve(target):
        fd = os.open(tmp_path / ".rep.lock", os.O_RDWR)
        try:
            import fcntl

            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def test_busy_error_is_specific(tmp_path: Path) -> None:
    target = tmp_path / "rep"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(target), "2"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    try:
        with pytest.raises(OutputBusyError, match="being written by process"):
            files.reserve(target)
    finally:
        holder.wait(timeout=120)
    time.sleep(0)  # the holder published; now we may (with overwrite)
    files.write_dir(target, _report, overwrite=True)


# --------------------------------------------------------------------------- write_file, JSON


def test_write_file_and_json(tmp_path: Path) -> None:
    p = files.write_json(tmp_path / "w.json", {"a": np.float32(1.5), "b": [np.int64(2)]})
    assert json.loads(p.read_text()) == {"a": 1.5, "b": [2]}
    with pytest.raises(OutputExistsError):
        files.write_file(p, "x")
    files.write_file(p, b"bytes", overwrite=True)
    assert p.read_bytes() == b"bytes"
    assert oct(p.stat().st_mode & 0o777) == oct(0o644)


def test_jsonable_is_the_one_coercer() -> None:
    value = {
        "f": np.float64(0.25),
        "nan": float("nan"),
        "arr": np.arange(3),
        "t": (1, "x"),
        np.int64(3): True,
        "nested": {"inf": np.inf},
    }
    got = files.jsonable(value)
    assert got == {
        "f": 0.25,
        "nan": None,
        "arr": [0, 1, 2],
        "t": [1, "x"],
        "3": True,
        "nested": {"inf": None},
    }
    assert files.jsonable(object()).startswith("<object")
    assert files.jsonable(1 + 2j) == "(1+2j)"
    for bad in (float("nan"), {1: 2}, object(), 1 + 2j, [math.inf]):
        with pytest.raises(files.UnstorableValueError):
            files.jsonable(bad, strict=True)
    assert files.dumps_json({"x": math.nan}) == '{\n  "x": null\n}\n'


def test_write_atomic_replaces_inside_a_staged_directory(tmp_path: Path) -> None:
    p = files.write_atomic(tmp_path / "a.png", b"1")
    files.write_atomic(p, "2")
    assert p.read_text() == "2"
    assert _siblings(p) == ["a.png"]
