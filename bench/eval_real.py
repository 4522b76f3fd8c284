"""Every accuracy measure of the starter card in one run: real faces first, synthetic last.

    python bench/eval_real.py --artifact mnn_edge/assets/mnn_starter.pt --json runs/eval/starter.json

Sets (fetched with ``mnn-data fetch``, see docs/DATA.md; nothing here was trained on):
- AFLW2000-3D samples: 4 real faces with **true** pose labels (and 68 fitted landmarks);
- YTF held-out people: 540 real frames of 54 people never trained on (person-disjoint split),
  their annotated 68 landmarks, and pose **vs the FSA-Net teacher's labels** (agreement with the
  teacher, not accuracy);
- YTF held-out frontal: the frames among those whose teacher angles are all within +-10 degrees;
- 300W samples: 3 real faces with 68 landmarks (no pose);
- synthetic held-out: 300 rendered faces (seed 2000) with exact labels.
Each set is scored for the artifact and for the constant ``zero`` baseline (zero angles, the frontal
mean face placed by the crop rule), by :func:`mnn_edge.evaluate.metrics.evaluate_runner`, the code
behind ``mnn-eval``. Prints a Markdown table; ``--json`` keeps every number.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from mnn_edge.checkpoint import default_checkpoint_path
from mnn_edge.cli_util import run_cli
from mnn_edge.data.readers import DataSource, aflw2000_protocol
from mnn_edge.evaluate.baseline import zero_baseline
from mnn_edge.evaluate.metrics import FRONTAL_DEG, evaluate_runner, frontal_only
from mnn_edge.fileio import write_text_atomic
from mnn_edge.runtime import open_runner

ROOT = Path(__file__).resolve().parents[1]
YTF = ROOT / "data/real/ytf_keypoints/train"


def sets(labels: Path, synth_val: Path) -> dict[str, list]:
    """name -> samples, in the order the card lists them."""
    aflw = aflw2000_protocol(DataSource(ROOT / "data/samples/aflw2000", "aflw2000").read())
    held = DataSource(YTF, "keypoints-csv", subset="heldout", pose_labels=labels).read()
    frontal = frontal_only(held)
    return {"AFLW2000-3D samples (true pose)": aflw,
            "YTF held-out people (pose vs teacher)": held,
            f"YTF held-out, frontal (teacher within +-{FRONTAL_DEG:g} deg)": frontal,
            "300W samples (landmarks)": DataSource(ROOT / "data/samples/300w_pts", "300w").read(),
            "synthetic held-out (seed 2000)": DataSource(synth_val, "synthetic").read()}


def cell(v, scale: float = 1.0) -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v * scale:.2f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--artifact", type=Path, default=default_checkpoint_path(), help=".pt / .onnx / .plan to score")
    p.add_argument("--labels", type=Path, default=ROOT / "runs/data/ytf_teacher.jsonl",
                   help="teacher labels of the YTF frames (mnn-data pseudo-label)")
    p.add_argument("--synth-val", type=Path, default=ROOT / "runs/data/synth_val",
                   help="held-out synthetic faces (mnn-data synth --n 300 --seed 2000)")
    p.add_argument("--no-baseline", action="store_true", help="score the artifact only")
    p.add_argument("--json", type=Path, help="write every number here")
    args = p.parse_args(argv)
    data = sets(args.labels, args.synth_val)
    results: dict[str, dict] = {}
    with open_runner(args.artifact, device="cpu") as runner:
        for name, samples in data.items():
            results[name] = {"artifact": evaluate_runner(runner, samples, progress=False).to_dict()}
            if not args.no_baseline:
                results[name]["zero"] = evaluate_runner(zero_baseline(), samples, progress=False).to_dict()
            print(f"scored {name}: {len(samples)} faces", file=sys.stderr)
    print(f"artifact: {args.artifact}\n")
    print("| set | predictor | faces | MAE yaw | pitch | roll | mean | mean abs. pred. yaw / roll "
          "| NME io % | NME box % |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, by in results.items():
        for who, r in by.items():
            label = args.artifact.name if who == "artifact" else "zero angles, mean face"
            print(f"| {name} | {label} | {r['n']} | {cell(r['mae_yaw'])} | {cell(r['mae_pitch'])} | "
                  f"{cell(r['mae_roll'])} | {cell(r['mae'])} | "
                  f"{cell(r['pred_abs_yaw'])} / {cell(r['pred_abs_roll'])} | "
                  f"{cell(r['nme'], 100)} | {cell(r['nme_box'], 100)} |")
    if args.json is not None:
        write_text_atomic(args.json, json.dumps({"artifact": str(args.artifact), "sets": results}, indent=1) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
