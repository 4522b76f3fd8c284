"""What every console script shares: one error line and a non-zero exit for user errors."""

from __future__ import annotations

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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
