"""The one persistence layer: every file and directory the library writes goes through here.

A writer never changes an output in place. It stages the new output in a temporary sibling
of the target (same directory, so the final step is a rename on one file system) and then
publishes it atomically; readers see the old output or the new one, never a mix.

The API (everything else is private)::

    check_target(path, *, kind, overwrite, expect)  validate an output target before any
                                                    work starts (the CLI and the API call it
                                                    first, so bad targets fail in a second)
    reserve(path, *, kind, overwrite, expect)       the same, then lock the target for this
                                                    process and clean up debris of earlier
                                                    interrupted writers (a context manager)
    Reservation.stage()                             a temporary sibling to fill (a directory,
                                                    or a file path for kind="file"),
                                                    published when the block ends cleanly
    write_dir(path, fill, *, overwrite, expect)     reserve + stage + ``fill(tmp_dir)`` + publish
    write_file(path, data, *, overwrite)            the same for one file (bytes or text)
    write_json(path, doc, *, overwrite)             ``write_file`` of :func:`dumps_json`
    recover(path)                                   restore or clean what an interrupted
                                                    writer left behind (``reserve`` does it)
    jsonable(value, *, strict)                      THE JSON coercer (NumPy scalars and
                                                    arrays, NaN/inf, tuples, mappings)
    dumps_json(doc)                                 ``json.dumps`` of :func:`jsonable`

Rules, for every output:

* **Targets are checked first** (:func:`check_target`): the parent must exist or be
  creatable (no file on the way), be a writable directory, and the target must be absent
  unless ``overwrite``; a replaced target must be of the same kind (file or directory) and,
  for directories, look like the library's own output (contain one of ``expect``, e.g.
  ``summary.json``) or be empty -- ``--force`` never deletes an unrelated directory.
* **One writer per target**: :func:`reserve` takes an exclusive ``fcntl.flock`` on the
  sibling lock file ``.NAME.lock`` (removed again on release), held until the output is
  published. A second writer -- another process, or the same one -- gets
  :class:`~behavioral.errors.OutputBusyError` at once. Within one process the same target
  can be reserved again by nested code (the CLI reserves, ``Audit.save`` reserves again).
* **Publishing without overwrite never replaces anything**: the staged output is renamed
  with ``renameat2(RENAME_NOREPLACE)`` (``link`` + ``unlink`` for files where that is not
  available), so a target that appeared while the output was being computed is kept and
  :class:`~behavioral.errors.OutputExistsError` says so; the staged copy is removed.
* **A replace keeps the old copy until the new one is in place**: the old target is renamed
  to ``.NAME.old-PID-XXXXXXXX``, the new one renamed in, then the old one deleted. If the
  second rename fails, the old copy is renamed back. SIGINT, SIGTERM, SIGHUP and SIGQUIT
  are blocked between the two renames (delivered right after), so only SIGKILL or a power
  cut can interrupt them; the next :func:`reserve` of that target then restores the old
  copy (target missing) or deletes it (target present), and removes every stale
  ``.NAME.tmp-PID-XXXXXXXX`` staging area (their writers are dead: they held the lock).
* Staged files are flushed to disk (``fsync``) before they are published, and so is the
  parent directory after a publish.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import json
import logging
import math
import os
import re
import secrets
import shutil
import signal
import stat
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from behavioral.errors import (
    BehavioralError,
    InvalidArgumentError,
    OutputBusyError,
    OutputError,
    OutputExistsError,
)

__all__ = [
    "Reservation",
    "check_target",
    "dumps_json",
    "jsonable",
    "recover",
    "replace_dir",
    "reserve",
    "write_atomic",
    "write_dir",
    "write_file",
    "write_json",
]

Kind = Literal["dir", "file"]
PathLike = str | os.PathLike[str]

_log = logging.getLogger(__name__)
_SIGNALS = tuple(
    s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None),
                getattr(signal, "SIGQUIT", None)) if s is not None
)  # fmt: skip
_NAME_MAX = 200  # longer names are shortened in the hidden siblings (file systems allow 255)


# --------------------------------------------------------------------------- JSON


#: Files of which a directory must hold one for a report to replace it (``overwrite=True``,
#: ``--force``): an audit report or a comparison report, so that an overwrite never deletes
#: an unrelated directory.
REPORT_FILES = ("summary.json", "report.html")


class UnstorableValueError(BehavioralError, ValueError):
    """A value that JSON cannot store exactly (NaN, an object, a non-string key) under
    ``jsonable(..., strict=True)``."""


def jsonable(value: Any, *, strict: bool = False) -> Any:
    """A plain-JSON copy of ``value`` -- the library's one JSON coercer.

    NumPy scalars become Python scalars, arrays and tuples become lists, mappings become
    dicts. Non-finite floats become ``None`` and anything else (keys that are not strings,
    objects) its ``str``/``repr`` -- unless ``strict``, where each of those raises
    :class:`UnstorableValueError` instead (used for data that must round-trip exactly,
    such as dataset metadata).
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return _json_float(value, strict)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), strict=strict)
    if isinstance(value, (list, tuple)):
        return [jsonable(v, strict=strict) for v in value]
    if isinstance(value, Mapping):
        return {_json_key(k, strict): jsonable(v, strict=strict) for k, v in value.items()}
    if strict:
        raise UnstorableValueError(f"a {type(value).__name__} ({value!r}) cannot be stored in JSON")
    return repr(value)


