"""What every console script shares: one error line and a non-zero exit for user errors."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

from mnn_edge.errors import MnnEdgeError, Terminated

EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs (main thread only), SIGTERM raises :class:`Terminated`, a
    KeyboardInterrupt, so every Ctrl-C path also handles a stop from systemd or docker."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while the block writes things that must agree with each other (a
    frame's JSON line and its video frame): a signal that arrives meanwhile is noted and handled as
    usual when the block ends. Without this a stop between the two writes left a JSON line for a
    frame the video never got. (Blocking the signal with ``pthread_sigmask`` would not do: the
    kernel hands a process-wide signal to another thread, and Python runs the handler anyway.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:
        handler = previous[caught[0]]
        if callable(handler):
            handler(caught[0], None)  # ours raises Terminated, Python's KeyboardInterrupt
        elif handler == signal.SIG_DFL:
            os.kill(os.getpid(), caught[0])


def interrupted_exit(e: BaseException) -> tuple[str, int]:
    """(what to say, exit code) for a KeyboardInterrupt: Ctrl-C or SIGTERM."""
    return ("terminated (SIGTERM)", EXIT_TERMINATED) if isinstance(e, Terminated) else \
        ("interrupted", EXIT_INTERRUPTED)


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Call ``main``; a :class:`MnnEdgeError` becomes ``error: ...`` on stderr and exit code 1;
    Ctrl-C exits 130 and SIGTERM 143, after the same clean-up."""
    try:
        with sigterm_as_interrupt():
            return main(argv)
    except MnnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if e.errno not in STORAGE_ERRNOS:
            raise
        print(f"error: {storage_error_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        line, code = interrupted_exit(e)
        print(line, file=sys.stderr)
        return code


# Failures of the storage under a command, not of the command: a full disk deep inside a library
# (torch's ONNX writer, OpenCV) must end in one line like any user error, not a traceback. Every
# file the toolkit writes goes through a temporary name, so nothing half-written is left under a
# final name when one of these ends the run.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}
_STORAGE_HINT = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space or raise the quota",
                 errno.EFBIG: "the file system (or a ulimit -f) caps the file size",
                 errno.EROFS: "write somewhere writable", errno.EIO: "check the disk"}


def storage_error_line(e: OSError) -> str:
    """``No space left on device while writing out/x.onnx: free some space ...``"""
    where = f" while writing {e.filename}" if e.filename else " while writing"
    return (f"{e.strerror or e}{where}: {_STORAGE_HINT.get(e.errno, 'check the disk')}; "
            "no half-written file was kept under a final name")
