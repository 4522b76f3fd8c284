"""``mnn-build``: ONNX artifacts -> TensorRT plans + JSON sidecars, on the machine that will run them."""

from __future__ import annotations

import argparse
from pathlib import Path

from mnn_edge.artifact import Precision
from mnn_edge.artifact.triton import (
    ServingConfig,
    add_triton_arguments,
    serving_config_from_args,
    write_triton_model,
)
from mnn_edge.cli_util import run_cli
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import check_distinct, claim_outputs
from mnn_edge.runtime.tensorrt.build import build_engine, build_engines_for_export
from mnn_edge.runtime.tensorrt.config import BuildConfig, Typing, config_from_recipe


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mnn-build",
        description="Build TensorRT engines (engines/<model>.<precision>.plan plus a .json sidecar recording the "
                    "TensorRT version, GPU, precision, batch profile, normalisation and the source ONNX's "
                    "SHA-256). Run it on the target device: a plan only runs with the TensorRT version and GPU "
                    "it was built with. INT8 engines are built from the explicitly quantized *.int8-trt.onnx "
                    "(Q/DQ) artifact only; FP16 from *.fp16.onnx (required on TensorRT 11) or, on 8.6/10.x, "
                    "from the fp32 graph with the FP16 builder flag.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("onnx", nargs="+", type=Path,
                   help="ONNX files to build, or an mnn-export folder (builds pose and mnn at --precision)")
    p.add_argument("--recipe", type=Path, default=None,
                   help="target recipe (engines/orin-nano.toml, agx-orin.toml, x86-ampere.toml); flags override it")
    p.add_argument("--precision", choices=[x.value for x in Precision], default=None,
                   help="engine precision (default: the recipe's, else the ONNX file's own precision)")
    p.add_argument("--min-batch", type=int, default=None, help="smallest batch of the optimization profile [1]")
    p.add_argument("--opt-batch", type=int, default=None, help="batch TensorRT tunes for [1]")
    p.add_argument("--max-batch", type=int, default=None, help="largest batch the engine accepts [1]")
    p.add_argument("--workspace-mib", type=int, default=None, help="builder workspace memory pool limit in MiB [1024]")
    p.add_argument("--timing-cache", type=Path, default=None,
                   help="timing cache file, read before and updated after each build [engines/timing.cache]")
    p.add_argument("--no-timing-cache", action="store_true", help="do not read or write a timing cache")
    p.add_argument("--dla-core", type=int, default=None,
                   help="Jetson AGX/NX Orin: run on this DLA core (fp16/int8 only), TensorRT 10.x")
    p.add_argument("--no-gpu-fallback", action="store_true",
                   help="with --dla-core: fail instead of running DLA-unsupported layers on the GPU")
    p.add_argument("--typing", choices=[t.value for t in Typing], default=None,
                   help="strong: precision from the graph; weak: fp32 graph + precision flags (8.6/10.x) [auto]")
    p.add_argument("--opt-level", type=int, default=None,
                   help="builder optimization level 0-5 (TensorRT's default is 3; higher builds longer)")
    p.add_argument("--tf32", action="store_true",
                   help="fp32 engines: allow TF32 matmuls/convolutions (faster on Ampere+, less exact)")
    p.add_argument("--out", type=Path, default=None, help="output folder [engines]")
    p.add_argument("--device", type=int, default=0, help="CUDA device index")
    p.add_argument("--force", action="store_true", help="overwrite existing plans and sidecars")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_triton_arguments(p)
    return p


def config_from_args(args: argparse.Namespace) -> BuildConfig:
    overrides = {
        "precision": Precision(args.precision) if args.precision else None,
        "min_batch": args.min_batch, "opt_batch": args.opt_batch, "max_batch": args.max_batch,
        "workspace_mib": args.workspace_mib, "timing_cache": args.timing_cache, "dla_core": args.dla_core,
        "typing": Typing(args.typing) if args.typing else None, "optimization_level": args.opt_level,
        "out_dir": args.out,
        "gpu_fallback": False if args.no_gpu_fallback else None,
        "progress": False if args.no_progress else None,
        "tf32": True if args.tf32 else None,
        "force": args.force or None,
    }
    if args.recipe is not None:
        cfg = config_from_recipe(args.recipe, **overrides)
    else:
        cfg = BuildConfig(**{k: v for k, v in overrides.items() if v is not None})
    if args.no_timing_cache:
        cfg = cfg.with_(timing_cache=None)
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    serving = serving_config_from_args(args)  # checked before the (slow) builds
    for src in args.onnx:
        if not src.exists():
            raise MnnEdgeError(f"{src} not found")
    # Engines and the repository are written under names of their own, so an export folder may
    # hold them; an output that is an ONNX file, the recipe or the other output is refused.
    onnx_files = [f for src in args.onnx for f in (sorted(src.glob("*.onnx")) if src.is_dir() else [src])]
    check_distinct([*((f, "ONNX input") for f in onnx_files), (args.recipe, "recipe")],
                   [(cfg.out_dir, "--out"), (args.triton_repo, "--triton-repo")], output_folders_named=True)
    with claim_outputs((cfg.out_dir, "engine folder"), (args.triton_repo, "Triton repository")):
        return _build(args, cfg, serving)


def _build(args: argparse.Namespace, cfg: BuildConfig, serving: ServingConfig | None) -> int:
    plans = []
    for src in args.onnx:
        if src.is_dir():
            precisions = [cfg.precision or Precision.FP32]
            plans += build_engines_for_export(src, precisions, cfg, device=args.device)
        else:
            plans.append(build_engine(src, cfg, device=args.device))
    for plan in plans:
        print(f"wrote {plan} ({plan.stat().st_size / 1e6:.1f} MB) + {plan.with_suffix('.json').name}")
    if serving is not None:
        for plan in plans:  # max_batch_size from each plan's profile (its sidecar)
            folder = write_triton_model(plan, args.triton_repo, serving, force=cfg.force)
            print(f"wrote {folder}/config.pbtxt + 1/model.plan")
    return 0


def entry() -> int:
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(entry())
