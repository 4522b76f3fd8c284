"""Open any artifact behind one interface: ``open_runner(path) -> Runner``.

Backends are imported only when an artifact of theirs is opened, so importing this package pulls
in neither torch nor tensorrt (a test asserts it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mnn_edge.errors import MissingDependencyError, MnnEdgeError
from mnn_edge.runtime.base import InputSpec, Runner

SUFFIXES = {".onnx": "onnxruntime", ".plan": "tensorrt", ".engine": "tensorrt", ".pt": "pytorch"}


def backend_for(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise MnnEdgeError(f"unknown artifact type '{suffix}' for {path}: expected one of {', '.join(SUFFIXES)}")
    return SUFFIXES[suffix]


def tensorrt_available() -> bool:
    """True when the tensorrt module is installed (answered without importing it)."""
    return importlib.util.find_spec("tensorrt") is not None


def open_runner(path: str | Path, device: str = "auto", **kwargs) -> Runner:
    """Load an artifact with the backend its suffix names. ``device``: auto | cpu | cuda."""
    backend = backend_for(path)
    if backend == "onnxruntime":
        from mnn_edge.runtime.onnxruntime_backend import OnnxRuntimeRunner

        return OnnxRuntimeRunner(path, device="cpu" if device == "auto" else device, **kwargs)
    if backend == "pytorch":
        from mnn_edge.runtime.torch_backend import TorchRunner

        return TorchRunner(path, device="cpu" if device == "auto" else device, **kwargs)
    if not tensorrt_available():
        raise MissingDependencyError("TensorRT", "trt", "on a machine with an NVIDIA GPU (a Jetson: use JetPack's "
                                     "python3-libnvinfer) to run .plan engines")
    try:
        from mnn_edge.runtime.tensorrt.runner import TensorRTRunner
    except ImportError as e:
        raise MnnEdgeError(f"the TensorRT backend is not available in this build: {e}") from e
    return TensorRTRunner(path, **kwargs)


__all__ = ["InputSpec", "Runner", "backend_for", "open_runner", "tensorrt_available"]
