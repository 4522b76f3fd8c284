"""What one engine build needs, as a frozen dataclass; target recipes (``engines/*.toml``) fill it.

A recipe is a small TOML file with a ``[build]`` table whose keys are the field names below
(``precision = "fp16"``, ``max_batch = 4``, ...). Command-line flags override recipe values, and
the recipe overrides the defaults, so ``mnn-build --recipe engines/orin-nano.toml pose.onnx`` is
the whole command on a Jetson.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import Enum
from pathlib import Path

from mnn_edge.artifact import Precision
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import read_toml


class Typing(str, Enum):
    """How precision reaches TensorRT.

    STRONG: the ONNX graph's own types decide (an FP16 graph, Q/DQ for INT8); the only mode of
    TensorRT 11. WEAK: an FP32 graph plus builder precision flags (TensorRT 8.6/10.x, and DLA on
    10.x). AUTO picks per build from the TensorRT capabilities, the graph and the DLA setting.
    """

    AUTO = "auto"
    STRONG = "strong"
    WEAK = "weak"


MIB = 1 << 20


@dataclass(frozen=True)
class BuildConfig:
    precision: Precision | None = None  # None: the source graph's own precision (its ops/initialisers)
    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 1
    workspace_mib: int = 1024  # IBuilderConfig memory pool limit for WORKSPACE
    timing_cache: Path | None = Path("engines/timing.cache")  # reused across builds; None = off
    dla_core: int | None = None  # Jetson AGX/NX: build for this DLA core (GPU fallback below)
    gpu_fallback: bool = True  # layers DLA cannot run go to the GPU instead of failing the build
    typing: Typing = Typing.AUTO
    optimization_level: int | None = None  # builder_optimization_level 0..5; None = TensorRT's default (3)
    tf32: bool = False  # fp32 engines: allow TF32 (on by default in TensorRT; off here = exact FP32 math)
    out_dir: Path = Path("engines")
    force: bool = False  # overwrite an existing plan + sidecar
    progress: bool = True  # tqdm bar from IProgressMonitor where TensorRT has it (10.0+)
    recipe: str = ""  # name of the recipe it came from, recorded in the sidecar

    def __post_init__(self) -> None:
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise MnnEdgeError(f"batch profile must satisfy 1 <= min <= opt <= max, got min={self.min_batch} "
                               f"opt={self.opt_batch} max={self.max_batch}")
        if self.workspace_mib < 1:
            raise MnnEdgeError(f"workspace must be at least 1 MiB, got {self.workspace_mib}")
        if self.dla_core is not None and self.dla_core < 0:
            raise MnnEdgeError(f"DLA core must be >= 0, got {self.dla_core}")
        if self.optimization_level is not None and not 0 <= self.optimization_level <= 5:
            raise MnnEdgeError(f"builder optimization level must be 0..5, got {self.optimization_level}")

    @property
    def workspace_bytes(self) -> int:
        return self.workspace_mib * MIB

    def with_(self, **changes) -> BuildConfig:
        return replace(self, **changes)

    def settings(self) -> dict:
        """The build settings as plain JSON values (recorded in the sidecar)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.value if isinstance(v, Enum) else str(v) if isinstance(v, Path) else v
        return out


def _coerce(name: str, value, path: Path):
    """Turn one TOML value into the field's type, with an error naming the recipe and key."""
    try:
        if name == "precision":
            return Precision(value)
        if name == "typing":
            return Typing(value)
        if name in ("timing_cache", "out_dir"):
            if not isinstance(value, str):  # out_dir = 5 was a TypeError traceback from Path()
                raise ValueError(f"expected a path in quotes, got {value!r}")
            return None if value == "" else Path(value)
        if name in ("min_batch", "opt_batch", "max_batch", "workspace_mib", "dla_core", "optimization_level"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"expected an integer, got {value!r}")
            return value
        if name in ("gpu_fallback", "force", "progress", "tf32"):
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r}")
            return value
    except ValueError as e:
        raise MnnEdgeError(f"recipe {path}: bad value for '{name}': {e}") from e
    return value


def load_recipe(path: str | Path) -> dict:
    """Read a recipe's ``[build]`` table as BuildConfig keyword arguments (unknown keys are an error)."""
    path = Path(path)
    data = read_toml(path, "recipe")
    table = data.get("build")
    if not isinstance(table, dict):
        raise MnnEdgeError(f"recipe {path} has no [build] table")
    known = {f.name for f in fields(BuildConfig)} - {"force", "recipe"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise MnnEdgeError(f"recipe {path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    kwargs = {k: _coerce(k, v, path) for k, v in table.items()}
    kwargs["recipe"] = str(data.get("name", path.stem))
    return kwargs


def config_from_recipe(path: str | Path, **overrides) -> BuildConfig:
    """A BuildConfig from a recipe, with ``overrides`` (not None) taking precedence."""
    kwargs = load_recipe(path)
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    return BuildConfig(**kwargs)
