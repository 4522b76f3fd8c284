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
