"""``bench/gpu_check``: the one command that verifies the TensorRT path on real hardware.

On a machine with an NVIDIA GPU and TensorRT (a Jetson, a workstation) it builds fp32 / fp16 /
int8 engines for both models, runs each on the same inputs as ONNX Runtime CPU on the fp32 ONNX,
checks the differences against tolerances, times each engine with the Python runtime (the shared
timing core ``mnn_edge.bench.timing``) and, where ``trtexec`` exists, with trtexec on the same
plan, and writes one Markdown report (plus the same numbers as JSON). Exit code 0 = every check
passed, 1 = a check failed, so CI on a GPU runner can use it as-is.

Outputs are compared with the library's one comparator and tolerance table
(``mnn_edge.runtime.compare``): mean over faces (the max is reported too) of the pose angles in
degrees and of the landmark Euclidean distance in crop pixels, engine vs ONNX Runtime CPU fp32:
fp32 0.05 deg / 0.1 px, fp16 0.25 deg / 0.5 px, int8 1 deg / 2 px.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from mnn_edge.artifact import MODEL_NAMES, Precision, kind_of
from mnn_edge.cli_util import run_cli
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import write_text_atomic
from mnn_edge.runtime.compare import PRECISION_TOLERANCE, compare_outputs
from mnn_edge.runtime.inputs import random_input
from mnn_edge.runtime.tensorrt.build import build_engine, source_for_export
from mnn_edge.runtime.tensorrt.capabilities import Capabilities, import_tensorrt
from mnn_edge.runtime.tensorrt.config import BuildConfig, config_from_recipe


@dataclass
class EngineResult:
    model: str
    precision: str
    source: str = ""
    plan: str = ""
    status: str = "ok"  # ok | FAIL | skipped | error
    note: str = ""
    build_s: float | None = None
    plan_mb: float | None = None
    angle_mean_deg: float | None = None
    angle_max_deg: float | None = None
    landmark_mean_px: float | None = None
    landmark_max_px: float | None = None
    timing_ms: dict = field(default_factory=dict)  # case -> {"p50":, "p90":, "fps":}
    trtexec: dict = field(default_factory=dict)  # batch -> {"median_ms":, "qps":}


def compare(ref: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> dict[str, float]:
    """The report's fields from the library's one comparator (mnn_edge.runtime.compare)."""
    d = compare_outputs(ref, got)
    out = {"angle_mean_deg": d.pose_deg_mean, "angle_max_deg": d.pose_deg_max}
    if d.landmark_px_mean is not None:
        out["landmark_mean_px"], out["landmark_max_px"] = d.landmark_px_mean, d.landmark_px_max
    return out


def within_tolerance(r: EngineResult) -> bool:
    tol = PRECISION_TOLERANCE[Precision(r.precision)]
    ok = r.angle_mean_deg is not None and r.angle_mean_deg <= tol.pose_deg
    if r.landmark_mean_px is not None:
        ok = ok and r.landmark_mean_px <= tol.landmark_px
    return ok


def check_inputs(n: int, size: int, meta, random: bool) -> np.ndarray:
    """Synthetic faces (realistic activations matter for INT8), or noise with --random-inputs."""
    if random:
        return random_input(n, size, seed=0)
    from mnn_edge.quantize.calibration import inputs_from_synthetic

    return inputs_from_synthetic(n, meta, seed=4321, progress=False)


def run_batches(runner, x: np.ndarray, batch: int) -> dict[str, np.ndarray]:
    from mnn_edge.runtime.chunks import infer_in_chunks

    return infer_in_chunks(runner, x, max_rows=batch)


def time_runners(cases: list[tuple[str, object, np.ndarray]], warmup: int, runs: int) -> dict:
    """All timing goes through the shared core (interleaved rounds, percentiles): case -> CaseTiming."""
    from mnn_edge.bench.timing import Case, TimingConfig, time_cases

    timed = time_cases([Case(name, (lambda r=r, x=x: r.infer(x)), len(x)) for name, r, x in cases],
                       TimingConfig(warmup=warmup, runs=runs))
    return {t.name: t for t in timed}


def summary(timing) -> dict:
    return {"p50": timing.stats.p50, "p90": timing.stats.p90, "fps": timing.throughput}


def bench_record(model: str, case: str, timing, artifact: str | Path, device: str):
    """A record in mnn-bench's schema, so ``mnn-report --bench`` merges GPU results with CPU ones."""
    from mnn_edge.bench.schema import record_from_timing

    kind = kind_of(model).value
    words = case.split()  # "fp16 b1", "fp16 b1 graph", "onnxruntime-cpu fp32 b1"
    if words[0] == "onnxruntime-cpu":
        return record_from_timing(replace(timing, name=f"{model}@onnxruntime-cpu"), artifact=artifact, model=kind,
                                  precision="fp32", backend="onnxruntime")
    name = f"{model}.{words[0]}@tensorrt" + ("+cudagraph" if "graph" in words else "")
    return record_from_timing(replace(timing, name=name), artifact=artifact, model=kind,
                              precision=words[0], backend="tensorrt", device=device)


