"""Large poses on real faces: profiled held-out people by |yaw| / |pitch| bin, roll on turned photos.

    python bench/large_pose.py --artifact export/pose.onnx --json runs/eval/large_pose.json

Sets (nothing here was trained on):
- profiled held-out people: the person-disjoint held-out YTF frames re-rendered at large poses by
  ``mnn-data profile`` (labels exact relative to the teacher's pose of each source photo);
- roll sweep: the frontal held-out frames (teacher within +-10 deg) turned in-plane by +-10..45 deg;
- AFLW2000-3D samples: the 4 faces with true labels, per face.
Prints Markdown tables; ``--json`` keeps every number.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mnn_edge.checkpoint import default_checkpoint_path
from mnn_edge.cli_util import run_cli
from mnn_edge.data.readers import DataSource, aflw2000_protocol
from mnn_edge.evaluate.large_pose import PITCH_BINS, YAW_BINS, binned_mae, roll_sweep
from mnn_edge.evaluate.metrics import evaluate_runner, frontal_only
from mnn_edge.fileio import write_text_atomic
from mnn_edge.runtime import open_runner

ROOT = Path(__file__).resolve().parents[1]


def f2(v: float) -> str:
    return "–" if v != v else f"{v:.2f}"


def bins_table(title: str, rows: list[dict]) -> str:
    lines = [f"| {title} | faces | MAE yaw | pitch | roll | mean |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['bin']} | {r['n']} | {f2(r['mae_yaw'])} | {f2(r['mae_pitch'])} | {f2(r['mae_roll'])} | "
              f"{f2(r['mae'])} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--artifact", type=Path, default=default_checkpoint_path(), help=".pt / .onnx / .plan to score")
    p.add_argument("--profiled", type=Path, default=ROOT / "runs/data/profiled_heldout",
                   help="mnn-data profile --subset heldout output (read as --format synthetic)")
    p.add_argument("--labels", type=Path, default=ROOT / "runs/data/ytf_teacher.jsonl",
                   help="teacher labels of the YTF frames (mnn-data pseudo-label)")
    p.add_argument("--ytf", type=Path, default=ROOT / "data/real/ytf_keypoints/train", help="YTF keypoint frames")
    p.add_argument("--aflw", type=Path, default=ROOT / "data/samples/aflw2000", help="AFLW2000-3D samples")
    p.add_argument("--json", type=Path, help="write every number here")
    args = p.parse_args(argv)
    profiled = DataSource(args.profiled, "synthetic").read()
    held = DataSource(args.ytf, "keypoints-csv", subset="heldout", pose_labels=args.labels).read()
    frontal = frontal_only(held)
    aflw = aflw2000_protocol(DataSource(args.aflw, "aflw2000").read())
    with open_runner(args.artifact, device="cpu") as runner:
        prof = evaluate_runner(runner, profiled, progress=False)
        print(f"scored {len(profiled)} profiled faces", file=sys.stderr)
        sweep = roll_sweep(runner, frontal)
        print(f"swept {len(frontal)} frontal photos", file=sys.stderr)
        aflw_res = evaluate_runner(runner, aflw, progress=False)
    out = {"artifact": str(args.artifact),
           "profiled": {"overall": prof.to_dict(), "by_yaw": binned_mae(prof.faces, 0, YAW_BINS),
                        "by_pitch": binned_mae(prof.faces, 1, PITCH_BINS)},
           "roll_sweep": sweep, "aflw2000": {"overall": aflw_res.to_dict(), "faces": aflw_res.faces}}
    print(f"artifact: {args.artifact}\n\nProfiled held-out people: {prof.n} faces, mean MAE {f2(prof.mae)} "
          f"(yaw {f2(prof.mae_yaw)}, pitch {f2(prof.mae_pitch)}, roll {f2(prof.mae_roll)})\n")
    print(bins_table("\\|yaw\\| bin", out["profiled"]["by_yaw"]) + "\n")
    print(bins_table("\\|pitch\\| bin", out["profiled"]["by_pitch"]) + "\n")
    print(f"Roll sweep: {sweep['faces']} frontal photos, slope {sweep['slope']:.3f}, roll error "
          f"{f2(sweep['roll_error'])}, induced yaw {f2(sweep['induced_yaw'])} / pitch {f2(sweep['induced_pitch'])}\n")
    print("| turn | label roll change | read roll change | roll error | induced yaw | induced pitch |\n"
          "|---|---|---|---|---|---|")
    for r in sweep["rows"]:
        print(f"| {r['turn_deg']:+g} | {f2(r['label_roll_change'])} | {f2(r['read_roll_change'])} | "
              f"{f2(r['roll_error'])} | {f2(r['induced_yaw'])} | {f2(r['induced_pitch'])} |")
    print(f"\nAFLW2000-3D samples: mean MAE {f2(aflw_res.mae)}")
    for face in aflw_res.faces:
        print(f"- {Path(face['image']).name}: true {face['gt_angles']} read {face['pred_angles']}")
    if args.json is not None:
        write_text_atomic(args.json, json.dumps(out, indent=1) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
