"""Artifacts as ``mnn-serve`` runs them, without MLServer: how one is opened, and how a batch
above its limit is split. The CLI checks artifacts with these before the server is imported."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnn_edge.runtime import backend_for, open_runner
from mnn_edge.runtime.base import Runner


def open_artifact(path: str | Path, device: str = "auto", threads: int = 0) -> Runner:
    """The runner ``mnn-serve`` uses for ``path``."""
    kwargs = {"threads": threads} if backend_for(path) == "onnxruntime" else {}
    return open_runner(path, device=device, **kwargs)


def describe_artifact(path: Path, name: str, device: str = "auto", threads: int = 0) -> str:
    """Open ``path`` once (any failure is the runner's one-line error) and say what it will serve."""
    with open_artifact(path, device, threads) as runner:
        return f"{name}: {path} ({runner.describe()}, {runner.device})"


def run_split(runner: Runner, batch: np.ndarray) -> dict[str, np.ndarray]:
    """``runner.infer`` on ``batch`` in chunks of at most the artifact's max batch (an engine
    profile's), so a client or the adaptive batcher may send any batch size."""
    limit = runner.input_spec.max_batch or len(batch)
    parts = [runner.infer(batch[i:i + limit]) for i in range(0, len(batch), max(limit, 1))]
    return parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