TRTEXEC_MEDIAN = re.compile(r"GPU Compute Time: .*?median = ([0-9.]+) ms")
TRTEXEC_QPS = re.compile(r"Throughput: ([0-9.]+) qps")


def trtexec_times(plan: Path, input_name: str, shape: tuple[int, ...], dla_core: int | None) -> dict:
    exe = shutil.which("trtexec") or next((p for p in ("/usr/src/tensorrt/bin/trtexec",) if Path(p).is_file()), None)
    if exe is None:
        return {}
    cmd = [exe, f"--loadEngine={plan}", f"--shapes={input_name}:{'x'.join(map(str, shape))}", "--warmUp=500",
           "--duration=5", "--useSpinWait"]
    if dla_core is not None:
        cmd.append(f"--useDLACore={dla_core}")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": str(e)}
    m, q = TRTEXEC_MEDIAN.search(out), TRTEXEC_QPS.search(out)
    if not m:
        return {"error": "could not parse trtexec output"}
    return {"median_ms": float(m.group(1)), "qps": float(q.group(1)) if q else None}


def machine_facts() -> dict:
    from mnn_edge.runtime.tensorrt.cuda_memory import open_cuda
    from mnn_edge.runtime.tensorrt.loader import machine_gpu

    trt = import_tensorrt()
    cuda = open_cuda()
    try:
        gpu = machine_gpu(cuda)
        backend = cuda.backend
    finally:
        cuda.close()
    caps = Capabilities.of(trt)
    jetpack = Path("/etc/nv_tegra_release")
    return {"tensorrt": caps.version, "gpu": gpu.name, "compute_capability": gpu.compute_capability,
            "cuda_python_backend": backend, "strongly_typed_only": caps.strongly_typed_only,
            "l4t": jetpack.read_text().splitlines()[0] if jetpack.is_file() else "",
            "trtexec": shutil.which("trtexec") or "", "python": sys.version.split()[0]}


