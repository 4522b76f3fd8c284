"""Pose error vs the teacher's labels, signed and absolute, alone and averaged with the mirrored crop.

    python bench/frontal_flip.py export/pose.onnx

On the sets of bench/eval_real.py that carry pose (AFLW2000-3D samples, YTF held-out people, their
frontal subset): the mean signed error shows a constant bias, and averaging each prediction with
that of its mirrored crop (yaw and roll negated) shows how much of the error is left/right
asymmetry. A diagnostic for the starter card, not a runtime feature: it doubles the work per face.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from eval_real import ROOT, sets

from mnn_edge.cli_util import run_cli
from mnn_edge.data.crop import crop_sample
from mnn_edge.evaluate.metrics import ground_truth_angles
from mnn_edge.preprocess import to_input
from mnn_edge.runtime import open_runner

MIRROR = np.array([-1.0, 1.0, -1.0])  # a mirrored face: yaw and roll change sign, pitch stays


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("artifact", type=Path, help="a pose-bearing artifact (.onnx, .pt)")
    p.add_argument("--labels", type=Path, default=ROOT / "runs/data/ytf_teacher.jsonl")
    p.add_argument("--synth-val", type=Path, default=ROOT / "runs/data/synth_val")
    args = p.parse_args(argv)
    with open_runner(args.artifact, device="cpu") as runner:
        meta = runner.metadata
        for name, samples in sets(args.labels, args.synth_val).items():
            if not samples or ground_truth_angles(samples[0]) is None or name.startswith("synthetic"):
                continue
            err, err_mirrored, pred = [], [], []
            for s in samples:
                crop = crop_sample(s, size=meta.input_size).image
                out = runner.infer(to_input(np.stack([crop, crop[:, ::-1].copy()]), meta))["pose"][:, :3]
                truth = ground_truth_angles(s)
                err.append(out[0] - truth)
                err_mirrored.append((out[0] + out[1] * MIRROR) / 2 - truth)
                pred.append(out[0])
            err, err_mirrored, pred = map(np.asarray, (err, err_mirrored, pred))
            print(f"{name}: {len(samples)} faces (yaw, pitch, roll in degrees)")
            print(f"  signed mean error {err.mean(0).round(2)}  MAE {np.abs(err).mean(0).round(2)}")
            print(f"  mirror-averaged   {err_mirrored.mean(0).round(2)}  MAE {np.abs(err_mirrored).mean(0).round(2)}")
            print(f"  mean |predicted|  {np.abs(pred).mean(0).round(2)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
