"""``mnn-report``: the speed/accuracy trade-off report (REPORT.md + tradeoff.png + machine.json).

Either reads results (``--results`` from the pipeline or bench/quantization.py, ``--bench`` from
mnn-bench or bench/gpu_check, ``--eval`` from mnn-eval) or makes them first from a checkpoint
(``--from-checkpoint``: export, quantize, evaluate, benchmark). Several files merge into one table,
so GPU results measured elsewhere join the CPU ones.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from mnn_edge.bench.suite import parse_batches
from mnn_edge.bench.timing import TimingConfig
from mnn_edge.cli_util import run_cli
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import check_distinct, claim_outputs
from mnn_edge.report.accuracy import split_accuracy_spec
from mnn_edge.report.make import MACHINE_NAME, PLOT_NAME, REPORT_NAME, RESULTS_NAME, ReportConfig, make_report
from mnn_edge.report.measure import HELDOUT_SEED, PipelineConfig


def check_paths(args: argparse.Namespace, pipeline: PipelineConfig | None) -> None:
    """No file the report writes (REPORT.md, tradeoff.png, machine.json, results.json) may be a file
    it reads, --force or not: ``--bench out/machine.json --force`` would read the benchmark and
    then write the machine record over it."""
    inputs = [*((p, "--results file") for p in args.results), *((p, "--bench file") for p in args.bench),
              *((p, "--tracking file") for p in args.tracking),
              *((split_accuracy_spec(s)[1], "--eval file") for s in args.evals),
              (args.from_checkpoint, "checkpoint")]
    names = [REPORT_NAME, PLOT_NAME, MACHINE_NAME] + ([RESULTS_NAME] if pipeline is not None else [])
    outputs = [(args.out, "--out"), *((args.out / n, "report file") for n in names)]
    check_distinct(inputs, outputs, output_folders_named=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mnn-report",
        description="Write REPORT.md (model, precision, backend, size, p50/p99 latency, FPS, pose MAE, landmark "
                    "NME, visibility accuracy; one row per artifact), tradeoff.png (accuracy vs FPS, Pareto front "
                    "marked) and machine.json. Reads result files, or with --from-checkpoint makes them: export, "
                    "quantize (FP16, INT8 both flavours), accuracy on held-out synthetic faces, interleaved latency.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--results", nargs="*", type=Path, default=[], help="results documents (pipeline, quantization)")
    p.add_argument("--bench", nargs="*", type=Path, default=[], help="mnn-bench / gpu_check JSON files")
    p.add_argument("--tracking", nargs="*", type=Path, default=[],
                   help="bench/tracking.py --json documents: mnn-run on moving faces, a section of their own")
    p.add_argument("--eval", dest="evals", nargs="*", default=[],
                   help="accuracy files: an accuracy set, or NAME=FILE for one mnn-eval --json result")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--from-checkpoint", type=Path, default=None, metavar="CKPT",
                     help="make the results from this checkpoint first (export, quantize, evaluate, benchmark)")
    src.add_argument("--from-random", action="store_true", help="the same from random weights (smoke test only)")
    g = p.add_argument_group("pipeline (with --from-checkpoint / --from-random)")
    g.add_argument("--work", type=Path, default=Path("bench/results/pipeline"), help="export/ and heldout/ go here")
    g.add_argument("--n-eval", type=int, default=200, help="held-out synthetic faces for accuracy")
    g.add_argument("--eval-seed", type=int, default=HELDOUT_SEED, help="seed of the held-out faces")
    g.add_argument("--calib-synthetic", type=int, default=128, help="synthetic calibration faces for INT8")
    g.add_argument("--no-quantize", action="store_true", help="FP32 artifacts only")
    g.add_argument("--runs", type=int, default=30, help="timed calls per artifact and batch size")
    g.add_argument("--seconds", type=float, default=None, help="instead of --runs: seconds per batch size")
    g.add_argument("--warmup", type=int, default=5, help="untimed calls per artifact")
    g.add_argument("--batch", default="1,4", help="batch sizes to time")
    g.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: all cores)")
    g.add_argument("--reuse", action="store_true", help="keep an existing export/ and heldout/ in --work")
    p.add_argument("--out", type=Path, default=Path("bench/report"), help="output folder")
    p.add_argument("--force", action="store_true", help="overwrite an existing REPORT.md")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def config_from_args(args: argparse.Namespace, argv: list[str] | None) -> ReportConfig:
    pipeline = None
    if args.from_checkpoint is not None or args.from_random:
        if args.from_checkpoint is not None and not args.from_checkpoint.is_file():
            raise MnnEdgeError(f"checkpoint not found: {args.from_checkpoint}")
        if args.n_eval < 1:
            raise MnnEdgeError(f"--n-eval must be >= 1, got {args.n_eval}")
        timing = TimingConfig(warmup=args.warmup, runs=None if args.seconds else args.runs, seconds=args.seconds)
        pipeline = PipelineConfig(checkpoint=args.from_checkpoint, work=args.work, n_eval=args.n_eval,
                                  eval_seed=args.eval_seed, calib_synthetic=args.calib_synthetic, timing=timing,
                                  batches=parse_batches(args.batch), threads=args.threads,
                                  quantize=not args.no_quantize, reuse=args.reuse, progress=not args.no_progress)
    elif not (args.results or args.bench or args.evals):
        raise MnnEdgeError("nothing to report: pass --results/--bench/--eval files, or --from-checkpoint CKPT")
    words = sys.argv[1:] if argv is None else argv
    check_paths(args, pipeline)
    return ReportConfig(results=tuple(args.results), bench=tuple(args.bench), evals=tuple(args.evals),
                        tracking=tuple(args.tracking),
                        pipeline=pipeline, out=args.out, force=args.force,
                        command="mnn-report " + " ".join(shlex.quote(w) for w in words))


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(build_parser().parse_args(argv), argv)
    with claim_outputs((cfg.out, "report folder")):
        return make_report(cfg)


def entry() -> int:
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(entry())
