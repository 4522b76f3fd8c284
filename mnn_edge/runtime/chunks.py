"""Any number of crops through a runner: the one place that fits a batch to what a runner takes."""

from __future__ import annotations

import numpy as np

from mnn_edge.runtime.base import Runner


def infer_in_chunks(runner: Runner, batch: np.ndarray, max_rows: int | None = None) -> dict[str, np.ndarray]:
    """``runner.infer`` on ``batch`` in chunks the artifact accepts: at most its profile's maximum
    (None = any size, ONNX Runtime) and at most ``max_rows`` (a memory bound: ONNX Runtime keeps the
    arena a batch grew), padded up to its minimum; outputs joined back in order."""
    spec = runner.input_spec
    limits = [n for n in (spec.max_batch, max_rows) if n]
    step = max(1, min(limits)) if limits else max(len(batch), 1)
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, len(batch), step):
        chunk = batch[start:start + step]
        pad = max(0, spec.min_batch - len(chunk))  # an engine profile may need a minimum batch
        if pad:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
        out = runner.infer(chunk)
        parts.append({k: v[: len(chunk) - pad] for k, v in out.items()})
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
