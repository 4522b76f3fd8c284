"""FP32 exports -> FP16 and INT8 (both flavours) artifacts, range tables and compat reports.

The one entry point others call (``mnn-export --int8/--fp16``, ``bench/quantization.py``)::

    from mnn_edge.quantize.variants import Calibration, QuantizeConfig, quantize_exports
    result = quantize_exports({"pose": Path("export/pose.onnx"), "mnn": Path("export/mnn.onnx")},
                              Path("export"), QuantizeConfig(int8=True, fp16=True,
                              calibration=Calibration(synthetic=64)))
    result.artifacts  # {"pose.int8.onnx": Path, "pose.int8-trt.onnx": Path, "pose.fp16.onnx": Path, ...}

Each model is pre-processed once (BatchNorm folding, shape inference), calibrated once (one pass
over the images) and the one range table feeds both INT8 flavours.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from mnn_edge.artifact import INPUT_SIZE, ArtifactName, Flavour, ModelMetadata, Precision
from mnn_edge.artifact.onnx_io import get_metadata
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import refuse_existing
from mnn_edge.quantize import calibration as cal
from mnn_edge.quantize.calibration import CalibMethod, RangeTable
from mnn_edge.quantize.fp16 import convert_fp16
from mnn_edge.quantize.qdq import QdqConfig, check_not_quantized, prepare_fp32, quantize_qdq
from mnn_edge.runtime.tensorrt.compat import check_trt_compat, format_report


@dataclass(frozen=True)
class Calibration:
    """Where calibration images come from: exactly one of ``folder``, ``synthetic``, ``random``."""

    folder: Path | None = None
    fmt: str = "synthetic"  # dataset format of ``folder`` (mnn_edge.data.sample.FORMATS)
    limit: int | None = None  # at most this many images from ``folder``
    subset: str | None = None  # train | heldout side of ``folder``'s person-disjoint split
    synthetic: int | None = None  # render this many synthetic faces
    synthetic_dir: Path | None = None  # keep the rendered faces here (default: a temporary folder)
    random: int | None = None  # noise inputs: smoke tests only
    seed: int = 1234

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.folder, self.synthetic, self.random)) != 1:
            raise MnnEdgeError("choose one calibration source: --calib DIR or --calib-synthetic N "
                               "(or --ranges to reuse a range table)")
        for n, flag in ((self.synthetic, "--calib-synthetic"), (self.random, "--calib-random")):
            if n is not None:  # before the export and hours of rendering, not after
                cal.check_inputs_fit(n, INPUT_SIZE, flag)

    def describe(self) -> str:
        if self.folder is not None:
            return (f"{self.folder} ({self.fmt}{f', {self.subset}' if self.subset else ''}"
                    f"{f', first {self.limit}' if self.limit else ''})")
        if self.synthetic is not None:
            return f"synthetic {self.synthetic} (seed {self.seed})"
        return f"random noise {self.random} (seed {self.seed})"

    def inputs(self, meta: ModelMetadata, progress: bool = True) -> np.ndarray:
        if self.folder is not None:
            return cal.inputs_from_dataset(self.folder, self.fmt, meta, self.limit, progress, self.subset)
        if self.synthetic is not None:
            return cal.inputs_from_synthetic(self.synthetic, meta, self.seed, self.synthetic_dir, progress)
        if self.random <= 0:
            raise MnnEdgeError("the number of random calibration inputs must be positive")
        cal.check_count(self.random, "random calibration")
        return cal.random_inputs(self.random, meta.input_size, self.seed)


@dataclass(frozen=True)
class QuantizeConfig:
    int8: bool = True
    fp16: bool = False
    method: CalibMethod = cal.DEFAULT_METHOD
    calibration: Calibration | None = None  # None: every model needs a table in ``ranges``
    ranges: tuple[Path, ...] = ()  # reuse: range-table files or folders holding <model>.ranges.json
    ranges_dir: Path = Path("calibration")  # where new range tables are written
    flavours: tuple[Flavour, ...] = (Flavour.CPU, Flavour.TRT)
    extra_float_nodes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # model -> node names
    force: bool = False
    progress: bool = True

    def check(self) -> None:
        """The calibration source, checked once: INT8 needs images or range tables to reuse."""
        if self.int8 and not self.ranges and self.calibration is None:
            raise MnnEdgeError(NEEDS_IMAGES)


NEEDS_IMAGES = ("--int8 needs calibration images: --calib DIR [--calib-format FMT], --calib-synthetic N, "
                "or --ranges calibration/ to reuse range tables")


class CalibrationInputs:
    """Calibration inputs, made once per distinct preprocessing and shared by every step that needs
    them (calibration, the sensitivity search)."""

    def __init__(self, cfg: QuantizeConfig):
        self.cfg = cfg
        self._cache: dict[tuple, np.ndarray] = {}

    def __call__(self, meta: ModelMetadata, purpose: str = NEEDS_IMAGES) -> np.ndarray:
        if self.cfg.calibration is None:
            raise MnnEdgeError(purpose)
        key = (meta.input_size, meta.mean, meta.std, meta.channel_order)
        if key not in self._cache:
            self._cache[key] = self.cfg.calibration.inputs(meta, self.cfg.progress)
        return self._cache[key]


def range_table(model: str, meta: ModelMetadata, prepared: Path, cfg: QuantizeConfig,
                inputs: CalibrationInputs) -> tuple[RangeTable, Path]:
    """Calibrate-or-reuse, the one place: a ``--ranges`` table (checked against this checkpoint), or
    ranges measured on ``inputs`` and saved to ``cfg.ranges_dir``; the table and its file."""
    if cfg.ranges:
        return _reuse_table(model, meta, cfg), find_table(model, cfg.ranges)
    table = cal.calibrate(prepared, inputs(meta), cfg.method, model=model, checkpoint_sha256=meta.checkpoint_sha256,
                          source=cfg.calibration.describe(), progress=cfg.progress)
    path = cal.ranges_path(cfg.ranges_dir, model)
    table.save(path)
    return table, path


@dataclass
class QuantizeResult:
    artifacts: dict[str, Path] = field(default_factory=dict)  # file name -> path
    tables: dict[str, Path] = field(default_factory=dict)  # model -> range table written or reused
    compat: dict[str, list[str]] = field(default_factory=dict)  # file name -> TensorRT problems


def planned_outputs(models: list[str], out_dir: Path, cfg: QuantizeConfig) -> list[Path]:
    """Every file ``quantize_exports`` would write (for the refuse-to-overwrite check)."""
    paths = []
    for m in models:
        if cfg.fp16:
            paths.append(out_dir / ArtifactName.for_model(m, Precision.FP16).onnx())
        if cfg.int8:
            paths += [out_dir / ArtifactName.for_model(m, Precision.INT8, f).onnx() for f in cfg.flavours]
            if not cfg.ranges:
                paths.append(cal.ranges_path(cfg.ranges_dir, m))
    return paths


def find_table(model: str, ranges: tuple[Path, ...]) -> Path:
    """The range table for ``model`` among ``--ranges`` files/folders."""
    for r in ranges:
        r = Path(r)
        if r.is_dir() and cal.ranges_path(r, model).is_file():
            return cal.ranges_path(r, model)
        if r.is_file() and RangeTable.load(r).model == model:
            return r
    raise MnnEdgeError(f"no range table for '{model}' in {', '.join(map(str, ranges))} "
                       f"(expected {model}.ranges.json)")


def load_fp32(path: Path) -> ModelMetadata:
    if not path.is_file():
        raise MnnEdgeError(f"ONNX model not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf DecodeError and friends
        raise MnnEdgeError(f"{path} is not an ONNX model: {str(e).splitlines()[0] if str(e) else type(e).__name__}") \
            from e
    check_not_quantized(model, str(path))
    meta = get_metadata(model)
    if meta is None:
        raise MnnEdgeError(f"{path} has no mnn-edge metadata; export it with mnn-export")
    return meta


def quantize_exports(fp32: Mapping[str, Path], out_dir: Path, cfg: QuantizeConfig) -> QuantizeResult:
    """Write the FP16 / INT8 artifacts of every FP32 export in ``fp32`` (stem -> path) into ``out_dir``."""
    out_dir = Path(out_dir)
    cfg.check()
    metas = {m: load_fp32(Path(p)) for m, p in fp32.items()}
    refuse_existing(planned_outputs(list(fp32), out_dir, cfg), cfg.force)
    if cfg.int8 and cfg.ranges:  # every reused table fits its model, before anything is written
        for m in fp32:
            _reuse_table(m, metas[m], cfg)
    result = QuantizeResult()
    try:
        _write_all(fp32, metas, out_dir, cfg, result)
    except BaseException:
        # All or nothing: a failure on the second model must not leave the first one's files
        # behind as if the run had succeeded (each file is atomic; the set should be too).
        for path in [*result.artifacts.values(), *(result.tables.values() if not cfg.ranges else ())]:
            Path(path).unlink(missing_ok=True)
        raise
    return result


def _write_all(fp32, metas, out_dir: Path, cfg: QuantizeConfig, result: QuantizeResult) -> None:
    inputs = CalibrationInputs(cfg)
    with tempfile.TemporaryDirectory(prefix="mnn-quant-") as tmp:
        for m, src in fp32.items():
            meta = metas[m]
            prepared = prepare_fp32(src, Path(tmp) / f"{m}.prepared.onnx")
            if cfg.fp16:
                path = out_dir / ArtifactName.for_model(m, Precision.FP16).onnx()
                result.artifacts[path.name] = convert_fp16(prepared, path)
            if not cfg.int8:
                continue
            table, result.tables[m] = range_table(m, meta, prepared, cfg, inputs)
            for flavour in cfg.flavours:
                path = out_dir / ArtifactName.for_model(m, Precision.INT8, flavour).onnx()
                result.artifacts[path.name] = path
                quantize_qdq(prepared, path, table, QdqConfig(flavour, extra_float_nodes=tuple(
                    cfg.extra_float_nodes.get(m, ()))))
        for name, path in result.artifacts.items():
            result.compat[name] = check_trt_compat(path)


def _reuse_table(model: str, meta: ModelMetadata, cfg: QuantizeConfig) -> RangeTable:
    table = RangeTable.load(find_table(model, cfg.ranges))
    if table.checkpoint_sha256 != meta.checkpoint_sha256:
        raise MnnEdgeError(f"the range table for '{model}' was calibrated for checkpoint "
                           f"{table.checkpoint_sha256[:12] or '(random weights)'}, this model is "
                           f"{meta.checkpoint_sha256[:12] or '(random weights)'}; calibrate again")
    return table


def compat_lines(result: QuantizeResult) -> list[str]:
    """One line per artifact; the CPU flavour is not meant for TensorRT and says so."""
    lines = []
    for name, problems in result.compat.items():
        if ArtifactName.parse(name).flavour is Flavour.CPU:
            lines.append(f"tensorrt-compat {name}: CPU flavour (u8 activations, int32 biases), not for TensorRT; "
                         f"build engines from the .int8-trt.onnx file")
        else:
            lines.append(("" if not problems else "WARNING: ") + format_report(name, problems))
    return lines


def print_summary(result: QuantizeResult, file=None) -> None:
    file = file or sys.stdout
    for model, path in result.tables.items():
        print(f"ranges {model}: {path}", file=file)
    for path in result.artifacts.values():
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", file=file)
    for line in compat_lines(result):
        print(line, file=file)


def drift_lines(fp32: Path, artifacts: list[Path], batches: tuple[int, ...] = (1, 4),
                allow_drift: bool = False) -> list[str]:
    """Run each artifact next to its FP32 model (ONNX Runtime, CPU) and report the largest drift.

    Fails loudly when an artifact does not run, returns other shapes or non-finite values, or drifts
    beyond ``compare.DRIFT_LIMIT`` (mean angle or landmark difference): such an artifact is removed
    and the run fails, unless ``allow_drift`` keeps it with a warning.
    """
    from mnn_edge.runtime.compare import DRIFT_LIMIT, compare_outputs
    from mnn_edge.runtime.inputs import random_input
    from mnn_edge.runtime.onnxruntime_backend import OnnxRuntimeRunner

    lines, too_far = [], []
    with OnnxRuntimeRunner(fp32) as ref_runner:
        refs = {b: ref_runner.infer(random_input(b, seed=100 + b)) for b in batches}
    for path in artifacts:
        worst: dict[str, float] = {}
        within, mean = True, (0.0, 0.0)  # the worst batch's mean angle / landmark difference
        with OnnxRuntimeRunner(path) as runner:
            for b in batches:
                diff = compare_outputs(refs[b], runner.infer(random_input(b, seed=100 + b)),
                                       f"{path.name} (batch {b})")
                for name, v in diff.max_abs.items():
                    worst[name] = max(worst.get(name, 0.0), v)
                within = within and diff.within(DRIFT_LIMIT)
                mean = (max(mean[0], diff.pose_deg_mean), max(mean[1], diff.landmark_px_mean or 0.0))
        parts = "; ".join(f"{k} {v:.3g}" for k, v in worst.items())
        sizes = ", ".join(map(str, batches))
        lines.append(f"drift {path.name} vs {fp32.name} (noise inputs, batch {sizes}, max abs): {parts}")
        if within:
            continue
        limit = (f"mean {mean[0]:.2f} deg / {mean[1]:.2f} px, limit {DRIFT_LIMIT.pose_deg} deg / "
                 f"{DRIFT_LIMIT.landmark_px} px")
        if allow_drift:
            lines.append(f"WARNING: {path.name} drifts beyond the limit ({limit}); kept by --allow-drift")
        else:
            too_far.append(f"{path.name} ({limit})")
            path.unlink(missing_ok=True)
    if too_far:
        raise MnnEdgeError(f"{'; '.join(too_far)}: drifts too far from {fp32.name}, removed. Check the range "
                           "tables (recalibrate), or pass --allow-drift to keep them")
    return lines
