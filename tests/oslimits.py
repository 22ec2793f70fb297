"""Run a command where the operating system refuses writes: a full disk, a read-only file
system, a directory the process may not write to.

Real refusals, not mocks: a tiny tmpfs or a read-only remount in a private mount namespace
(``unshare -m``, as root), and a process without the capabilities that let root write
anywhere (``setpriv``). Each ``*_available()`` says whether this machine allows it; tests
skip otherwise. Also used by ``analyses/bad_inputs.py``.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "namespaces_available",
    "no_dac_available",
    "run_on_full_disk",
    "run_on_read_only",
    "run_without_dac",
]


@functools.cache
def namespaces_available() -> bool:
    """Whether ``unshare -m`` with a tmpfs mount works here (root in a permissive box)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt 2>/dev/null || "
         "mount -t tmpfs -o size=16k tmpfs /tmp"],
        capture_output=True,
        check=False,
        timeout=30,
    )  # fmt: skip
    return probe.returncode == 0


@functools.cache
def no_dac_available() -> bool:
    """Whether ``setpriv`` can drop root's permission-bypassing capabilities here."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return False
    probe = subprocess.run([*_SETPRIV, "true"], capture_output=True, check=False, timeout=30)
    return probe.returncode == 0


_SETPRIV = (
    "setpriv",
    "--inh-caps=-all",
    "--bounding-set=-dac_override,-dac_read_search,-fowner",
    "--",
)


def _run(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None, timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def run_on_full_disk(
    argv: Sequence[str],
    mount_point: Path,
    *,
    size: str = "256k",
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with a ``size`` tmpfs mounted on ``mount_point`` (created if needed):
    writes beyond ``size`` fail with ENOSPC. The mount vanishes with the process."""
    mount_point.mkdir(parents=True, exist_ok=True)
    script = (
        f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(mount_point))} && "
        f"exec {shlex.join(argv)}"
    )
    return _run(["unshare", "-m", "sh", "-c", script], cwd=cwd, env=env, timeout=timeout)


def run_on_read_only(
    argv: Sequence[str],
    directory: Path,
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with ``directory`` bind-mounted read-only onto itself (EROFS)."""
    d = shlex.quote(str(directory))
    script = f"mount --bind {d} {d} && mount -o remount,bind,ro {d} && exec {shlex.join(argv)}"
    return _run(["unshare", "-m", "sh", "-c", script], cwd=cwd, env=env, timeout=timeout)


def run_without_dac(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as root without the capabilities that bypass file permissions, so a
    directory owned by another user with mode 0755 refuses writes (EACCES)."""
    return _run([*_SETPRIV, *argv], cwd=cwd, env=env, timeout=timeout)
