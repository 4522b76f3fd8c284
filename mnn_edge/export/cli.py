"""``mnn-export``: checkpoint -> ONNX artifacts, each checked against PyTorch before it is kept."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from mnn_edge.checkpoint import Checkpoint, default_checkpoint_path, load_checkpoint
from mnn_edge.cli_util import run_cli
from mnn_edge.errors import MnnEdgeError
from mnn_edge.export.onnx_export import ARTIFACT_NAMES, export_onnx, random_input
from mnn_edge.export.parity import FP32_TOLERANCE, compare, format_results
from mnn_edge.metadata import DEFAULT_MEAN, DEFAULT_STD, ModelKind, landmark_scheme_for
from mnn_edge.model.deploy import deploy_module
from mnn_edge.model.network import MNN, init_weights

PARITY_BATCHES = (1, 4)


@dataclass(frozen=True)
class ExportConfig:
    checkpoint: Path | None  # None with random_init
    random_init: bool
    out: Path
    num_landmarks: int | None  # None: take L from the checkpoint
    keep_heatmaps: bool  # full model also outputs the (N, L, 256, 256) softmax maps
    force: bool  # overwrite existing artifacts


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
    return p


def config_from_args(args: argparse.Namespace) -> ExportConfig:
    ckpt = args.checkpoint
    if not args.random_init and ckpt is None:
        ckpt = default_checkpoint_path()
        if not ckpt.is_file():
            raise MnnEdgeError("no starter checkpoint is installed; pass --checkpoint PATH or --random-init")
    return ExportConfig(checkpoint=ckpt, random_init=args.random_init, out=args.out, num_landmarks=args.landmarks,
                        keep_heatmaps=args.keep_heatmaps, force=args.force)


def load_source(cfg: ExportConfig) -> Checkpoint:
    if cfg.random_init:
        print("WARNING: --random-init: exporting RANDOM WEIGHTS. These artifacts are for smoke tests and "
              "benchmarks only; their predictions mean nothing.", file=sys.stderr)
        n = cfg.num_landmarks or 68
        model = MNN(n)
        init_weights(model, seed=0)
        return Checkpoint(model=model.eval(), mean=DEFAULT_MEAN, std=DEFAULT_STD,
                          landmark_scheme=landmark_scheme_for(n))
    return load_checkpoint(cfg.checkpoint, cfg.num_landmarks)


def refuse_existing(paths: list[Path], force: bool) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise MnnEdgeError(f"{', '.join(existing)} already exist; pass --force to overwrite")


def check_parity(ckpt: Checkpoint, kind: ModelKind, path: Path, keep_heatmaps: bool) -> list[str]:
    """Run the ONNX file and PyTorch on the same random batches; raise if any output drifts."""
    from mnn_edge.runtime.onnxruntime_backend import OnnxRuntimeRunner

    module = deploy_module(ckpt.model, kind, keep_heatmaps)
    lines = []
    with OnnxRuntimeRunner(path) as runner:
        for batch in PARITY_BATCHES:
            x = random_input(batch, seed=batch)
            with torch.inference_mode():
                ref = dict(zip(module.output_names, (t.numpy() for t in module(torch.from_numpy(x)))))
            results = compare(ref, runner.infer(x), FP32_TOLERANCE)
            lines.append(format_results(f"{path.name} batch {batch}", results))
            if not all(r.ok for r in results):
                path.unlink(missing_ok=True)
                raise MnnEdgeError(f"{lines[-1]} — the exported file was removed")
    return lines


def export_fp32(cfg: ExportConfig, ckpt: Checkpoint) -> dict[ModelKind, Path]:
    """Write pose.onnx and mnn.onnx into cfg.out, each verified; returns their paths."""
    paths = {kind: cfg.out / f"{name}.onnx" for kind, name in ARTIFACT_NAMES.items()}
    refuse_existing(list(paths.values()), cfg.force)
    for kind, path in paths.items():
        export_onnx(ckpt, kind, path, keep_heatmaps=cfg.keep_heatmaps and kind is ModelKind.FULL)
        for line in check_parity(ckpt, kind, path, cfg.keep_heatmaps and kind is ModelKind.FULL):
            print(line)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return paths


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(build_parser().parse_args(argv))
    ckpt = load_source(cfg)
    export_fp32(cfg, ckpt)
    return 0


def entry() -> int:
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(entry())
