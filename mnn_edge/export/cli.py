"""``mnn-export``: checkpoint -> ONNX artifacts, each checked against PyTorch before it is kept.

With ``--int8`` / ``--fp16`` the same run also writes the quantized variants of what it just
exported (or of existing FP32 files given with ``--onnx``): see :mod:`mnn_edge.quantize.pipeline`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from mnn_edge.artifact import (
    DEFAULT_MEAN,
    DEFAULT_STD,
    MODEL_NAMES,
    ArtifactName,
    ModelKind,
    Precision,
    check_num_landmarks,
    landmark_scheme_for,
)
from mnn_edge.checkpoint import Checkpoint, default_checkpoint_path, load_checkpoint
from mnn_edge.cli_util import run_cli
from mnn_edge.data.readers import SUBSETS
from mnn_edge.data.sample import FORMATS
from mnn_edge.errors import MnnEdgeError
from mnn_edge.export.onnx_export import export_onnx
from mnn_edge.export.parity import FP32_TOLERANCE, compare, format_results
from mnn_edge.fileio import atomic_path, claim_output, refuse_existing
from mnn_edge.model.deploy import deploy_module
from mnn_edge.model.network import MNN, init_weights
from mnn_edge.quantize.calibration import DEFAULT_METHOD, CalibMethod
from mnn_edge.quantize.pipeline import Calibration, QuantizeConfig
from mnn_edge.runtime.inputs import random_input

PARITY_BATCHES = (1, 4)


@dataclass(frozen=True)
class ExportConfig:
    checkpoint: Path | None  # None with random_init
    random_init: bool
    out: Path
    num_landmarks: int | None  # None: take L from the checkpoint
    keep_heatmaps: bool  # full model also outputs the (N, L, 256, 256) softmax maps
    force: bool  # overwrite existing artifacts
    quantize: QuantizeConfig | None = None  # --int8 / --fp16
    onnx: tuple[Path, ...] = ()  # quantize these FP32 exports instead of exporting a checkpoint
    sensitivity: bool = False  # --int8 --sensitivity: per-group INT8 effect table (and fallback choice)
    max_mae_increase: float | None = None  # degrees; with --sensitivity, choose float groups to meet it
    sensitivity_images: int = 8
    engine: tuple[Precision, ...] = ()  # --engine: also build TensorRT plans of these precisions
    engine_recipe: Path | None = None  # engines/*.toml target recipe for those builds
    engines_dir: Path | None = None  # where those plans (and the timing cache) go; None: the recipe's choice


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mnn-export",
        description="Export an MNN checkpoint to ONNX: pose.onnx (encoder-only, outputs pose) and mnn.onnx "
                    "(full model: pose, pose_proj, landmarks decoded in-graph to crop pixels, visibility). "
                    "Both have a dynamic batch axis and carry their input spec and normalisation as "
                    "metadata. Each is checked against PyTorch (ONNX Runtime, batch 1 and 4) before it is kept.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", type=Path, help="mnn-edge .pt checkpoint (default: the shipped starter model)")
    src.add_argument("--random-init", action="store_true",
                     help="random weights, for smoke tests only: the artifacts predict nothing meaningful")
    p.add_argument("--out", type=Path, default=Path("export"), help="output folder")
    p.add_argument("--landmarks", "-L", type=int, default=None,
                   help="number of landmarks; must match --checkpoint (default 68 for random init)")
    p.add_argument("--keep-heatmaps", action="store_true",
                   help="debug: the full model also outputs its raw heatmaps (17.8 MB per face)")
    p.add_argument("--force", action="store_true", help="overwrite artifacts that already exist")
    q = p.add_argument_group(
        "FP16 / INT8 variants",
        "Written beside the FP32 files: <model>.fp16.onnx, <model>.int8.onnx (ONNX Runtime CPU flavour: u8 "
        "activations, s8 per-channel weights) and <model>.int8-trt.onnx (TensorRT flavour: symmetric s8, zero "
        "point 0, float biases). Heatmap softmax, landmark decode, visibility pooling and the pose heads stay "
        "in float. Calibration images go through the inference crop and normalisation.")
    q.add_argument("--int8", action="store_true", help="also write both INT8 flavours (needs a calibration "
                   "source: --calib, --calib-synthetic or --ranges)")
    q.add_argument("--fp16", action="store_true", help="also write <model>.fp16.onnx (float16 weights and "
                   "compute, float32 inputs/outputs; for accuracy checks with ONNX Runtime)")
    q.add_argument("--onnx", type=Path, nargs="+", default=(), metavar="FP32.onnx",
                   help="quantize these existing FP32 exports (e.g. export/pose.onnx export/mnn.onnx) instead "
                        "of exporting a checkpoint; outputs go to --out")
    q.add_argument("--calib", type=Path, metavar="DIR", help="calibration dataset folder")
    q.add_argument("--calib-format", default="synthetic", choices=FORMATS, help="dataset format of --calib")
    q.add_argument("--calib-limit", type=int, default=None, metavar="N", help="use at most N images of --calib")
    q.add_argument("--calib-subset", choices=SUBSETS, default=None,
                   help="calibrate on one side of --calib's person-disjoint split (keypoints-csv): train keeps the "
                        "held-out people for evaluation")
    q.add_argument("--calib-synthetic", type=int, metavar="N",
                   help="render N synthetic faces to calibrate with (64-256 is a good range)")
    q.add_argument("--calib-synthetic-dir", type=Path, metavar="DIR",
                   help="keep the rendered calibration faces here (unset: a temporary folder)")
    q.add_argument("--calib-random", type=int, metavar="N", help=argparse.SUPPRESS)  # noise: smoke tests only
    q.add_argument("--calib-method", choices=[m.value for m in CalibMethod], default=DEFAULT_METHOD.value,
                   help="how a tensor's range is chosen: percentile (99.999%% of |x|), minmax, or entropy (KL "
                        "threshold; clipped too much here: see docs/QUANTIZATION.md)")
    q.add_argument("--ranges", type=Path, nargs="+", default=(), metavar="JSON|DIR",
                   help="reuse range tables (<model>.ranges.json files, or the folder holding them) instead of "
                        "calibrating; they must come from the same checkpoint")
    q.add_argument("--ranges-dir", type=Path, default=Path("calibration"),
                   help="where new range tables are written (<model>.ranges.json)")
    q.add_argument("--sensitivity", action="store_true",
                   help="with --int8: quantize one node group (a network stage) at a time and write a table of "
                        "each group's effect on pose MAE and landmark NME against FP32 (sensitivity.json/.md)")
    q.add_argument("--max-mae-increase", type=float, default=None, metavar="DEG",
                   help="with --sensitivity: keep the most sensitive groups in float until the INT8 pose MAE "
                        "against FP32 is at most DEG degrees (e.g. 0.5)")
    q.add_argument("--sensitivity-images", type=int, default=8, metavar="N",
                   help="with --sensitivity: measure on the first N calibration images")
    q.add_argument("--no-progress", action="store_true", help="no progress bars")
    e = p.add_argument_group(
        "TensorRT engines (a machine with an NVIDIA GPU and TensorRT)",
        "Export and build in one go: after the ONNX files are written, build engines/<model>.<precision>.plan "
        "(+ JSON sidecar) from them, as mnn-build does. int8 needs --int8 (the *.int8-trt.onnx Q/DQ graph).")
    e.add_argument("--engine", nargs="+", choices=[x.value for x in Precision], default=(), metavar="PRECISION",
                   help="build TensorRT plans of these precisions: fp32 fp16 int8")
    e.add_argument("--engine-recipe", type=Path, default=None, metavar="TOML",
                   help="target recipe for the builds (e.g. engines/orin-nano.toml); see mnn-build --help")
    e.add_argument("--engines-dir", type=Path, default=None,
                   help="where the plans and timing cache go (default: the recipe's out_dir, else engines/)")
    return p


def quantize_config_from_args(args: argparse.Namespace) -> QuantizeConfig | None:
    if args.sensitivity and not args.int8:
        raise MnnEdgeError("--sensitivity only applies with --int8")
    if not (args.int8 or args.fp16):
        for flag, value in (("--calib", args.calib), ("--calib-synthetic", args.calib_synthetic),
                            ("--ranges", args.ranges), ("--onnx", args.onnx)):
            if value:
                raise MnnEdgeError(f"{flag} only applies with --int8 or --fp16")
    if args.calib_subset is not None and args.calib is None:
        raise MnnEdgeError("--calib-subset applies to --calib DIR")
        return None
    sources = [x is not None for x in (args.calib, args.calib_synthetic, args.calib_random)]
    if sum(sources) > 1:
        raise MnnEdgeError("choose one calibration source: --calib DIR or --calib-synthetic N")
    if args.int8 and not args.ranges and not any(sources):
        raise MnnEdgeError("--int8 needs calibration images: --calib DIR [--calib-format FMT], "
                           "--calib-synthetic N, or --ranges calibration/ to reuse range tables")
    if args.sensitivity and args.sensitivity_images < 1:
        raise MnnEdgeError("--sensitivity-images must be at least 1")
    if args.max_mae_increase is not None and not args.sensitivity:
        raise MnnEdgeError("--max-mae-increase chooses the fallback set from --sensitivity; pass both")
    calibration = None
    if any(sources):
        calibration = Calibration(folder=args.calib, fmt=args.calib_format, limit=args.calib_limit,
                                  subset=args.calib_subset,
                                  synthetic=args.calib_synthetic, synthetic_dir=args.calib_synthetic_dir,
                                  random=args.calib_random)
    return QuantizeConfig(int8=args.int8, fp16=args.fp16, method=CalibMethod(args.calib_method),
                          calibration=calibration, ranges=tuple(args.ranges), ranges_dir=args.ranges_dir,
                          force=args.force, progress=not args.no_progress)


def config_from_args(args: argparse.Namespace) -> ExportConfig:
    if args.landmarks is not None:
        check_num_landmarks(args.landmarks)
    quantize = quantize_config_from_args(args)
    ckpt = args.checkpoint
    if args.onnx and (args.checkpoint or args.random_init):
        raise MnnEdgeError("--onnx quantizes existing exports; it does not take --checkpoint or --random-init")
    if not args.random_init and ckpt is None and not args.onnx:
        ckpt = default_checkpoint_path()
        if not ckpt.is_file():
            raise MnnEdgeError("no starter checkpoint is installed; pass --checkpoint PATH or --random-init")
    return ExportConfig(checkpoint=ckpt, random_init=args.random_init, out=args.out, num_landmarks=args.landmarks,
                        keep_heatmaps=args.keep_heatmaps, force=args.force, quantize=quantize,
                        onnx=tuple(args.onnx), sensitivity=args.sensitivity, max_mae_increase=args.max_mae_increase,
                        sensitivity_images=args.sensitivity_images, engine=engine_precisions(args),
                        engine_recipe=args.engine_recipe, engines_dir=args.engines_dir)


def engine_precisions(args: argparse.Namespace) -> tuple[Precision, ...]:
    """Validate --engine before any slow work: TensorRT present, int8 only with its Q/DQ artifact."""
    wanted = tuple(Precision(p) for p in args.engine)
    if args.engine_recipe is not None and not wanted:
        raise MnnEdgeError("--engine-recipe only applies with --engine")
    if not wanted:
        return wanted
    if args.onnx:
        raise MnnEdgeError("--engine builds what this run exports; for existing ONNX files run mnn-build")
    if Precision.INT8 in wanted and not args.int8:
        raise MnnEdgeError("--engine int8 builds from <model>.int8-trt.onnx: add --int8 (and a calibration source)")
    from mnn_edge.runtime.tensorrt.capabilities import import_tensorrt

    import_tensorrt()  # one line naming the extra to install, before the export runs
    return wanted


def load_source(cfg: ExportConfig) -> Checkpoint:
    if cfg.random_init:
        print("WARNING: --random-init: exporting RANDOM WEIGHTS. These artifacts are for smoke tests and "
              "benchmarks only; their predictions mean nothing.", file=sys.stderr)
        n = 68 if cfg.num_landmarks is None else cfg.num_landmarks
        model = MNN(n)
        init_weights(model, seed=0)
        return Checkpoint(model=model.eval(), mean=DEFAULT_MEAN, std=DEFAULT_STD,
                          landmark_scheme=landmark_scheme_for(n))
    return load_checkpoint(cfg.checkpoint, cfg.num_landmarks)


def check_parity(ckpt: Checkpoint, kind: ModelKind, path: Path, keep_heatmaps: bool,
                 name: str | None = None) -> list[str]:
    """Run the ONNX file and PyTorch on the same random batches; raise if any output drifts.

    ``name``: what the lines call the file (the final name while ``path`` is still a temporary)."""
    from mnn_edge.runtime.onnxruntime_backend import OnnxRuntimeRunner

    module = deploy_module(ckpt.model, kind, keep_heatmaps)
    lines = []
    with OnnxRuntimeRunner(path) as runner:
        for batch in PARITY_BATCHES:
            x = random_input(batch, seed=batch)
            with torch.inference_mode():
                ref = dict(zip(module.output_names, (t.numpy() for t in module(torch.from_numpy(x)))))
            results = compare(ref, runner.infer(x), FP32_TOLERANCE)
            lines.append(format_results(f"{name or path.name} batch {batch}", results))
            if not all(r.ok for r in results):
                path.unlink(missing_ok=True)
                raise MnnEdgeError(f"{lines[-1]} — the exported file was removed")
    return lines


def export_fp32(cfg: ExportConfig, ckpt: Checkpoint) -> dict[ModelKind, Path]:
    """Write pose.onnx and mnn.onnx into cfg.out, each verified; returns their paths."""
    paths = {kind: cfg.out / ArtifactName(kind).onnx() for kind in MODEL_NAMES}
    refuse_existing(list(paths.values()), cfg.force)
    for kind, path in paths.items():
        heatmaps = cfg.keep_heatmaps and kind is ModelKind.FULL
        with atomic_path(path) as tmp:  # the final name only after the parity check passed
            export_onnx(ckpt, kind, tmp, keep_heatmaps=heatmaps)
            lines = check_parity(ckpt, kind, tmp, heatmaps, name=path.name)
        for line in lines:
            print(line)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return paths


def fp32_sources(cfg: ExportConfig) -> dict[str, Path]:
    """Stem -> FP32 ONNX for --onnx (``export/pose.onnx`` -> ``pose``)."""
    sources = {}
    for path in cfg.onnx:
        stem = path.name.removesuffix(".onnx")
        if stem in sources:
            raise MnnEdgeError(f"--onnx names two files called {path.name}")
        sources[stem] = path
    return sources


def refuse_existing_variants(cfg: ExportConfig, stems: list[str]) -> None:
    """Every FP16/INT8 output of this run (variants, range tables, sensitivity reports) is new, or --force."""
    from mnn_edge.quantize.pipeline import planned_outputs

    reports = [cfg.out / "sensitivity.json", cfg.out / "sensitivity.md"] if cfg.sensitivity else []
    refuse_existing(planned_outputs(stems, cfg.out, cfg.quantize) + reports, cfg.force)


def export_quantized(cfg: ExportConfig, fp32: dict[str, Path]) -> None:
    """The --int8 / --fp16 part: variants, range tables, TensorRT-compat and drift reports."""
    from mnn_edge.quantize.pipeline import drift_lines, print_summary, quantize_exports

    qcfg = cfg.quantize
    refuse_existing_variants(cfg, list(fp32))
    if cfg.sensitivity:
        from mnn_edge.quantize.sensitivity import run_sensitivity_for_export

        qcfg = run_sensitivity_for_export(fp32, cfg.out, qcfg, cfg.max_mae_increase, cfg.sensitivity_images)
    result = quantize_exports(fp32, cfg.out, qcfg)
    print_summary(result)
    for stem, src in fp32.items():
        variants = [p for p in result.artifacts.values() if p.name.startswith(f"{stem}.")]
        for line in drift_lines(src, variants):
            print(line)


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(build_parser().parse_args(argv))
    # One export per output folder at a time: a second one is refused, not left to replace files
    # the first is still writing (both used to print "wrote").
    with claim_output(cfg.out, "export folder"):
        return export(cfg)


def export(cfg: ExportConfig) -> int:
    if cfg.onnx:
        export_quantized(cfg, fp32_sources(cfg))
        return 0
    if cfg.quantize is not None:
        refuse_existing_variants(cfg, list(MODEL_NAMES.values()))  # before the (slow) FP32 export
    ckpt = load_source(cfg)
    paths = export_fp32(cfg, ckpt)
    for line in check_fp32_compat(paths.values()):
        print(line)
    if cfg.quantize is not None:
        export_quantized(cfg, {MODEL_NAMES[kind]: path for kind, path in paths.items()})
    if cfg.engine:
        build_engines(cfg)
    return 0


def build_engines(cfg: ExportConfig) -> None:
    """--engine: the mnn-build step on what this run just wrote."""
    from mnn_edge.runtime.tensorrt.build import build_engines_for_export
    from mnn_edge.runtime.tensorrt.config import BuildConfig, config_from_recipe

    build = config_from_recipe(cfg.engine_recipe) if cfg.engine_recipe else BuildConfig()
    if cfg.engines_dir is not None:
        build = build.with_(out_dir=cfg.engines_dir, timing_cache=cfg.engines_dir / "timing.cache")
    build = build.with_(force=cfg.force)
    for plan in build_engines_for_export(cfg.out, cfg.engine, build):
        print(f"wrote {plan} ({plan.stat().st_size / 1e6:.1f} MB) + {plan.with_suffix('.json').name}")


def check_fp32_compat(paths) -> list[str]:
    from mnn_edge.runtime.tensorrt.compat import check_trt_compat, format_report

    lines = []
    for path in paths:
        problems = check_trt_compat(path)
        lines.append(("WARNING: " if problems else "") + format_report(path, problems))
    return lines


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"WARNING: {message}\n"


def entry() -> int:
    # Warnings (too few calibration images, skipped files) read as one line, not as a source listing.
    warnings.formatwarning = _one_line_warning
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(entry())
