"""Which TensorRT / pycuda / cuda-python names exist in which release, from the committed lists.

The lists under ``api_names/`` are extracted by ``tools/extract_trt_api.py`` (by hand; it
downloads the wheels) and read here, so CI checks our API use without TensorRT or a download:

- ``tensorrt-<v>.txt``: identifier strings of the bindings' compiled module (+ ``__init__.py``
  functions). Because the linker tail-merges string literals, ``present`` means "some identifier
  ends with the name" and ``absent`` means "no identifier ends with it". These lists are per
  module, not per class: the per-class truth for the runtime half comes from the lean wheel.
- ``tensorrt-lean-<v>.json``: class -> members, from importing the lean runtime wheel.
- ``pycuda-<v>.txt``, ``cuda-python-<v>.txt``: names from pycuda's sources / cuda-python's module.

``GUARDED`` lists the TensorRT names our code only touches behind a ``hasattr`` capability check
(mnn_edge/runtime/tensorrt/capabilities.py); every other name we use must exist in every supported release.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

NAMES_DIR = Path(__file__).with_name("api_names")
SUPPORTED_TRT = ("8.6.1", "10.3.0", "11.4.0.106")
LEAN = "11.4.0.106"
PYCUDA = "2026.1"
CUDA_PYTHON = "13.4.4"

# Enum members and module names our code uses by name (build.py, tensorrt_backend.py).
ENUM_MEMBERS_USED = {
    "NetworkDefinitionCreationFlag": ("EXPLICIT_BATCH", "STRONGLY_TYPED"),
    "BuilderFlag": ("FP16", "INT8", "GPU_FALLBACK", "TF32"),
    "MemoryPoolType": ("WORKSPACE",),
    "DeviceType": ("DLA",),
    "TensorIOMode": ("INPUT", "OUTPUT"),
    "ILogger": ("ERROR", "INTERNAL_ERROR", "WARNING"),
    "Logger": ("WARNING",),
}
GUARDED = {  # (owner, name): the capability check that guards it
    ("NetworkDefinitionCreationFlag", "EXPLICIT_BATCH"): "Capabilities.explicit_batch_flag",
    ("NetworkDefinitionCreationFlag", "STRONGLY_TYPED"): "Capabilities.strongly_typed",
    ("BuilderFlag", "FP16"): "Capabilities.fp16_flag",
    ("BuilderFlag", "INT8"): "Capabilities.int8_flag",
    ("BuilderFlag", "TF32"): "hasattr(trt.BuilderFlag, 'TF32')",
    ("module", "IProgressMonitor"): "Capabilities.progress_monitor",
    ("IBuilderConfig", "progress_monitor"): "Capabilities.progress_monitor",
    ("IBuilderConfig", "builder_optimization_level"): "Capabilities.optimization_level",
    ("IBuilderConfig", "set_memory_pool_limit"): "Capabilities.memory_pool_limit",
    ("IBuilderConfig", "create_timing_cache"): "Capabilities.timing_cache",
    ("IBuilderConfig", "set_timing_cache"): "Capabilities.timing_cache",
    ("IBuilderConfig", "get_timing_cache"): "Capabilities.timing_cache",
    ("ParserError", "node_name"): "hasattr(err, 'node_name')",
    ("ParserError", "node_operator"): "hasattr(err, 'node_name')",
}


@cache
def _read_list(name: str) -> frozenset[str]:
    path = NAMES_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run tools/extract_trt_api.py")
    return frozenset(line.strip() for line in path.read_text().splitlines() if line.strip() and line[0] != "#")


@cache
def _suffix_index(version: str) -> frozenset[str]:
    """Every suffix of every identifier in a TensorRT list (tail-merged literals hide in longer ones)."""
    names = _read_list(f"tensorrt-{version}.txt")
    return frozenset(n[i:] for n in names if not n.startswith("_Z") for i in range(len(n)))


def trt_has(version: str, name: str) -> bool:
    """True when ``name`` may exist in that release (exact, or as the tail of a longer literal)."""
    return name in _suffix_index(version)


@cache
def lean_members(version: str = LEAN) -> dict[str, frozenset[str]]:
    data = json.loads((NAMES_DIR / f"tensorrt-lean-{version}.json").read_text())
    return {k: frozenset(v) for k, v in data.items() if not k.startswith("_")}


def pycuda_names(version: str = PYCUDA) -> frozenset[str]:
    return _read_list(f"pycuda-{version}.txt")


def cuda_python_names(version: str = CUDA_PYTHON) -> frozenset[str]:
    return _read_list(f"cuda-python-{version}.txt")


def version_key(version: str) -> str:
    """'10.3.0' -> '10.3' (the double's release names)."""
    return ".".join(version.split(".")[:2])


def check_trt_names(used: set[tuple[str, str]], version: str) -> list[str]:
    """Problems with ``used`` (owner, name) pairs against release ``version``; empty = fine.

    Unguarded names must be present; where the lean wheel knows the owner class exactly (the
    runtime half, 11.x), membership is checked per class too.
    """
    problems = []
    lean = lean_members() if version == LEAN else {}
    for owner, name in sorted(used):
        if (owner, name) in GUARDED:
            continue
        if not trt_has(version, name):
            problems.append(f"TensorRT {version} has no '{name}' (used as {owner}.{name})")
        elif owner in lean and owner != "module" and name not in lean[owner]:
            problems.append(f"TensorRT {version}: class {owner} has no member '{name}' (lean wheel)")
        elif owner == "module" and "module" in lean and name not in lean["module"] and name in _RUNTIME_HALF:
            problems.append(f"TensorRT {version}: module has no '{name}' (lean wheel)")
    return problems


# Module-level names the lean runtime wheel must have (the ones the runtime uses).
_RUNTIME_HALF = {"Runtime", "Logger", "ILogger", "TensorIOMode", "nptype", "ICudaEngine", "IExecutionContext"}
