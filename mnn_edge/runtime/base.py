"""The runtime boundary: numpy in, a dict of named numpy arrays out, whatever the backend.

Each backend implements ``_infer`` (and optionally ``close``); the base class checks inputs so
every backend rejects a wrong shape or dtype with the same message. Runners are context managers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnn_edge.artifact import ModelMetadata
from mnn_edge.errors import InputError


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int | None, ...]  # None = dynamic (the batch axis)
    dtype: np.dtype
    min_batch: int = 1
    max_batch: int | None = None  # None = unbounded (ONNX Runtime); engines have a profile


class Runner(ABC):
    """A loaded artifact ready to run. Subclasses set ``metadata``, ``input_spec``, ``backend``."""

    backend: str = "?"
    device: str = "cpu"  # where it runs: "cpu", "cuda", or the GPU's name (TensorRT)
    metadata: ModelMetadata
    input_spec: InputSpec

    def __init__(self, path: str | Path):
        self.path: Path | str = Path(path)  # the remote runner keeps its model URL here, as a string

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run one batch of preprocessed crops (see :func:`mnn_edge.preprocess.to_input`)."""
        return self._infer(self._prepare(batch))

    def _prepare(self, batch: np.ndarray) -> np.ndarray:
        """The checked batch as the contiguous array of the input's dtype that backends consume."""
        self._check(batch)
        return np.ascontiguousarray(batch, dtype=self.input_spec.dtype)

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]: ...

    def close(self) -> None:
        """Release the backend's resources; safe to call twice."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> str:
        return f"{self.backend} {self.metadata.precision.value} {self.metadata.kind.value}"

    def _check(self, batch: np.ndarray) -> None:
        spec = self.input_spec
        if not isinstance(batch, np.ndarray):
            raise TypeError(f"infer() takes a numpy array, got {type(batch).__name__}")
        want = tuple(spec.shape[1:])
        if batch.ndim != len(spec.shape) or tuple(batch.shape[1:]) != want:
            raise InputError(f"input '{spec.name}' must have shape (N, {', '.join(map(str, want))}), got {batch.shape}")
        if batch.dtype.kind != "f":
            raise InputError(f"input '{spec.name}' must be float (preprocessed), got {batch.dtype}")
        n = batch.shape[0]
        if n < spec.min_batch or (spec.max_batch is not None and n > spec.max_batch):
            hi = spec.max_batch if spec.max_batch is not None else "any"
            raise InputError(f"batch {n} is outside this artifact's range [{spec.min_batch}, {hi}]"
                               + (" (rebuild the engine with a larger --max-batch)" if spec.max_batch else ""))
