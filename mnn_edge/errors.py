"""Errors that reach the user as one clear line (the CLIs print them without a traceback)."""


class MnnEdgeError(Exception):
    """A user-facing failure: bad input, missing dependency, incompatible artifact."""


class InputError(MnnEdgeError, ValueError):
    """An input a model cannot take (shape, dtype, batch size); also a ValueError for callers that
    catch that."""


class MissingDependencyError(MnnEdgeError):
    """An optional extra is not installed."""

    def __init__(self, what: str, extra: str, hint: str = ""):
        msg = f"{what} is not installed: pip install 'mnn-edge[{extra}]'"
        super().__init__(msg + (f" {hint}" if hint else ""))


class Terminated(KeyboardInterrupt):
    """SIGTERM (systemd, docker stop, Kubernetes), raised where Ctrl-C would be: every long command
    then ends as it does on Ctrl-C — outputs completed and renamed, the last checkpoint saved —
    and exits 143 instead of 130 (:func:`mnn_edge.cli_util.run_cli`)."""
