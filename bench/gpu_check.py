"""``bench/gpu_check``: the one command that verifies the TensorRT path on real hardware; its flags
only. What it does (its --help shows the same text) is :mod:`mnn_edge.bench.gpu_check`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnn_edge.artifact import MODEL_NAMES, Precision
from mnn_edge.bench import gpu_check
from mnn_edge.bench.gpu_check import GpuCheckConfig, run_gpu_check
from mnn_edge.bench.machine import tensorrt_facts
from mnn_edge.cli_util import run_cli
from mnn_edge.errors import MnnEdgeError
from mnn_edge.runtime.tensorrt.config import BuildConfig, config_from_recipe


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/gpu_check", description=gpu_check.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export", type=Path, default=None,
                   help="folder with pose/mnn .onnx, .fp16.onnx, .int8-trt.onnx (default: export them into "
                        "OUT/export first, with --checkpoint or --random-init)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", type=Path, help="checkpoint to export when --export is not given")
    src.add_argument("--random-init", action="store_true", help="export random weights (smoke test only)")
    p.add_argument("--out", type=Path, default=Path("bench/results/gpu_check"), help="engines + report folder")
    p.add_argument("--recipe", type=Path, default=None, help="engines/*.toml recipe for the build settings")
    p.add_argument("--max-batch", type=int, default=None,
                   help="profile max batch, also timed besides batch 1 (default: the recipe's, else 4)")
    p.add_argument("--precisions", default="fp32,fp16,int8", help="comma-separated precisions to check")
    p.add_argument("--models", default="pose,mnn", help="comma-separated models to check")
    p.add_argument("--inputs", type=int, default=32, help="number of check inputs (synthetic faces)")
    p.add_argument("--random-inputs", action="store_true", help="check on noise instead of synthetic faces")
    p.add_argument("--runs", type=int, default=200, help="timed rounds per case")
    p.add_argument("--warmup", type=int, default=20, help="untimed rounds per case")
    p.add_argument("--no-cuda-graph", dest="cuda_graph", action="store_false", help="skip the CUDA-graph case")
    p.add_argument("--no-trtexec", action="store_true", help="do not time with trtexec even if it exists")
    return p


def export_first(args) -> Path:
    """What ``mnn-export --fp16 --int8 --calib-synthetic 64`` does, into OUT/export."""
    from mnn_edge.checkpoint import default_checkpoint_path
    from mnn_edge.export.exporter import ExportConfig, run_export
    from mnn_edge.quantize.variants import Calibration, QuantizeConfig

    export = args.out / "export"
    checkpoint = None if args.random_init else (args.checkpoint or default_checkpoint_path())
    print(f"exporting {checkpoint or 'random weights'} -> {export}", file=sys.stderr)
    quantize = QuantizeConfig(int8=True, fp16=True, calibration=Calibration(synthetic=64),
                              ranges_dir=args.out / "calibration", force=True)
    run_export(ExportConfig(checkpoint=checkpoint, random_init=args.random_init, out=export, num_landmarks=None,
                            keep_heatmaps=False, force=True, quantize=quantize))
    return export


def config_from_args(args: argparse.Namespace, argv: list[str], export: Path) -> GpuCheckConfig:
    """Flags -> the check's config: the recipe's build settings with the profile capped at --max-batch."""
    base = config_from_recipe(args.recipe) if args.recipe else BuildConfig()
    max_batch = args.max_batch or (base.max_batch if args.recipe else 4)
    build = base.with_(out_dir=args.out / "engines", timing_cache=args.out / "engines" / "timing.cache",
                       max_batch=max_batch, opt_batch=min(base.opt_batch, max_batch),
                       min_batch=min(base.min_batch, max_batch), force=True)
    return GpuCheckConfig(export=export, out=args.out, precisions=precisions_of(args), models=models_of(args),
                          build=build, inputs=args.inputs, random_inputs=args.random_inputs, runs=args.runs,
                          warmup=args.warmup, cuda_graph=args.cuda_graph, no_trtexec=args.no_trtexec,
                          argv=tuple(argv))


def precisions_of(args: argparse.Namespace) -> tuple[Precision, ...]:
    return tuple(Precision(p.strip()) for p in args.precisions.split(",") if p.strip())


def models_of(args: argparse.Namespace) -> tuple[str, ...]:
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    unknown = sorted(set(models) - set(MODEL_NAMES.values()))
    if unknown:
        raise MnnEdgeError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODEL_NAMES.values())}")
    return models


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    precisions_of(args), models_of(args)  # bad values fail before anything is loaded
    machine = tensorrt_facts()  # fails first, in one line, without TensorRT / CUDA / a GPU
    export = args.export if args.export is not None else export_first(args)
    return run_gpu_check(config_from_args(args, argv, export), machine)


def entry() -> int:
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(entry())