def _json_float(value: float, strict: bool) -> float | None:
    if math.isfinite(value):
        return value
    if strict:
        raise UnstorableValueError(f"the non-finite float {value!r} cannot be stored in JSON")
    return None


def _json_key(key: Any, strict: bool) -> str:
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, str):
        return key
    if strict:
        raise UnstorableValueError(f"JSON object keys must be strings, got {key!r}")
    return str(key)


def dumps_json(doc: Any, *, strict: bool = False, indent: int | None = 2) -> str:
    """``json.dumps`` of :func:`jsonable` ``(doc)`` (never emits NaN), with a final newline."""
    return json.dumps(jsonable(doc, strict=strict), indent=indent, allow_nan=False) + "\n"


# --------------------------------------------------------------------------- targets


def _absolute(path: PathLike) -> Path:
    """Absolute, lexically normalised (``..`` resolved without following symlinks)."""
    return Path(os.path.abspath(os.fspath(path)))


def _hidden(target: Path, tag: str) -> str:
    """``.NAME.TAG-PID-XXXXXXXX``, the name of a hidden sibling of ``target``."""
    name = target.name if len(target.name) <= _NAME_MAX else target.name[:_NAME_MAX]
    return f".{name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}"


def _debris_pattern(target: Path) -> re.Pattern[str]:
    name = target.name if len(target.name) <= _NAME_MAX else target.name[:_NAME_MAX]
    return re.compile(rf"^\.{re.escape(name)}\.(tmp|old)-(\d+)-([0-9a-f]{{8}})$")


def _lock_path(target: Path) -> Path:
    name = target.name if len(target.name) <= _NAME_MAX else target.name[:_NAME_MAX]
    return target.parent / f".{name}.lock"


def _kind_of(path: Path) -> str:
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    return "file"


def _describe(kind: str) -> str:
    return {"dir": "a directory", "file": "a file", "symlink": "a symbolic link"}[kind]


def _check_replaceable(target: Path, kind: Kind, expect: Sequence[str]) -> None:
    """Raise OutputExistsError unless ``overwrite`` may replace the existing ``target``."""
    found = _kind_of(target)
    if found != kind:
        raise OutputExistsError(
            f"{target} exists and is {_describe(found)}, not {_describe(kind)}; "
            "refusing to replace it even with --force/overwrite=True"
        )
    if kind == "dir":
        cwd = Path.cwd()
        if cwd == target or target in cwd.parents:
            raise OutputExistsError(f"{target} holds the current directory; refusing to replace it")
        if expect:
            try:
                entries = set(os.listdir(target))
            except OSError as err:
                raise OutputError(f"cannot read {target}: {err.strerror}") from None
            if entries and not entries & set(expect):
                raise OutputExistsError(
                    f"{target} exists and does not look like an output of this kind (it has "
                    f"none of {', '.join(expect)}); refusing to replace it even with "
                    "--force/overwrite=True: remove it yourself or pick another path"
                )


