"""The ``behavioral`` command line: audit policies, roll them out, recover rewards, train.

Subcommands (each has ``--help``)::

    behavioral demo      audit the policy zoo on both splits of both envs -> a report directory
    behavioral audit     audit one policy (or a saved dataset) -> a report directory
    behavioral rollout   roll a policy out -> a dataset directory
    behavioral irl       recover a reward from a dataset directory -> weights JSON
    behavioral train     train a PPO policy (the base optimizer) -> an SB3 zip

Every failure ends with one line ``behavioral: error: ...`` on stderr and a non-zero exit
status: 2 for usage errors, 1 for bad input and for the operating system's refusals (a
full disk, a read-only or forbidden target), 130 on Ctrl-C and 143 on SIGTERM (the staged
output is removed; an existing output is kept). An existing output is never replaced
without ``--force``. Set ``BEHAVIORAL_TRACEBACK=1`` to see the traceback of an
unexpected error.

Modules: :mod:`.parser` (one builder per subcommand, parent parsers for shared flags),
:mod:`.specs` (policy and env names -> objects, no parser state), :mod:`.commands`
(audit, rollout, irl, train), :mod:`.demo`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from behavioral.cli.parser import build_parser
from behavioral.cli.specs import CLIError, PolicySpec, load_policy, one_line

__all__ = ["CLIError", "PolicySpec", "build_parser", "load_policy", "main"]

_STAGED = re.compile(r"/\.([^/]+)\.(?:tmp|old)-\d+-[0-9a-f]{8}(?=/|$)")


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that staged outputs are cleaned up."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise _Terminated()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _os_error_message(err: OSError, out: str | None = None) -> str:
    """An OSError as one line naming the user's path (not the hidden staging copy); a
    write error without a file name (a full disk) names the command's output ``out``."""
    if err.errno is None or not err.strerror:
        return one_line(err)
    what = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.EFBIG: "the file is too large for this file system or process",
    }.get(err.errno, err.strerror)
    name = err.filename if isinstance(err.filename, str) else None
    if name:
        name = _STAGED.sub(r"/\1", name)
        return f"cannot write or read {name}: {what}"
    if out and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
        return f"cannot write {out}: {what}"
    return what


def _error_message(err: BaseException, out: str | None = None) -> str:
    if isinstance(err, KeyError) and err.args:
        return one_line(err.args[0])
    if isinstance(err, OSError) and not err.args[1:] and err.errno is None:
        return one_line(err) or type(err).__name__
    if isinstance(err, OSError):
        return _os_error_message(err, out)
    return one_line(err) or type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 1 error, 2 usage)."""
    from behavioral.errors import BehavioralError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _sigterm_raises():
            return int(args.func(args))
    except KeyboardInterrupt:
        sys.stderr.write("behavioral: interrupted\n")
        return 130
    except _Terminated:
        sys.stderr.write("behavioral: terminated\n")
        return 143
    except (BehavioralError, OSError) as err:
        sys.stderr.write(f"behavioral: error: {_error_message(err, getattr(args, 'out', None))}\n")
        return 1
    except MemoryError:
        sys.stderr.write("behavioral: error: out of memory\n")
        return 1
    except Exception as err:
        if os.environ.get("BEHAVIORAL_TRACEBACK"):
            raise
        sys.stderr.write(
            f"behavioral: error: unexpected {type(err).__name__}: {_error_message(err)} "
            "(set BEHAVIORAL_TRACEBACK=1 to see the traceback)\n"
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
