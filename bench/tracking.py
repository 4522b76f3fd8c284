"""Tracking benchmark: how much of the model's accuracy ``mnn-run`` keeps on moving faces.

    python bench/tracking.py --engine export/pose.int8.onnx export/mnn.int8.onnx --json runs/tracking.json

Builds 640x480 videos from real faces never trained on (YouTube-Faces held-out people, pose labels
from the FSA-Net teacher: ``mnn-data pseudo-label``) — sliding at 8 px/frame with a cut every 25
frames, zooming, turning in-plane, two faces, a still face, a face leaving the frame — and runs each
through mnn-run's own code at several flag settings (``mnn_edge.run.track_eval.SETTINGS``). Per
setting: pose MAE on the video and per image (the same faces on the same frames, cropped by the
training rule from their true landmarks), box NME for the full model, misses, false faces, id
switches, frames to serve a face after a cut, whole-frame FPS and p50/p99. Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from mnn_edge.bench.machine import machine_record
from mnn_edge.bench.tracking_table import markdown
from mnn_edge.cli_util import run_cli
from mnn_edge.data.readers import DataSource
from mnn_edge.data.readers.keypoints_csv import person_of
from mnn_edge.fileio import write_text_atomic
from mnn_edge.run import det_crop
from mnn_edge.run.track_eval import (
    SETTINGS,
    detector_crop_fit,
    detector_found,
    evaluate_clip,
    settings,
    time_detector,
)
from mnn_edge.run.track_videos import CLIPS, make_clip

ROOT = Path(__file__).resolve().parents[1]
YTF = ROOT / "data/real/ytf_keypoints/train"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--engine", type=Path, nargs="+", help="artifacts to run (.onnx, .pt, .plan); needed but with "
                   "--calibrate or --detector-only")
    p.add_argument("--labels", type=Path, default=ROOT / "runs/data/ytf_teacher.jsonl",
                   help="teacher pose labels of the YTF frames (mnn-data pseudo-label)")
    p.add_argument("--data", type=Path, default=YTF, help="the YTF keypoint frames (keypoints-csv)")
    p.add_argument("--clips", default=",".join(CLIPS), help=f"comma-separated, from {', '.join(CLIPS)}")
    p.add_argument("--settings", default=";".join(SETTINGS), help="semicolon-separated names of SETTINGS")
    p.add_argument("--frames", type=int, default=200, help="frames per clip")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, help="write every number here")
    p.add_argument("--detector-only", action="store_true",
                   help="only time CenterFace per --det-max-side on the slide clip's frames")
    p.add_argument("--calibrate", action="store_true",
                   help="only measure CenterFace on TRAINING people's faces: the share found per face size, and "
                        "the fit from its box and keypoints to the training crop (errors on held-out people)")
    p.add_argument("--write", action="store_true",
                   help="with --calibrate: store the fit in mnn_edge/assets/detector_crop.json (what mnn-run uses)")
    args = p.parse_args(argv)
    if args.calibrate:
        return calibrate(args.data, args.write)
    if not args.engine and not args.detector_only:
        p.error("--engine is required (but with --calibrate or --detector-only)")
    held = DataSource(args.data, "keypoints-csv", subset="heldout", pose_labels=args.labels).read()
    faces = held[::67][:8]  # 8 different held-out people
    if args.detector_only:
        ms = time_detector(make_clip("slide", faces, seed=args.seed, frames=50).frames)
        print("| --det-max-side | CenterFace ms per frame (median, 1 thread) |\n|---|---|")
        print("\n".join(f"| {side} | {t:.1f} |" for side, t in ms.items()))
        return 0
    chosen = settings(args.settings.split(";"))
    results = {"machine": machine_record(), "engines": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engine:
            rows = []
            for name in args.clips.split(","):
                clip = make_clip(name, faces, seed=args.seed, frames=args.frames)
                rows.append(evaluate_clip(clip, engine, chosen, Path(tmp)))
                print(f"{engine.name} {name}: done", file=sys.stderr)
            results["engines"][str(engine)] = rows
            print(markdown(engine.name, rows))
    if args.json:
        write_text_atomic(args.json, json.dumps(results, indent=1))
    return 0


def calibrate(data: Path, write: bool) -> int:
    train = DataSource(data, "keypoints-csv", subset="train").read()
    for max_side, found in detector_found(train[::10][:300]).items():
        shares = ", ".join(f"{side} px {share:.0%}" for side, share in found.items())
        print(f"--det-max-side {max_side}: found {shares}")
    faces = train[::5][:600]
    fit = detector_crop_fit(faces, [person_of(s.image_path) for s in faces])
    for rule, e in fit["errors_on_held_out_half"].items():
        print(f"{rule}: crop centre off by {e['centre_median']:.4f} of the crop side (p90 {e['centre_p90']:.4f}), "
              f"|log side ratio| {e['log_side_median']:.4f} (p90 {e['log_side_p90']:.4f}), {fit['faces']} faces")
    if write:
        write_text_atomic(det_crop.ASSET, json.dumps(fit, indent=1) + "\n")
        print(f"wrote {det_crop.ASSET}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
