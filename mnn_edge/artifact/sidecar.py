"""The JSON sidecar written beside every plan: ``engines/pose.fp16.plan`` + ``engines/pose.fp16.json``.

A TensorRT plan only runs with the TensorRT version and the GPU (compute capability and model) it
was built for, and it carries none of mnn-edge's metadata (normalisation, output units). The
sidecar records both, so that loading can refuse a mismatched plan with one line that says how
to rebuild it, before TensorRT is asked to deserialise anything.

A plan without its sidecar is refused (an error, not a warning): without it the runtime knows
neither the input normalisation nor which TensorRT/GPU the plan needs. Rebuild, or copy the
``.json`` together with the ``.plan``.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mnn_edge.artifact import ModelMetadata, Precision
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import read_text_file, sha256_file, write_text_atomic

FORMAT = "mnn-edge-engine/1"


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: str  # "8.7" (Orin), "8.6" (Ampere RTX 30xx / A10), ...

    def describe(self) -> str:
        return f"{self.name} (compute capability {self.compute_capability})"


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # -1 for a dynamic axis
    dtype: str  # numpy name: float32, float16, int8, ...


@dataclass(frozen=True)
class EngineSidecar:
    plan_file: str
    plan_sha256: str
    plan_bytes: int
    tensorrt_version: str
    gpu: GpuInfo
    precision: Precision
    typing: str  # "strong" or "weak" (see mnn_edge.runtime.tensorrt.config.Typing)
    dla_core: int | None
    profile: dict  # input name -> {"min": [...], "opt": [...], "max": [...]}
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    metadata: ModelMetadata  # from the ONNX, precision set to the engine's
    source_onnx: str
    source_onnx_sha256: str
    build: dict = field(default_factory=dict)  # BuildConfig.settings() + builder facts
    rebuild_command: str = ""
    format: str = FORMAT

    @property
    def min_batch(self) -> int:
        return min(int(p["min"][0]) for p in self.profile.values())

    @property
    def max_batch(self) -> int:
        return max(int(p["max"][0]) for p in self.profile.values())

    def to_json(self) -> str:
        d = asdict(self)
        d["precision"] = self.precision.value
        d["metadata"] = json.loads(self.metadata.to_json())
        return json.dumps(d, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> EngineSidecar:
        d = json.loads(text)
        if d.get("format") != FORMAT:
            raise ValueError(f"format {d.get('format')!r}, expected {FORMAT!r}")
        d["gpu"] = GpuInfo(**d["gpu"])
        d["precision"] = Precision(d["precision"])
        d["inputs"] = tuple(TensorInfo(t["name"], tuple(t["shape"]), t["dtype"]) for t in d["inputs"])
        d["outputs"] = tuple(TensorInfo(t["name"], tuple(t["shape"]), t["dtype"]) for t in d["outputs"])
        d["metadata"] = ModelMetadata.from_json(json.dumps(d["metadata"]))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def sidecar_path(plan: str | Path) -> Path:
    return Path(plan).with_suffix(".json")


def write_sidecar(sidecar: EngineSidecar, plan: str | Path) -> Path:
    path = sidecar_path(plan)
    write_text_atomic(path, sidecar.to_json())
    return path


def read_sidecar(plan: str | Path) -> EngineSidecar:
    path = sidecar_path(plan)
    if not path.is_file():
        raise MnnEdgeError(f"{plan} has no sidecar {path.name} beside it (it records the TensorRT version, GPU and "
                           f"input normalisation the plan needs); rebuild it with mnn-build, or copy the .json "
                           f"that was written with the plan")
    try:
        return EngineSidecar.from_json(read_text_file(path, "engine sidecar"))
    except (ValueError, KeyError, TypeError) as e:
        raise MnnEdgeError(f"{path} is not an mnn-edge engine sidecar ({e}); rebuild the engine with mnn-build") from e


def rebuild_hint(sidecar: EngineSidecar) -> str:
    src = shlex.quote(sidecar.source_onnx)
    return sidecar.rebuild_command or f"mnn-build {src} --precision {sidecar.precision.value}"


def check_plan_file(plan: Path, sidecar: EngineSidecar) -> None:
    """Refuse a truncated or swapped plan before TensorRT sees it (deserialising garbage can crash)."""
    size = plan.stat().st_size
    if size != sidecar.plan_bytes:
        raise MnnEdgeError(f"{plan} is {size} bytes but was built as {sidecar.plan_bytes} bytes (truncated or "
                           f"replaced?); rebuild it: {rebuild_hint(sidecar)} --force")
    if sha256_file(plan) != sidecar.plan_sha256:
        raise MnnEdgeError(f"{plan} does not match the checksum in its sidecar (corrupted or replaced?); "
                           f"rebuild it: {rebuild_hint(sidecar)} --force")


def check_compatible(sidecar: EngineSidecar, tensorrt_version: str, gpu: GpuInfo) -> None:
    """One clear error when the plan was built for another TensorRT or GPU."""
    problems = []
    if sidecar.tensorrt_version != tensorrt_version:
        problems.append(f"TensorRT {sidecar.tensorrt_version} (this machine has {tensorrt_version})")
    if sidecar.gpu.compute_capability != gpu.compute_capability or sidecar.gpu.name != gpu.name:
        problems.append(f"GPU {sidecar.gpu.describe()} (this machine has {gpu.describe()})")
    if problems:
        raise MnnEdgeError(f"{sidecar.plan_file} was built for {' and '.join(problems)}; TensorRT plans are "
                           f"specific to both, so rebuild it here: {rebuild_hint(sidecar)} --force")
