"""``mnn-train``: train MNN from a TOML config file, with flags that override it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mnn_edge.cli_util import run_cli
from mnn_edge.data.readers import SUBSETS
from mnn_edge.data.sample import FORMATS
from mnn_edge.fileio import PathRole, check_distinct, claim_outputs, read_toml
from mnn_edge.train.config import PRESETS, TrainConfig, build_config


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mnn-train",
        description="Train the full MNN model (pose, pose_proj, landmark heatmaps, visibility) with the four "
                    "losses L_ED, L_AE, L_CE(h), L_CE(v). Options come from --config (TOML, keys as the long flags "
                    "with _ for -) and are overridden by flags given here. Writes OUT/last.pt (resumable, fp32 + "
                    "optimizer), OUT/model_fp16.pt (fp16 weights, what mnn-export reads) and OUT/log.json. "
                    "Under torchrun (WORLD_SIZE > 1) the same run uses DistributedDataParallel. "
                    "Several datasets with sampling weights (real + synthetic): [[sources]] tables in the config "
                    "(configs/starter_real.toml).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", type=Path, help="TOML file with training options (see configs/starter.toml)")
    p.add_argument("--data", type=Path, help="training set folder (required here or in the config)")
    p.add_argument("--format", choices=FORMATS, help="reader of --data (config default: synthetic)")
    p.add_argument("--subset", choices=SUBSETS,
                   help="train on one side of --data's person-disjoint split (keypoints-csv)")
    p.add_argument("--pose-labels", type=Path,
                   help="teacher pose labels for --data (from mnn-data pseudo-label): the pose target of its faces")
    p.add_argument("--val-data", type=Path, help="validation folder, evaluated at the end of every epoch")
    p.add_argument("--val-format", choices=FORMATS, help="reader of --val-data (default: --format)")
    p.add_argument("--val-subset", choices=SUBSETS, help="side of --val-data's person-disjoint split")
    p.add_argument("--val-pose-labels", type=Path, help="teacher pose labels for --val-data")
    p.add_argument("--val-limit", type=int, help="validate on at most this many faces (config default: 64)")
    p.add_argument("--limit", type=int, help="read at most this many training faces")
    p.add_argument("--out", type=Path, help="run folder (config default: runs/train)")
    p.add_argument("--schedule", choices=sorted(PRESETS),
                   help="loss schedule preset: all (every task throughout), paper (landmarks first, then all "
                        "tasks), cpu-starter (pose heads with the 256/128 px stages frozen, then all tasks)")
    p.add_argument("--epochs", type=int, help="planned epochs (config default: 10)")
    p.add_argument("--epoch-steps", type=int, help="steps per epoch, i.e. validation cadence (0 = one data pass)")
    p.add_argument("--batch", type=int, help="batch size per process (config default: 8)")
    p.add_argument("--lr", type=float, help="AdamW peak learning rate, cosine-decayed (config default: 1e-3)")
    p.add_argument("--weight-decay", type=float, help="AdamW weight decay (config default: 1e-4)")
    p.add_argument("--sigma", type=float, help="std of the heatmap target Gaussian in crop px (config default: 2)")
    p.add_argument("--no-augment", dest="augment", action="store_const", const=False,
                   help="turn augmentation (flip, rotation, scale, colour) off")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to train (config default: auto)")
    p.add_argument("--no-amp", dest="amp", action="store_const", const=False,
                   help="train in float32 on CUDA too (AMP is on by default on CUDA, never used on CPU)")
    p.add_argument("--workers", type=int, help="DataLoader worker processes (config default: 0)")
    p.add_argument("--threads", type=int, help="torch CPU threads, 0 = torch default (config default: 0)")
    p.add_argument("--seed", type=int, help="seed of weights, shuffling and augmentation (config default: 0)")
    p.add_argument("--max-minutes", type=float,
                   help="time budget of the whole run: the schedule is fitted to it and the run stops and saves "
                        "when it is used up (a resumed run continues the same clock)")
    p.add_argument("--save-minutes", type=float, help="write last.pt at least this often (config default: 10)")
    p.add_argument("--resume", type=Path, help="continue from this last.pt (weights, optimizer, step, clock)")
    p.add_argument("--init", type=Path,
                   help="start from the weights (and normalisation) of this checkpoint, e.g. the shipped starter "
                        "mnn_edge/assets/mnn_starter.pt, with a fresh optimizer, schedule and clock (fine-tuning)")
    p.add_argument("--force", action="store_const", const=True, help="start afresh over an existing run folder")
    p.add_argument("--no-progress", dest="progress", action="store_const", const=False, help="no progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    file_values = read_toml(args.config, "config file") if args.config is not None else {}
    overrides = {k: v for k, v in vars(args).items() if k != "config"}
    return build_config(file_values, overrides)


def check_paths(cfg: TrainConfig, config_file: Path | None) -> None:
    """The run folder and its files (last.pt, model_fp16.pt, log.json) are none of the run's inputs,
    --force or not: ``--init runs/a/last.pt --out runs/a --force`` would overwrite the weights it
    starts from. Resuming a run's own last.pt is what --resume is for, so that one is allowed."""
    from mnn_edge.train.loop import FINAL, LAST, LOG

    own_last = (cfg.out / LAST).expanduser().resolve()
    resume = cfg.resume if cfg.resume is None or cfg.resume.expanduser().resolve() != own_last else None
    inputs: list[PathRole] = [(config_file, "--config file"), (resume, "--resume checkpoint"),
                              (cfg.init, "--init checkpoint"), (cfg.val_data, "validation data folder"),
                              (cfg.val_pose_labels, "validation pose labels")]
    for src in cfg.train_sources():
        inputs += [(src.data, "training data folder"), (src.pose_labels, "pose labels file")]
    outputs = [(cfg.out, "--out"), *((cfg.out / name, "run file") for name in (LAST, FINAL, LOG))]
    check_distinct(inputs, outputs, output_folders_named=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    check_paths(cfg, args.config)
    from mnn_edge.train.loop import train

    saver = int(os.environ.get("RANK", "0")) == 0  # torchrun: rank 0 saves and reports
    with claim_outputs((cfg.out if saver else None, "training run folder")):
        final = train(cfg)
    if saver:
        print(f"wrote {final} and {final.parent / 'last.pt'}")
    return 0


def entry() -> None:
    raise SystemExit(run_cli(main))