def check_model(export: Path, model: str, precisions, cfg: BuildConfig, args, caps, records: list,
                device: str = "gpu") -> list[EngineResult]:
    """Build, compare and time every precision of one model; timings are appended to ``records``."""
    from mnn_edge.runtime.onnxruntime_backend import OnnxRuntimeRunner
    from mnn_edge.runtime.tensorrt.runner import TensorRTRunner

    fp32 = export / f"{model}.onnx"
    results = []
    with OnnxRuntimeRunner(fp32) as ort_runner:
        meta = ort_runner.metadata
        x = check_inputs(args.inputs, meta.input_size, meta, args.random_inputs)
        ref = run_batches(ort_runner, x, cfg.max_batch)
        runners = []
        for p in precisions:
            r = EngineResult(model, p.value)
            results.append(r)
            src = source_for_export(export, model, p, caps)
            r.source = str(src)
            if not src.is_file():
                r.status, r.note = "skipped", f"{src.name} not found (mnn-export --fp16 --int8 writes it)"
                continue
            try:
                t0 = time.perf_counter()
                plan = build_engine(src, cfg.with_(precision=p, force=True))
                r.build_s = time.perf_counter() - t0
                r.plan, r.plan_mb = str(plan), plan.stat().st_size / 1e6
                runner = TensorRTRunner(plan)
                graph_runner = TensorRTRunner(plan, cuda_graph=True) if args.cuda_graph else None
            except MnnEdgeError as e:
                r.status, r.note = "error", str(e)
                continue
            got = run_batches(runner, x, cfg.max_batch)
            for k, v in compare(ref, got).items():
                setattr(r, k, v)
            if not within_tolerance(r):
                r.status = "FAIL"
                ang, px = PRECISION_TOLERANCE[p].pose_deg, PRECISION_TOLERANCE[p].landmark_px
                r.note = f"tolerance {ang} deg / {px} px (mean)"
            runners.append((r, runner, graph_runner))
        # Timing: every engine of this model, batch 1 and max batch, interleaved in one run.
        cases = []
        for r, runner, graph_runner in runners:
            cases.append((f"{r.precision} b1", runner, x[:1]))
            if cfg.max_batch > 1:
                xb = np.concatenate([x] * (cfg.max_batch // len(x) + 1))[:cfg.max_batch]
                cases.append((f"{r.precision} b{cfg.max_batch}", runner, xb))
            if graph_runner is not None and graph_runner.cuda_graph:
                cases.append((f"{r.precision} b1 graph", graph_runner, x[:1]))
        if cases:
            timed = time_runners(cases, args.warmup, args.runs)
            for r, _, _ in runners:
                mine = {k: t for k, t in timed.items() if k.split()[0] == r.precision}
                r.timing_ms = {k: summary(t) for k, t in mine.items()}
                records += [bench_record(model, k, t, r.plan, device) for k, t in mine.items()]
        cpu = time_runners([("onnxruntime-cpu fp32 b1", ort_runner, x[:1])], max(1, args.warmup // 4),
                           max(5, args.runs // 10))
        records += [bench_record(model, k, t, fp32, "cpu") for k, t in cpu.items()]
        for r, runner, graph_runner in runners:
            r.timing_ms.update({k: summary(t) for k, t in cpu.items()})
            if not args.no_trtexec:
                for b in sorted({1, cfg.max_batch}):
                    t = trtexec_times(Path(r.plan), runner.input_spec.name,
                                      (b, *runner.input_spec.shape[1:]), cfg.dla_core)
                    if t:
                        r.trtexec[str(b)] = t
            runner.close()
            if graph_runner is not None:
                graph_runner.close()
    return results


def _fmt(v, spec=".3f") -> str:
    return "–" if v is None else format(v, spec)


def markdown(machine: dict, results: list[EngineResult], cfg: BuildConfig, args) -> str:
    lines = ["# TensorRT check (bench/gpu_check)", "",
             f"TensorRT {machine['tensorrt']} on {machine['gpu']} (compute capability "
             f"{machine['compute_capability']}), CUDA via {machine['cuda_python_backend']}"
             + (f", {machine['l4t']}" if machine.get("l4t") else "") + ".", "",
             f"Command: `{' '.join(['bench/gpu_check', *args.argv])}`", "",
             "## Accuracy: engine vs ONNX Runtime CPU (fp32 ONNX), same inputs", "",
             f"{args.inputs} {'random' if args.random_inputs else 'synthetic-face'} inputs; mean (max) |Δ| of "
             "yaw/pitch/roll in degrees and of landmark position in pixels. Tolerance (mean): "
             + ", ".join(f"{p.value} {t.pose_deg}° / {t.landmark_px} px"
                         for p, t in PRECISION_TOLERANCE.items()) + ".", "",
             "| model | precision | status | Δ angle ° | Δ landmarks px | build s | plan MB | source |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        ang = f"{_fmt(r.angle_mean_deg)} ({_fmt(r.angle_max_deg)})" if r.angle_mean_deg is not None else "–"
        lm = f"{_fmt(r.landmark_mean_px)} ({_fmt(r.landmark_max_px)})" if r.landmark_mean_px is not None else "–"
        status = r.status + (f": {r.note}" if r.note else "")
        lines.append(f"| {r.model} | {r.precision} | {status} | {ang} | {lm} | {_fmt(r.build_s, '.1f')} | "
                     f"{_fmt(r.plan_mb, '.1f')} | {Path(r.source).name} |")
    lines += ["", "## Latency (Python runtime, mnn_edge.bench.timing: interleaved, p50 / p90 ms, images/s)", "",
              f"Batch profile {cfg.min_batch}..{cfg.max_batch}; {args.runs} timed rounds after {args.warmup} "
              "warm-up per case; ONNX Runtime CPU measured separately with fewer rounds. Ratios are to the "
              "fp32 engine at batch 1 of the same model (its p50 / this p50; > 1 = faster per call).", "",
              "| model | case | p50 ms | p90 ms | images/s | fp32 b1 ratio | trtexec median ms (qps) |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for model in dict.fromkeys(r.model for r in results):
        rows = [r for r in results if r.model == model and r.timing_ms]
        base = next((r.timing_ms.get("fp32 b1", {}).get("p50") for r in rows if r.precision == "fp32"), None)
        seen = set()
        for r in rows:
            for case, t in r.timing_ms.items():
                if case in seen:
                    continue
                seen.add(case)
                ratio = f"{base / t['p50']:.2f}" if base and t["p50"] else "–"
                b = case.split()[-1].lstrip("b") if case.split()[-1].startswith("b") else ""
                te = r.trtexec.get(b) if not case.startswith("onnxruntime") and not case.endswith("graph") else None
                tes = f"{te['median_ms']:.3f} ({_fmt(te.get('qps'), '.0f')})" if te and "median_ms" in te else "–"
                lines.append(f"| {model} | {case} | {t['p50']:.3f} | {t['p90']:.3f} | {t['fps']:.1f} | {ratio} | "
                             f"{tes} |")
    passed = all(r.status in ("ok", "skipped") for r in results)
    lines += ["", f"**Result: {'PASS' if passed else 'FAIL'}** "
              f"({sum(r.status == 'ok' for r in results)} ok, {sum(r.status == 'FAIL' for r in results)} failed, "
              f"{sum(r.status == 'error' for r in results)} errors, {sum(r.status == 'skipped' for r in results)} "
              "skipped).", ""]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/gpu_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export", type=Path, default=None,
                   help="folder with pose/mnn .onnx, .fp16.onnx, .int8-trt.onnx (default: export them into "
                        "OUT/export first, with --checkpoint or --random-init)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", type=Path, help="checkpoint to export when --export is not given")
    src.add_argument("--random-init", action="store_true", help="export random weights (smoke test only)")
    p.add_argument("--out", type=Path, default=Path("bench/results/gpu_check"), help="engines + report folder")
    p.add_argument("--recipe", type=Path, default=None, help="engines/*.toml recipe for the build settings")
    p.add_argument("--max-batch", type=int, default=None,
                   help="profile max batch, also timed besides batch 1 (default: the recipe's, else 4)")
    p.add_argument("--precisions", default="fp32,fp16,int8", help="comma-separated precisions to check")
    p.add_argument("--models", default="pose,mnn", help="comma-separated models to check")
    p.add_argument("--inputs", type=int, default=32, help="number of check inputs (synthetic faces)")
    p.add_argument("--random-inputs", action="store_true", help="check on noise instead of synthetic faces")
    p.add_argument("--runs", type=int, default=200, help="timed rounds per case")
    p.add_argument("--warmup", type=int, default=20, help="untimed rounds per case")
    p.add_argument("--no-cuda-graph", dest="cuda_graph", action="store_false", help="skip the CUDA-graph case")
    p.add_argument("--no-trtexec", action="store_true", help="do not time with trtexec even if it exists")
    return p


def export_first(args) -> Path:
    """What ``mnn-export --fp16 --int8 --calib-synthetic 64`` does, into OUT/export."""
    from mnn_edge.checkpoint import default_checkpoint_path
    from mnn_edge.export.pipeline import ExportConfig, run_export
    from mnn_edge.quantize.pipeline import Calibration, QuantizeConfig

    export = args.out / "export"
    checkpoint = None if args.random_init else (args.checkpoint or default_checkpoint_path())
    print(f"exporting {checkpoint or 'random weights'} -> {export}", file=sys.stderr)
    quantize = QuantizeConfig(int8=True, fp16=True, calibration=Calibration(synthetic=64),
                              ranges_dir=args.out / "calibration", force=True)
    run_export(ExportConfig(checkpoint=checkpoint, random_init=args.random_init, out=export, num_landmarks=None,
                            keep_heatmaps=False, force=True, quantize=quantize))
    return export


def gpu_label(machine: dict) -> str:
    return str(machine.get("gpu") or "gpu")


def write_bench_run(path: Path, records: list, machine: dict, args) -> None:
    from mnn_edge.bench.machine import machine_record
    from mnn_edge.bench.schema import BenchRun, write_run

    config = {"warmup": args.warmup, "runs": args.runs, "seconds": None, "batches": sorted({r.batch for r in records}),
              "threads": 0, "device": "cuda", "breakdown": False, "interleaved": True}
    write_run(BenchRun(records=tuple(records), machine={**machine_record(), "gpu_check": machine}, config=config,
                       tool="gpu_check"), path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    precisions = [Precision(p.strip()) for p in args.precisions.split(",") if p.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(MODEL_NAMES.values()))
    if unknown:
        raise MnnEdgeError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODEL_NAMES.values())}")
    machine = machine_facts()  # fails first, in one line, without TensorRT / CUDA / a GPU
    caps = Capabilities.of(import_tensorrt())
    export = args.export if args.export is not None else export_first(args)
    base = config_from_recipe(args.recipe) if args.recipe else BuildConfig()
    max_batch = args.max_batch or (base.max_batch if args.recipe else 4)
    cfg = base.with_(out_dir=args.out / "engines", timing_cache=args.out / "engines" / "timing.cache",
                     max_batch=max_batch, opt_batch=min(base.opt_batch, max_batch),
                     min_batch=min(base.min_batch, max_batch), force=True)
    results: list[EngineResult] = []
    records: list = []
    for model in models:
        if not (export / f"{model}.onnx").is_file():
            results += [EngineResult(model, p.value, status="skipped", note=f"{model}.onnx not in {export}")
                        for p in precisions]
            continue
        results += check_model(export, model, precisions, cfg, args, caps, records, gpu_label(machine))
    report = args.out / "gpu_check.md"
    write_text_atomic(report, markdown(machine, results, cfg, args))
    write_text_atomic(args.out / "gpu_check.json",
                      json.dumps({"machine": machine, "results": [asdict(r) for r in results]}, indent=2) + "\n")
    write_bench_run(args.out / "bench.json", records, machine, args)
    print(f"wrote {report} (+ gpu_check.json, bench.json for mnn-report --bench)")
    return 0 if all(r.status in ("ok", "skipped") for r in results) else 1


def entry() -> int:
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(entry())
