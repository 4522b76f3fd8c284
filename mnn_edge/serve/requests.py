"""Every inference request checked on its own, before anything merges it with another.

A batcher that concatenates requests and splits the answer by each request's *declared* shape
hands one client another's rows when a request's declared shape and carried data disagree (a
header saying [2,3,256,256] over one image's data shifts every split after it). So each request is
decoded and checked here, alone — one input of the model's name, FP32, shape (N, 3, S, S) with
1 <= N <= the per-request limit, exactly N*3*S*S values carried, every value finite and in a sane
range — and only an array that passed reaches the batcher, which splits by the rows it counted
itself. A rejected request gets one line naming its own fault (HTTP 400 / gRPC INVALID_ARGUMENT),
and nobody else notices it.

No MLServer import: the checks are plain numpy, tested without a server.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Network inputs are normalised images (values within a few units of 0); a client that forgot to
# normalise sends 0..255. Anything beyond this is not an image.
MAX_ABS_VALUE = 1e4


class RequestError(ValueError):
    """A request that cannot be served as sent; the message names its fault in one line."""


@dataclass(frozen=True)
class InputRule:
    name: str  # the model's input name
    size: int  # crop side S
    max_rows: int  # most crops one request may carry


def check_header(rule: InputRule, names: list[str], shape: list[int], datatype: str) -> int:
    """The request's declared input, before its data is touched; returns N."""
    if names.count(rule.name) != 1 or len(names) != 1:
        got = ", ".join(f"'{n}'" for n in names) or "none"
        raise RequestError(f"expected exactly one input '{rule.name}', got {got}")
    if datatype != "FP32":
        raise RequestError(f"input '{rule.name}' must be FP32, got {datatype}")
    want = f"(N, 3, {rule.size}, {rule.size})"
    if len(shape) != 4 or list(shape[1:]) != [3, rule.size, rule.size]:
        raise RequestError(f"input '{rule.name}' must have shape {want}, got {list(shape)}")
    n = shape[0]
    if not 1 <= n <= rule.max_rows:
        raise RequestError(f"input '{rule.name}' batch must be 1..{rule.max_rows} crops per request, got {n}")
    return int(n)


def check_array(rule: InputRule, declared_rows: int, flat: np.ndarray) -> np.ndarray:
    """The carried values: exactly what the header declared, finite and in range; (N, 3, S, S)."""
    want = declared_rows * 3 * rule.size * rule.size
    if flat.size != want:
        raise RequestError(f"input '{rule.name}' declares shape [{declared_rows}, 3, {rule.size}, {rule.size}] "
                           f"({want} values) but carries {flat.size}")
    batch = np.asarray(flat, dtype=np.float32).reshape(declared_rows, 3, rule.size, rule.size)
    if not np.isfinite(batch).all():
        raise RequestError(f"input '{rule.name}' contains NaN or infinite values")
    if np.abs(batch).max() > MAX_ABS_VALUE:
        raise RequestError(f"input '{rule.name}' has values beyond +-{MAX_ABS_VALUE:g}: not a normalised image")
    return batch
