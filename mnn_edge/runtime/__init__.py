"""Open any artifact behind one interface: ``open_runner(path) -> Runner``.

A path's suffix names its backend; a ``grpc://HOST:PORT/MODEL`` or ``http://...`` URL opens a model
on an inference server (:mod:`mnn_edge.runtime.remote`). Backends are imported only when an
artifact of theirs is opened, so importing this package pulls in none of torch, tensorrt and
tritonclient (a test asserts it).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from mnn_edge.errors import MissingDependencyError, MnnEdgeError
from mnn_edge.runtime.base import InputSpec, Runner
from mnn_edge.runtime.remote.url import is_model_url


@dataclass(frozen=True)
class BackendEntry:
    """Where a backend's runner lives; imported only when an artifact of its kind is opened."""

    name: str
    suffixes: tuple[str, ...]
    module: str
    runner: str
    host_device: bool  # takes device="cpu"/"cuda" (ONNX Runtime, PyTorch); TensorRT takes a GPU index


BACKENDS = (
    BackendEntry("onnxruntime", (".onnx",), "mnn_edge.runtime.onnxruntime_backend", "OnnxRuntimeRunner", True),
    BackendEntry("pytorch", (".pt",), "mnn_edge.runtime.torch_backend", "TorchRunner", True),
    BackendEntry("tensorrt", (".plan", ".engine"), "mnn_edge.runtime.tensorrt.runner", "TensorRTRunner", False),
    BackendEntry("remote", (), "mnn_edge.runtime.remote.runner", "RemoteRunner", False),  # model URLs
)
SUFFIXES = {suffix: b.name for b in BACKENDS for suffix in b.suffixes}


def backend_for(path: str | Path) -> str:
    if is_model_url(path):
        return "remote"
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise MnnEdgeError(f"unknown artifact type '{suffix}' for {path}: expected one of {', '.join(SUFFIXES)} "
                           "or a grpc:// / http:// model URL")
    return SUFFIXES[suffix]


def tensorrt_available() -> bool:
    """True when the tensorrt module is installed (answered without importing it)."""
    return importlib.util.find_spec("tensorrt") is not None


def open_runner(path: str | Path, device: str = "auto", **kwargs) -> Runner:
    """Load an artifact with the backend its suffix names (or a model URL's server). ``device``: auto |
    cpu | cuda, for .onnx and .pt; a URL takes ``timeout=`` seconds instead."""
    entry = next(b for b in BACKENDS if b.name == backend_for(path))
    if entry.name == "tensorrt" and not tensorrt_available():
        raise MissingDependencyError("TensorRT", "trt", "on a machine with an NVIDIA GPU (a Jetson: use JetPack's "
                                     "python3-libnvinfer) to run .plan engines")
    try:
        runner_cls = getattr(importlib.import_module(entry.module), entry.runner)
    except ImportError as e:
        raise MnnEdgeError(f"the {entry.name} backend is not available in this build: {e}") from e
    if entry.host_device:
        kwargs["device"] = "cpu" if device == "auto" else device
    return runner_cls(path, **kwargs)


__all__ = ["BACKENDS", "InputSpec", "Runner", "backend_for", "open_runner", "tensorrt_available"]
