"""``mnn-export``: flags -> :class:`ExportConfig` -> :func:`mnn_edge.export.exporter.run_export`.

With ``--int8`` / ``--fp16`` the same run also writes the quantized variants of what it just
exported (or of existing FP32 files given with ``--onnx``): see :mod:`mnn_edge.quantize.variants`.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from mnn_edge.artifact import Precision, check_num_landmarks
from mnn_edge.artifact.triton import ServingConfig, add_triton_arguments, serving_config_from_args
from mnn_edge.checkpoint import default_checkpoint_path
from mnn_edge.cli_util import run_cli
from mnn_edge.data.readers import SUBSETS
from mnn_edge.data.sample import FORMATS
from mnn_edge.errors import MnnEdgeError
from mnn_edge.export.exporter import EngineConfig, ExportConfig, SensitivityConfig, TritonConfig, run_export
from mnn_edge.fileio import check_distinct
from mnn_edge.quantize.calibration import DEFAULT_METHOD, CalibMethod
from mnn_edge.quantize.variants import Calibration, QuantizeConfig


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
    q.add_argument("--allow-drift", action="store_true",
                   help="keep a quantized artifact whose drift from FP32 on noise inputs is beyond the limit "
                        "(mean 5 deg / 8 px: broken ranges), with a warning; without it such a file is removed")
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
    add_triton_arguments(p)
    p.add_argument("--triton-only", action="store_true",
                   help="with --triton-repo: write the repository from the ONNX artifacts already in --out "
                        "(an earlier export) and export nothing")
    return p


def quantize_config_from_args(args: argparse.Namespace) -> QuantizeConfig | None:
    if args.sensitivity and not args.int8:
        raise MnnEdgeError("--sensitivity only applies with --int8")
    if not (args.int8 or args.fp16):
        for flag, value in (("--calib", args.calib), ("--calib-synthetic", args.calib_synthetic),
                            ("--calib-subset", args.calib_subset), ("--ranges", args.ranges),
                            ("--onnx", args.onnx)):
            if value:
                raise MnnEdgeError(f"{flag} only applies with --int8 or --fp16")
        return None
    if args.calib_subset is not None and args.calib is None:
        raise MnnEdgeError("--calib-subset applies to --calib DIR")
    sources = [x is not None for x in (args.calib, args.calib_synthetic, args.calib_random)]
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
    qcfg = QuantizeConfig(int8=args.int8, fp16=args.fp16, method=CalibMethod(args.calib_method),
                          calibration=calibration, ranges=tuple(args.ranges), ranges_dir=args.ranges_dir,
                          force=args.force, progress=not args.no_progress)
    qcfg.check()
    return qcfg


def triton_only_config(args: argparse.Namespace) -> ExportConfig:
    """--triton-only takes the folder and serving options only: an export flag beside it would be ignored."""
    if args.triton_repo is None:
        raise MnnEdgeError("--triton-only writes --triton-repo DIR from the files in --out; pass --triton-repo")
    export_flags = {"--checkpoint": args.checkpoint, "--random-init": args.random_init, "--int8": args.int8,
                    "--fp16": args.fp16, "--onnx": args.onnx, "--engine": args.engine,
                    "--calib": args.calib, "--calib-synthetic": args.calib_synthetic, "--ranges": args.ranges}
    given = [flag for flag, value in export_flags.items() if value]
    if given:
        raise MnnEdgeError(f"--triton-only exports nothing, so {', '.join(given)} would be ignored; drop "
                           f"{'it' if len(given) == 1 else 'them'} or --triton-only")
    check_distinct([], [(args.out, "--out"), (args.triton_repo, "--triton-repo")], output_folders_named=True)
    return ExportConfig(checkpoint=None, random_init=False, out=args.out, num_landmarks=None, keep_heatmaps=False,
                        force=args.force, triton_only=True,
                        triton=TritonConfig(args.triton_repo, serving_config_from_args(args) or ServingConfig()))


def config_from_args(args: argparse.Namespace) -> ExportConfig:
    if args.triton_only:
        return triton_only_config(args)
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
    # --out is a folder written under the artifacts' own names (pose.int8.onnx beside pose.onnx is
    # the usual case), so only an input that *is* --out, or --out = --triton-repo, is refused
    check_distinct([(ckpt, "checkpoint"), *((f, "--onnx file") for f in args.onnx)],
                   [(args.out, "--out"), (args.triton_repo, "--triton-repo")], output_folders_named=True)
    engines = engine_precisions(args)
    return ExportConfig(
        checkpoint=ckpt, random_init=args.random_init, out=args.out, num_landmarks=args.landmarks,
        keep_heatmaps=args.keep_heatmaps, force=args.force, quantize=quantize, onnx=tuple(args.onnx),
        sensitivity=SensitivityConfig(args.max_mae_increase, args.sensitivity_images) if args.sensitivity else None,
        allow_drift=args.allow_drift,
        engines=EngineConfig(engines, args.engine_recipe, args.engines_dir) if engines else None,
        triton=(TritonConfig(args.triton_repo, serving_config_from_args(args) or ServingConfig())
                if args.triton_repo is not None else None))


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


def main(argv: list[str] | None = None) -> int:
    return run_export(config_from_args(build_parser().parse_args(argv)))


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"WARNING: {message}\n"


def entry() -> int:
    # Warnings (too few calibration images, skipped files) read as one line, not as a source listing.
    warnings.formatwarning = _one_line_warning
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(entry())
