"""Import TensorRT lazily and describe what the installed version can do — by ``hasattr``, never by
comparing version strings, so 8.6, 10.x and 11.x take the right path and a future release with
the same API just works.

Facts these checks rest on (read in the real bindings; the name lists are committed under
``mnn_edge/runtime/tensorrt/api_names/`` and checked by tests/test_api_surface.py):

- 8.6 has no ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` and networks need
  ``EXPLICIT_BATCH`` for the ONNX parser.
- 10.x has ``STRONGLY_TYPED``, ``BuilderFlag.FP16``/``INT8`` and ``IProgressMonitor``;
  ``EXPLICIT_BATCH`` is "[DEPRECATED] Ignored because networks are always explicit batch in
  TensorRT 10.0" (10.3 docstring), so setting it wherever it exists is right for 8.6 and harmless
  on 10.x. 11.x no longer has it.
- 11.x has no ``BuilderFlag.FP16``/``INT8`` (its BuilderFlag members, read from the lean runtime
  wheel by import) and documents ``STRONGLY_TYPED`` as "Deprecated in TensorRT 11.0. Strongly typed
  mode is always enabled": precision comes from the graph alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from mnn_edge.errors import MissingDependencyError

INSTALL_HINT = ("on a machine with an NVIDIA GPU (on a Jetson use JetPack's python3-libnvinfer; "
                "on x86 pip install tensorrt)")


def import_tensorrt() -> ModuleType:
    """The ``tensorrt`` module, or one clear line saying what to install."""
    try:
        import tensorrt
    except ImportError as e:
        raise MissingDependencyError("TensorRT", "trt", INSTALL_HINT) from e
    return tensorrt


@dataclass(frozen=True)
class Capabilities:
    version: str
    strongly_typed: bool  # NetworkDefinitionCreationFlag.STRONGLY_TYPED exists (9.x+)
    strongly_typed_only: bool  # no precision flags at all (11.x)
    explicit_batch_flag: bool  # NetworkDefinitionCreationFlag.EXPLICIT_BATCH exists: set it (8.x needs it)
    fp16_flag: bool
    int8_flag: bool
    progress_monitor: bool  # IProgressMonitor + IBuilderConfig.progress_monitor (10.0+)
    memory_pool_limit: bool  # IBuilderConfig.set_memory_pool_limit (8.4+)
    timing_cache: bool  # IBuilderConfig.create_timing_cache / set_timing_cache
    optimization_level: bool  # IBuilderConfig.builder_optimization_level (8.6+)

    @classmethod
    def of(cls, trt: ModuleType) -> Capabilities:
        flags = trt.NetworkDefinitionCreationFlag
        bflags = trt.BuilderFlag
        strongly_typed_only = not hasattr(bflags, "FP16") and not hasattr(bflags, "INT8")
        return cls(
            version=str(getattr(trt, "__version__", "unknown")),
            strongly_typed=hasattr(flags, "STRONGLY_TYPED"),
            strongly_typed_only=strongly_typed_only,
            explicit_batch_flag=hasattr(flags, "EXPLICIT_BATCH"),
            fp16_flag=hasattr(bflags, "FP16"),
            int8_flag=hasattr(bflags, "INT8"),
            progress_monitor=hasattr(trt, "IProgressMonitor") and hasattr(trt.IBuilderConfig, "progress_monitor"),
            memory_pool_limit=hasattr(trt.IBuilderConfig, "set_memory_pool_limit"),
            timing_cache=hasattr(trt.IBuilderConfig, "create_timing_cache")
            and hasattr(trt.IBuilderConfig, "set_timing_cache"),
            optimization_level=hasattr(trt.IBuilderConfig, "builder_optimization_level"),
        )