def _check_parent(target: Path) -> None:
    """The parent exists as a writable directory, or can be created (no file on the way)."""
    parent = target.parent
    probe = parent
    while not os.path.lexists(probe):
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(
            f"cannot create {target}: {probe} is {_describe(_kind_of(probe))}, not a directory"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        reason = "read-only file system" if _read_only(probe) else "permission denied"
        raise OutputError(f"cannot write in {probe} ({reason}), so {target} cannot be created")


def _check_name_length(target: Path) -> None:
    probe = target.parent
    while not probe.is_dir():
        probe = probe.parent
    try:
        limit = os.pathconf(probe, "PC_NAME_MAX")
    except (OSError, ValueError):  # pragma: no cover - no limit reported
        return
    if len(os.fsencode(target.name)) > limit:
        raise OutputError(
            f"the name {target.name[:40]}... has {len(os.fsencode(target.name))} bytes; this "
            f"file system allows {limit}"
        )


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:  # pragma: no cover - platforms without statvfs
        return False


def check_target(
    path: PathLike,
    *,
    kind: Kind = "dir",
    overwrite: bool = False,
    expect: Sequence[str] = (),
) -> Path:
    """Validate an output target before any work starts; return it as an absolute path.

    Args:
        path: the file or directory to write.
        kind: ``"dir"`` or ``"file"``.
        overwrite: whether an existing target may be replaced.
        expect: for directories, names of which an existing target must hold at least
            one (unless it is empty) to be replaced -- the files this kind of output has.

    Raises:
        OutputExistsError: the target exists and ``overwrite`` is False, or it may not be
            replaced (another kind, a directory of something else, the current directory).
        OutputError: no name (``/``), a parent that is a file or not writable.
        InvalidArgumentError: ``kind`` or ``overwrite`` of the wrong type.
    """
    if kind not in ("dir", "file"):
        raise InvalidArgumentError(f"kind must be 'dir' or 'file', got {kind!r}")
    if not isinstance(overwrite, bool):
        raise InvalidArgumentError(f"overwrite must be a bool, got {overwrite!r}")
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise InvalidArgumentError(f"an output path must be a str or path, got {path!r}")
    if not os.fspath(path):
        raise OutputError("the output path is empty")
    if "\0" in os.fspath(path):
        raise OutputError(f"the output path {os.fspath(path)!r} contains a NUL character")
    target = _absolute(path)
    if not target.name or target.name in (".", ".."):
        raise OutputError(f"{path!s} names no file or directory to write")
    _check_parent(target)
    _check_name_length(target)
    if os.path.lexists(target):
        if not overwrite:
            raise OutputExistsError(f"{path!s} exists; pass --force (overwrite=True) to replace it")
        _check_replaceable(target, kind, expect)
    return target


# --------------------------------------------------------------------------- locks


class _Lock:
    """An exclusive ``flock`` on ``.NAME.lock`` next to a target, reentrant per process."""

    _held: ClassVar[dict[Path, _Lock]] = {}
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, target: Path) -> None:
        self.path = _lock_path(target)
        self.fd = -1
        self.depth = 0

    @classmethod
    def acquire(cls, target: Path) -> _Lock:
        with cls._guard:
            lock = cls._held.get(target)
            if lock is None:
                lock = cls(target)
                lock._take(target)
                cls._held[target] = lock
            lock.depth += 1
            return lock

    def _take(self, target: Path) -> None:
        while True:
            try:
                fd = os.open(
                    self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644
                )
            except OSError as err:
                raise OutputError(
                    f"cannot create the lock file {self.path}: {err.strerror}"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                who = f"process {holder}" if holder else "another process"
                raise OutputBusyError(
                    f"{target} is being written by {who} right now (it holds {self.path.name}); "
                    "wait for it to finish or choose another output"
                ) from None
            # The lock file may have been removed by its previous holder between our open
            # and our flock: then we locked an orphan; try again on the current file.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path, follow_symlinks=False))
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self.fd = fd
                return
            os.close(fd)

    def release(self) -> None:
        with self._guard:
            self.depth -= 1
            if self.depth > 0:
                return
            for target, lock in list(self._held.items()):
                if lock is self:
                    del self._held[target]
            with contextlib.suppress(OSError):
                os.unlink(self.path)  # while still holding it: see _take
            os.close(self.fd)
            self.fd = -1


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:  # pragma: no cover
        return None


# --------------------------------------------------------------------------- recovery


def recover(path: PathLike) -> list[str]:
    """Restore or clean what interrupted writers of ``path`` left behind.

    Call it only while holding the target's lock (:func:`reserve` does): every staging
    area ``.NAME.tmp-*`` is then a dead writer's and is removed; an old copy
    ``.NAME.old-*`` is renamed back when the target is missing (a replace was killed
    between its two renames) and removed when the target is present (killed after
    them). Returns one line per action taken (also logged as warnings).
    """
    target = _absolute(path)
    pattern = _debris_pattern(target)
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    tmps, olds = [], []
    for name in names:
        m = pattern.match(name)
        if m:
            (tmps if m.group(1) == "tmp" else olds).append(target.parent / name)
    actions = []
    olds.sort(key=lambda p: os.lstat(p).st_mtime_ns, reverse=True)
    if olds and not os.path.lexists(target):
        os.rename(olds[0], target)
        actions.append(f"restored {target} from {olds[0].name}, left by an interrupted replace")
        olds = olds[1:]
    for p in olds + tmps:
        _remove(p)
        actions.append(f"removed {p.name}, left by an interrupted write of {target.name}")
    for line in actions:
        _log.warning(line)
    return actions


def _remove(path: Path) -> None:
    if _kind_of(path) == "dir":
        shutil.rmtree(path)
    else:
        os.unlink(path)


# --------------------------------------------------------------------------- publishing


def _renameat2() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError, TypeError):  # pragma: no cover - not glibc >= 2.28
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_RENAMEAT2 = _renameat2()
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; FileExistsError if ``dst`` exists (never replaces it)."""
    if _RENAMEAT2 is not None:
        rc = _RENAMEAT2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), str(dst))
    # Fallbacks without renameat2: link(2) refuses an existing name; rename(2) of a
    # directory replaces at most an *empty* directory.
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    if src.is_dir():
        os.rename(src, dst)
        return
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError as err:
        if err.errno == errno.EEXIST:
            raise
        os.rename(src, dst)  # no hard links on this file system
        return
    os.unlink(src)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Block SIGINT/SIGTERM/SIGHUP/SIGQUIT in this thread; pending ones arrive on exit."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    if path.is_dir():
        for root, _dirs, files in os.walk(path):
            for f in files:
                fd = os.open(os.path.join(root, f), os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            _fsync_dir(Path(root))
    elif path.exists():
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _publish(
    staged: Path, target: Path, *, kind: Kind, overwrite: bool, expect: Sequence[str]
) -> None:
    """Move the finished ``staged`` output to ``target`` (see the module docstring)."""
    _fsync_tree(staged)
    with _signals_deferred():
        if not os.path.lexists(target):
            try:
                _rename_noreplace(staged, target)
            except FileExistsError:
                if not overwrite:
                    raise OutputExistsError(
                        f"{target} appeared while the output was being written; it was left "
                        "as it is (pass --force/overwrite=True to replace it)"
                    ) from None
            else:
                _fsync_dir(target.parent)
                return
        if not overwrite:
            raise OutputExistsError(
                f"{target} appeared while the output was being written; it was left as it "
                "is (pass --force/overwrite=True to replace it)"
            )
        _check_replaceable(target, kind, expect)
        old = target.parent / _hidden(target, "old")
        os.rename(target, old)
        try:
            _rename_noreplace(staged, target)
        except BaseException:
            os.rename(old, target)
            raise
        _fsync_dir(target.parent)
    _remove(old)


class Reservation:
    """An output target checked and locked for this process (from :func:`reserve`).

    Attributes:
        target: the absolute path of the output.
        kind, overwrite, expect: as given to :func:`reserve`.
        recovered: what :func:`recover` did when the target was reserved.
    """

    def __init__(
        self, target: Path, kind: Kind, overwrite: bool, expect: Sequence[str], lock: _Lock
    ) -> None:
        self.target, self.kind, self.overwrite = target, kind, overwrite
        self.expect = tuple(expect)
        self._lock: _Lock | None = lock
        self.recovered: list[str] = []

    @contextlib.contextmanager
    def stage(self) -> Iterator[Path]:
        """A temporary sibling of the target to fill; published when the block ends.

        For ``kind="dir"`` it is an empty directory (mode 0755); for ``kind="file"`` a path
        to write (not created). On any exception -- or KeyboardInterrupt -- the staged
        copy is removed and the target is left as it was.
        """
        if self._lock is None:
            raise OutputError(f"the reservation of {self.target} was already released")
        staged = self.target.parent / _hidden(self.target, "tmp")
        if self.kind == "dir":
            os.mkdir(staged, 0o755)
        try:
            yield staged
            if self.kind == "file" and not os.path.isfile(staged):
                raise OutputError(f"nothing was written to {self.target}")
            _publish(
                staged, self.target, kind=self.kind, overwrite=self.overwrite, expect=self.expect
            )
        except BaseException:
            if os.path.lexists(staged):
                _remove(staged)
            raise

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def reserve(
    path: PathLike,
    *,
    kind: Kind = "dir",
    overwrite: bool = False,
    expect: Sequence[str] = (),
) -> Reservation:
    """Check an output target, lock it for this process and clean earlier debris.

    Use it as a context manager around the whole computation of an output, so that a
    second writer fails at once instead of after its work::

        with reserve("reports/run1", overwrite=False, expect=("summary.json",)) as out:
            ...                       # long computation
            with out.stage() as tmp:  # fill tmp; it is published when the block ends
                ...

    The parent directories are created. Arguments and errors as :func:`check_target`,
    plus :class:`~behavioral.errors.OutputBusyError` when another writer holds the lock.
    """
    target = check_target(path, kind=kind, overwrite=overwrite, expect=expect)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create {target.parent}: {err.strerror}") from None
    lock = _Lock.acquire(target)
    try:
        res = Reservation(target, kind, overwrite, expect, lock)
        if lock.depth == 1:
            res.recovered = recover(target)
        # Check again under the lock: the target may have been restored or appeared.
        check_target(target, kind=kind, overwrite=overwrite, expect=expect)
    except BaseException:
        lock.release()
        raise
    return res


def write_dir(
    path: PathLike,
    fill: Callable[[Path], Any],
    *,
    overwrite: bool = False,
    expect: Sequence[str] = (),
) -> Path:
    """Write a directory: ``fill(tmp)`` writes its contents into a staged directory, which
    is then published at ``path``. Returns the absolute path."""
    with reserve(path, kind="dir", overwrite=overwrite, expect=expect) as res:
        with res.stage() as tmp:
            fill(tmp)
    return res.target


def write_file(path: PathLike, data: bytes | str, *, overwrite: bool = False) -> Path:
    """Write one file (``bytes``, or ``str`` as UTF-8) as a published output."""
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with reserve(path, kind="file", overwrite=overwrite) as res:
        with res.stage() as tmp:
            _write_new(tmp, payload)
    return res.target


def write_json(path: PathLike, doc: Any, *, overwrite: bool = False) -> Path:
    """:func:`write_file` of :func:`dumps_json` ``(doc)``."""
    return write_file(path, dumps_json(doc), overwrite=overwrite)


def _write_new(path: Path, payload: bytes, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())


# --------------------------------------------------------------------------- inside a staged output


def write_atomic(path: PathLike, data: bytes | str, *, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` by a temporary file renamed over it; return the path.

    For files *inside* a directory being staged (a report's PNGs), and for scripts that
    mean to replace their own output; it neither locks nor refuses an existing file. Use
    :func:`write_file` for outputs a user names.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    tmp = path.parent / _hidden(path, "tmp")
    try:
        _write_new(tmp, payload, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def replace_dir(tmp: PathLike, target: PathLike) -> None:
    """Move the finished directory ``tmp`` to ``target``, replacing it if it exists.

    Kept for code that stages its own directory (the report module's comparison report):
    the caller has decided that ``target`` may be replaced. The old copy is kept until the
    new one is in place and restored on failure. New code uses :func:`write_dir`.
    """
    target_path = _absolute(target)
    if os.path.lexists(target_path) and _kind_of(target_path) != "dir":
        raise OutputExistsError(f"{target_path} exists and is not a directory")
    _publish(Path(tmp), target_path, kind="dir", overwrite=True, expect=())
