"""``mnn-info``: per-stage parameter tables of the full and encoder-only models."""

from __future__ import annotations

import argparse

from mnn_edge.cli_util import run_cli
from mnn_edge.model.network import MNN, PoseModel
from mnn_edge.model.summary import format_table, stage_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mnn-info",
        description="Print MNN's per-stage parameter table: trainable parameters and, as the paper "
                    "counts them (Keras-style), parameters + BatchNorm running statistics.")
    parser.add_argument("--landmarks", "-L", type=int, default=68, help="number of landmarks L (default 68)")
    args = parser.parse_args(argv)
    full = MNN(args.landmarks)
    print(format_table(f"MNN full model, L = {args.landmarks}", stage_table(full)))
    print()
    print(format_table("Encoder-only pose model (fc_pose only)", stage_table(PoseModel.from_full(full))))
    return 0


def entry() -> int:
    return run_cli(main)
