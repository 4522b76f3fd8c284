"""Load a plan: the sidecar's checks, a CUDA context, deserialisation. Nothing here runs the engine.

The order matters for the errors a user sees: a plan built for another TensorRT version or GPU,
or truncated (size/sha256 differ from its sidecar), is refused with the rebuild command before
TensorRT reads a byte of it; ``Runtime.deserialize_cuda_engine`` returns None (not an exception)
when it still cannot ("The ICudaEngine, or None if it could not be deserialized", Runtime docs),
and None becomes one clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnn_edge.artifact.sidecar import (
    EngineSidecar,
    GpuInfo,
    check_compatible,
    check_plan_file,
    read_sidecar,
    rebuild_hint,
)
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import require_file
from mnn_edge.runtime.tensorrt.capabilities import import_tensorrt
from mnn_edge.runtime.tensorrt.cuda_memory import CudaSession, open_cuda


def machine_gpu(cuda: CudaSession) -> GpuInfo:
    major, minor = cuda.compute_capability()
    return GpuInfo(cuda.gpu_name(), f"{major}.{minor}")


@dataclass
class LoadedEngine:
    """A deserialised engine with the CUDA session it lives in; :meth:`close` releases both."""

    path: Path
    sidecar: EngineSidecar
    trt: Any  # the tensorrt module
    cuda: CudaSession
    gpu: GpuInfo
    logger: Any = None
    runtime: Any = None
    engine: Any = None

    def close(self) -> None:
        """Engine, then runtime (with this CUDA context current), then the context and its buffers."""
        if self.cuda is None:
            return
        try:
            with self.cuda.active():
                self.engine = None
                self.runtime = None
        finally:
            self.cuda.close()
            self.cuda = None


def load_engine(path: str | Path, device: int = 0, cuda_backend: str | None = None) -> LoadedEngine:
    path = require_file(path, "TensorRT plan")
    trt = import_tensorrt()
    sidecar = read_sidecar(path)
    check_plan_file(path, sidecar)
    cuda = open_cuda(device, cuda_backend)
    loaded = LoadedEngine(path, sidecar, trt, cuda, machine_gpu(cuda))
    try:
        check_compatible(sidecar, str(trt.__version__), loaded.gpu)
        loaded.logger = trt.Logger(trt.Logger.WARNING)
        with cuda.active():
            loaded.runtime = trt.Runtime(loaded.logger)
            if sidecar.dla_core is not None:
                loaded.runtime.DLA_core = sidecar.dla_core  # Runtime docs: the DLA core the engine executes on
            loaded.engine = loaded.runtime.deserialize_cuda_engine(path.read_bytes())
        if loaded.engine is None:
            raise MnnEdgeError(f"TensorRT could not deserialise {path} (see its log above); rebuild it: "
                               f"{rebuild_hint(sidecar)} --force")
    except BaseException:
        loaded.close()
        raise
    return loaded
