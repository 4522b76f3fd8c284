"""``mnn-eval``: score an artifact (or a constant baseline) on a dataset; table + optional JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mnn_edge.cli_util import run_cli
from mnn_edge.data.readers import SUBSETS
from mnn_edge.data.sample import FORMATS
from mnn_edge.errors import MnnEdgeError
from mnn_edge.evaluate.baseline import BASELINES
from mnn_edge.evaluate.scoring import EvalConfig, evaluate, format_table
from mnn_edge.fileio import claim_outputs, write_text_atomic
from mnn_edge.runtime.remote.url import artifact_arg


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mnn-eval",
        description="Evaluate an artifact on a dataset: pose MAE per angle and mean (degrees), landmark NME "
                    "(inter-ocular and by landmark-box size) and visibility accuracy, on the standard crop of "
                    "every face. Any reader (--format) with any artifact (.pt checkpoint, .onnx, TensorRT .plan), "
                    "or a constant baseline (--baseline) for comparison.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="dataset folder")
    p.add_argument("--format", choices=FORMATS, required=True, help="dataset reader")
    p.add_argument("--artifact", type=artifact_arg,
                   help="model to evaluate: .pt, .onnx, .plan, or a served model grpc://HOST:PORT/MODEL or "
                        "http://HOST:PORT/MODEL (default: the shipped starter checkpoint)")
    p.add_argument("--baseline", choices=BASELINES,
                   help="evaluate a constant predictor instead: zero (zero angles, frontal mean-face landmarks) "
                        "or mean (mean pose/landmarks of --baseline-data)")
    p.add_argument("--baseline-data", type=Path, help="training set whose means the 'mean' baseline predicts")
    p.add_argument("--baseline-format", choices=FORMATS, default="synthetic", help="reader of --baseline-data")
    p.add_argument("--subset", choices=SUBSETS,
                   help="evaluate one side of the person-disjoint split (keypoints-csv): heldout = never trained on")
    p.add_argument("--pose-labels", type=Path,
                   help="teacher pose labels (mnn-data pseudo-label) as the pose reference: the MAE is then "
                        "agreement with the teacher, and says so")
    p.add_argument("--frontal", type=float, metavar="DEG",
                   help="keep only faces whose reference angles are all within +-DEG (frontal faces); the "
                        "'mean |predicted|' row is then the estimate's bias")
    p.add_argument("--limit", type=int, help="evaluate at most this many faces (the first N, sorted by name)")
    p.add_argument("--batch", type=int, default=8, help="faces per inference call")
    p.add_argument("--no-protocol", dest="protocol", action="store_false",
                   help="aflw2000: keep faces with angles beyond +-99 degrees (the standard protocol drops them)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where the artifact runs")
    p.add_argument("--json", dest="json_out", type=Path, help="also write the result as JSON here")
    p.add_argument("--per-face", type=Path,
                   help="also write one JSON line per face here: image, gt_angles, pred_angles, abs_error (deg), "
                        "nme, nme_box, vis_right/vis_labelled (to find the faces that fail)")
    p.add_argument("--force", action="store_true", help="replace existing --json / --per-face files")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    artifact = args.artifact
    if args.baseline is not None and artifact is not None:
        raise MnnEdgeError("give either --artifact or --baseline, not both")
    if args.baseline == "mean" and args.baseline_data is None:
        raise MnnEdgeError("--baseline mean needs --baseline-data DIR (the training set to average)")
    if args.baseline is None and artifact is None:
        from mnn_edge.checkpoint import default_checkpoint_path

        artifact = default_checkpoint_path()
        if not artifact.is_file():
            raise MnnEdgeError("no starter checkpoint is installed; pass --artifact PATH")
    if args.limit is not None and args.limit < 1:
        raise MnnEdgeError(f"--limit must be >= 1, got {args.limit}")
    if not 1 <= args.batch <= 256:  # 100000 crops in one call took 4.1 GB before failing
        raise MnnEdgeError(f"--batch must be 1..256 faces per inference call, got {args.batch}")
    from mnn_edge.fileio import check_distinct, refuse_existing
    from mnn_edge.runtime.remote.url import is_model_url

    check_distinct([(None if is_model_url(artifact) else artifact, "artifact"), (args.data, "dataset"),
                    (args.pose_labels, "pose labels file"), (args.baseline_data, "baseline dataset")],
                   [(args.json_out, "--json"), (args.per_face, "--per-face")])
    refuse_existing([p for p in (args.json_out, args.per_face) if p is not None], args.force)
    if args.frontal is not None and not 0 < args.frontal < 90:
        raise MnnEdgeError(f"--frontal must be between 0 and 90 degrees, got {args.frontal}")
    return EvalConfig(data=args.data, format=args.format, artifact=artifact, baseline=args.baseline,
                      baseline_data=args.baseline_data, baseline_format=args.baseline_format, limit=args.limit,
                      batch=args.batch, protocol=args.protocol, device=args.device, json_out=args.json_out,
                      progress=args.progress, per_face=args.per_face, subset=args.subset,
                      pose_labels=args.pose_labels, frontal=args.frontal)


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(build_parser().parse_args(argv))
    with claim_outputs((cfg.json_out, "JSON output"), (cfg.per_face, "per-face output")):
        res = evaluate(cfg)
        print(format_table(res))
        if cfg.json_out is not None:
            write_text_atomic(cfg.json_out, json.dumps(res.to_dict(), indent=2, sort_keys=True) + "\n")
            print(f"wrote {cfg.json_out}")
        if cfg.per_face is not None:
            write_text_atomic(cfg.per_face, "".join(json.dumps(f) + "\n" for f in res.faces))
            print(f"wrote {cfg.per_face} ({len(res.faces)} faces)")
    return 0


def entry() -> None:
    raise SystemExit(run_cli(main))
