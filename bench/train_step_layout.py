"""Training step time, NCHW vs NHWC (``channels_last``), side by side, for each stage of the starter recipe.

    python bench/train_step_layout.py [--batch 8] [--rounds 3]

Two Trainers on the same 16 synthetic faces (rendered into a temporary folder), one per memory
layout; for every stage (pose or all losses, 256/128 px stages frozen or not) the two take turns
step by step after one untimed step each, so machine noise hits both alike. Prints the best step
time of each and the NHWC / NCHW ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from mnn_edge.data.synth import write_synthetic
from mnn_edge.train.config import Stage, build_config
from mnn_edge.train.loop import Trainer, apply_freeze
from mnn_edge.train.losses import LossWeights

FROZEN = ("encoder.stages.stage_9.", "encoder.stages.stage_8.")
STAGES = {
    "pose, 256/128 px frozen": Stage("pose", 1.0, LossWeights(1, 1, 0, 0), FROZEN),
    "pose": Stage("pose", 1.0, LossWeights(1, 1, 0, 0)),
    "all, 256/128 px frozen": Stage("all", 1.0, LossWeights(1, 1, 0.5, 0.5), FROZEN),
    "all": Stage("all", 1.0, LossWeights(1, 1, 0.5, 0.5)),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3, help="timed steps per layout and stage")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="mnn-layout-") as tmp:
        data = Path(tmp) / "faces"
        write_synthetic(data, 16, seed=0, progress=False)
        trainers = {}
        for name, nhwc in (("NCHW", False), ("NHWC", True)):
            cfg = build_config({}, {"data": data, "out": Path(tmp) / name, "device": "cpu", "batch": args.batch,
                                    "channels_last": nhwc, "progress": False})
            trainers[name] = Trainer(cfg)
        batches = {k: iter(t.batches()) for k, t in trainers.items()}
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
        print(f"{'stage':<26}{'NCHW s/step':>12}{'NHWC s/step':>12}{'NHWC/NCHW':>11}")
        for label, stage in STAGES.items():
            best = {}
            for k, t in trainers.items():
                apply_freeze(t.model, stage)
                t.train_step(next(batches[k]), stage, 1e-4)  # untimed: allocations, oneDNN primitives
            for _ in range(args.rounds):
                for k, t in trainers.items():
                    b = next(batches[k])
                    t0 = time.perf_counter()
                    t.train_step(b, stage, 1e-4)
                    best[k] = min(best.get(k, float("inf")), time.perf_counter() - t0)
            print(f"{label:<26}{best['NCHW']:>12.2f}{best['NHWC']:>12.2f}{best['NHWC'] / best['NCHW']:>11.3f}")


if __name__ == "__main__":
    main()
