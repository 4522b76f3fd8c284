"""What every console script shares: one error line and a non-zero exit for user errors."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable

from mnn_edge.errors import MnnEdgeError


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Call ``main``; a :class:`MnnEdgeError` becomes ``error: ...`` on stderr and exit code 1."""
    try:
        return main(argv)
    except MnnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if e.errno not in STORAGE_ERRNOS:
            raise
        print(f"error: {storage_error_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


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
