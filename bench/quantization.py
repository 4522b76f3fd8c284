"""FP32 vs FP16 vs INT8 (CPU and TensorRT flavours) on ONNX Runtime CPU, both models, in one run.

    python bench/quantization.py --checkpoint mnn_edge/assets/mnn_starter.pt --update-readme

1. ``mnn-export --fp16 --int8`` writes the eight artifacts (or ``--export DIR`` reuses a folder),
2. accuracy of each on held-out synthetic faces (``mnn-data synth`` with a seed used neither for
   training nor calibration),
3. latency of all eight interleaved round by round (:mod:`mnn_edge.bench.timing`), so the ratios
   hold on a noisy machine,
4. writes ``bench/results/quantization.json`` (a results document ``mnn-report --results`` reads),
   prints the table and the targets, and with ``--update-readme`` writes both into bench/README.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from mnn_edge.bench.suite import parse_batches
from mnn_edge.bench.timing import TimingConfig
from mnn_edge.cli_util import run_cli
from mnn_edge.data.readers import SUBSETS, DataSource
from mnn_edge.data.sample import FORMATS
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import write_text_atomic
from mnn_edge.report.measure import (
    HELDOUT_SEED,
    PipelineConfig,
    artifacts_in,
    export_all,
    heldout_folder,
    measure,
    write_results,
)
from mnn_edge.report.quantization import busy_processes, quantization_table, replace_between_markers, target_checks

ROOT = Path(__file__).resolve().parents[1]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", type=Path, default=None,
                     help="checkpoint to export (default: mnn_edge/assets/mnn_starter.pt)")
    src.add_argument("--random-init", action="store_true", help="random weights (latency only; accuracy meaningless)")
    src.add_argument("--export", type=Path, default=None, help="use the artifacts already in this folder")
    p.add_argument("--work", type=Path, default=ROOT / "bench/results/quantization", help="export/, heldout/")
    p.add_argument("--n-eval", type=int, default=200, help="held-out synthetic faces")
    p.add_argument("--eval-seed", type=int, default=HELDOUT_SEED, help="seed of the held-out faces")
    p.add_argument("--calib-synthetic", type=int, default=128, help="synthetic calibration faces")
    p.add_argument("--eval-data", type=Path, help="measure accuracy on this dataset instead of synthetic faces")
    p.add_argument("--eval-format", default="synthetic", choices=FORMATS, help="reader of --eval-data")
    p.add_argument("--eval-subset", choices=SUBSETS, help="side of --eval-data's person-disjoint split")
    p.add_argument("--eval-pose-labels", type=Path, help="teacher pose labels for --eval-data")
    p.add_argument("--eval-limit", type=int, help="score at most this many faces of --eval-data (the first N)")
    p.add_argument("--calib-data", type=Path, help="calibrate INT8 on this dataset instead of synthetic faces")
    p.add_argument("--calib-format", default="synthetic", choices=FORMATS, help="reader of --calib-data")
    p.add_argument("--calib-subset", choices=SUBSETS, help="side of --calib-data's person-disjoint split")
    p.add_argument("--calib-limit", type=int, help="calibrate on at most this many faces of --calib-data")
    p.add_argument("--runs", type=int, default=30, help="timed calls per artifact and batch size")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls per artifact")
    p.add_argument("--batch", default="1", help="batch sizes")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: all cores)")
    p.add_argument("--reuse", action="store_true", help="keep export/ and heldout/ from an earlier run")
    p.add_argument("--json", type=Path, default=ROOT / "bench/results/quantization.json", help="results document")
    p.add_argument("--update-readme", action="store_true", help="write the table into bench/README.md")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ckpt = args.checkpoint
    if args.export is None and not args.random_init:
        ckpt = ckpt or ROOT / "mnn_edge/assets/mnn_starter.pt"
        if not ckpt.is_file():
            raise MnnEdgeError(f"checkpoint not found: {ckpt} (pass --checkpoint, --export DIR or --random-init)")
    cfg = PipelineConfig(checkpoint=ckpt, work=args.work, n_eval=args.n_eval, eval_seed=args.eval_seed,
                         calib_synthetic=args.calib_synthetic,
                         timing=TimingConfig(warmup=args.warmup, runs=args.runs), batches=parse_batches(args.batch),
                         threads=args.threads, quantize=True, reuse=args.reuse, progress=not args.no_progress,
                         eval_source=None if args.eval_data is None else DataSource(
                             args.eval_data, args.eval_format, args.eval_subset, args.eval_pose_labels,
                             args.eval_limit),
                         calib_source=None if args.calib_data is None else DataSource(
                             args.calib_data, args.calib_format, args.calib_subset, limit=args.calib_limit))
    command = "python bench/quantization.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None
                                                                                   else argv))
    export = args.export if args.export is not None else export_all(cfg)
    busy_before = busy_processes()
    doc = measure(artifacts_in(export), heldout_folder(cfg), cfg, command)
    doc["busy_processes"] = {"before": busy_before, "after": busy_processes()}
    if args.export is not None:
        doc["checkpoint"] = f"artifacts in {args.export}"
    write_results(doc, args.json)
    from mnn_edge.report.measure import load_results

    run, acc, _ = load_results(args.json)
    block = render_block(doc, run, acc)
    print(block)
    print(f"wrote {args.json}")
    if args.update_readme:
        readme = ROOT / "bench/README.md"
        write_text_atomic(readme, replace_between_markers(readme.read_text(), block))
        print(f"updated {readme}")
    return 0


def accuracy_data_text(data: dict) -> str:
    if data.get("format") == "synthetic":
        return f"{data.get('n')} held-out synthetic faces (seed {data.get('seed')})"
    where = f"{data.get('n')} {data.get('format')} faces of {data.get('root')}"
    where += f" ({data['subset']} people)" if data.get("subset") else ""
    return where + (f", pose vs {data['pose_labels']}" if data.get("pose_labels") else "")


def render_block(doc: dict, run, acc) -> str:
    m = run.machine
    busy = doc.get("busy_processes", {})
    others = [f"start: {b}" for b in busy.get("before", [])] + [f"end: {b}" for b in busy.get("after", [])]
    lines = [f"Command: `{doc['command']}`", "",
             f"Run {run.created} on {m.get('cpu')} ({m.get('cores')} cores), ONNX Runtime "
             f"{m.get('libraries', {}).get('onnxruntime', '?')}, threads {run.config.get('threads')} (0 = all), "
             f"{run.config.get('runs')} interleaved timed rounds after {run.config.get('warmup')} warm-up; "
             f"weights: {doc.get('checkpoint')}; accuracy on {accuracy_data_text(acc.data)}.",
             "", "Other processes using ≥ 10% CPU (ps, lifetime average) at the start and end of the run: "
             + ("; ".join(f"`{o}`" for o in others) if others else "none"), "",
             quantization_table(run, acc), "", "Targets:"]
    lines += [c.line() for c in target_checks(run, acc)]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
