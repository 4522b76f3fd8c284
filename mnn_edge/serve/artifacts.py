"""Artifacts as ``mnn-serve`` runs them, without MLServer: how one is opened and described. The CLI
checks artifacts with these before the server is imported."""

from __future__ import annotations

from pathlib import Path

from mnn_edge.runtime import backend_for, open_runner
from mnn_edge.runtime.base import Runner


def open_artifact(path: str | Path, device: str = "auto", threads: int = 0) -> Runner:
    """The runner ``mnn-serve`` uses for ``path``."""
    # no CPU memory arena: a server's batch sizes vary, and the arena would keep the largest's memory
    kwargs = {"threads": threads, "memory_arena": False} if backend_for(path) == "onnxruntime" else {}
    return open_runner(path, device=device, **kwargs)


def describe_artifact(path: Path, name: str, device: str = "auto", threads: int = 0) -> str:
    """Open ``path`` once (any failure is the runner's one-line error) and say what it will serve."""
    with open_artifact(path, device, threads) as runner:
        return f"{name}: {path} ({runner.describe()}, {runner.device})"
