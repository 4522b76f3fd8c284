"""``mnn-bench ARTIFACT...``: latency and throughput of artifacts measured side by side.

For each batch size, all artifacts are timed interleaved round by round (see
:mod:`mnn_edge.bench.timing`), so ratios against the baseline hold on a noisy machine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mnn_edge.artifact import ModelKind
from mnn_edge.bench.machine import format_machine
from mnn_edge.bench.schema import write_run
from mnn_edge.bench.suite import BenchConfig, format_table, parse_batches, run_bench
from mnn_edge.bench.timing import TimingConfig
from mnn_edge.cli_util import run_cli
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import check_distinct, claim_outputs, refuse_existing
from mnn_edge.runtime import backend_for
from mnn_edge.runtime.remote.url import artifact_arg, is_model_url


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mnn-bench",
        description="Time artifacts (.onnx via ONNX Runtime, .plan/.engine via TensorRT, .pt via PyTorch) side by "
                    "side: warm-up, then timed rounds in which every artifact runs once (the order rotates), so "
                    "machine noise hits all of them alike. Prints latency mean/p50/p90/p99/min/max per batch, "
                    "throughput and the ratio to the baseline; --json writes the same with the machine record.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("artifacts", nargs="+", type=artifact_arg, metavar="ARTIFACT",
                   help="artifacts to time; a served model is grpc://HOST:PORT/MODEL or http://HOST:PORT/MODEL")
    p.add_argument("--batch", default="1", help="comma-separated batch sizes, e.g. 1,4,8")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--runs", type=int, default=50, help="timed calls per artifact and batch size")
    how.add_argument("--seconds", type=float, default=None,
                     help="instead of --runs: time each batch size for this long (all artifacts together)")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls per artifact before timing")
    p.add_argument("--baseline", default=None,
                   help="artifact (path or name like pose.fp32) that ratios are taken against; default: the first")
    p.add_argument("--breakdown", action="store_true",
                   help="time the end-to-end path on real frames: preprocess / h2d / infer / d2h / postprocess")
    p.add_argument("--frames", type=Path, default=None, help="folder of images for --breakdown")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0: the library's default)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device for .onnx and .pt")
    p.add_argument("--torch-kind", choices=[k.value for k in ModelKind], default=ModelKind.FULL.value,
                   help="which model a .pt checkpoint is timed as (pose = encoder-only)")
    p.add_argument("--json", dest="json_out", type=Path, default=None, help="write the results here")
    p.add_argument("--force", action="store_true", help="replace an existing --json file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    if args.breakdown and args.frames is None:
        raise MnnEdgeError("--breakdown needs --frames DIR (a folder of images)")
    if args.frames is not None and not args.breakdown:
        raise MnnEdgeError("--frames is only used with --breakdown")
    if args.threads < 0:
        raise MnnEdgeError(f"--threads must be >= 0, got {args.threads}")
    check_distinct([(None if is_model_url(a) else a, "artifact") for a in args.artifacts],
                   [(args.json_out, "--json")])
    if args.json_out is not None:
        refuse_existing([args.json_out], args.force)
    for a in args.artifacts:
        backend_for(a)  # unknown suffix -> one clear error before anything loads
        if not is_model_url(a) and not a.is_file():
            raise MnnEdgeError(f"artifact not found: {a}")
    timing = TimingConfig(warmup=args.warmup, runs=None if args.seconds else args.runs, seconds=args.seconds)
    return BenchConfig(artifacts=tuple(args.artifacts), batches=parse_batches(args.batch), timing=timing,
                       baseline=args.baseline, breakdown_frames=args.frames if args.breakdown else None,
                       threads=args.threads, device=args.device, torch_kind=ModelKind(args.torch_kind),
                       json_out=args.json_out, progress=not args.no_progress)


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(build_parser().parse_args(argv))
    with claim_outputs((cfg.json_out, "JSON output")):
        run = run_bench(cfg)
        print(format_machine(run.machine))
        print(format_table(list(run.records), run.baseline))
        if cfg.json_out is not None:
            write_run(run, cfg.json_out)
            print(f"wrote {cfg.json_out}")
    return 0


def entry() -> int:
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(entry())
