"""What ``bench/gpu_check`` does (the script is only its flags): the one command that verifies the
TensorRT path on real hardware.

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

import json
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from mnn_edge.artifact import Precision, kind_of
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import write_text_atomic
from mnn_edge.runtime.compare import PRECISION_TOLERANCE, compare_outputs
from mnn_edge.runtime.inputs import random_input
from mnn_edge.runtime.tensorrt.build import build_engine, source_for_export
from mnn_edge.runtime.tensorrt.capabilities import Capabilities, import_tensorrt
from mnn_edge.runtime.tensorrt.config import BuildConfig


@dataclass(frozen=True)
class GpuCheckConfig:
    """What one check does; ``argv`` is the command line the report quotes."""

    export: Path  # folder with pose/mnn .onnx, .fp16.onnx, .int8-trt.onnx
    out: Path  # engines + report folder
    precisions: tuple[Precision, ...]
    models: tuple[str, ...]
    build: BuildConfig  # the engines' build settings (profile, out_dir, timing cache)
    inputs: int = 32  # check inputs
    random_inputs: bool = False  # noise instead of synthetic faces
    runs: int = 200  # timed rounds per case
    warmup: int = 20  # untimed rounds per case
    cuda_graph: bool = True  # also time the CUDA-graph case
    no_trtexec: bool = False  # do not time with trtexec even if it exists
    argv: tuple[str, ...] = ()


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


def check_model(export: Path, model: str, precisions, cfg: BuildConfig, args: GpuCheckConfig, caps, records: list,
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


def markdown(machine: dict, results: list[EngineResult], cfg: BuildConfig, args: GpuCheckConfig) -> str:
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


def gpu_label(machine: dict) -> str:
    """The device name bench records carry for the engines."""
    return str(machine.get("gpu") or "gpu")


def write_bench_run(path: Path, records: list, machine: dict, args: GpuCheckConfig) -> None:
    from mnn_edge.bench.machine import machine_record
    from mnn_edge.bench.schema import BenchRun, write_run

    config = {"warmup": args.warmup, "runs": args.runs, "seconds": None, "batches": sorted({r.batch for r in records}),
              "threads": 0, "device": "cuda", "breakdown": False, "interleaved": True}
    write_run(BenchRun(records=tuple(records), machine={**machine_record(), "gpu_check": machine}, config=config,
                       tool="gpu_check"), path)


def run_gpu_check(cfg: GpuCheckConfig, machine: dict) -> int:
    """Check every model at every precision; write gpu_check.md, gpu_check.json and bench.json into
    ``cfg.out``. 0 = every check passed (or was skipped), 1 = one failed."""
    caps = Capabilities.of(import_tensorrt())
    results: list[EngineResult] = []
    records: list = []
    for model in cfg.models:
        if not (cfg.export / f"{model}.onnx").is_file():
            results += [EngineResult(model, p.value, status="skipped", note=f"{model}.onnx not in {cfg.export}")
                        for p in cfg.precisions]
            continue
        results += check_model(cfg.export, model, cfg.precisions, cfg.build, cfg, caps, records, gpu_label(machine))
    report = cfg.out / "gpu_check.md"
    write_text_atomic(report, markdown(machine, results, cfg.build, cfg))
    write_text_atomic(cfg.out / "gpu_check.json",
                      json.dumps({"machine": machine, "results": [asdict(r) for r in results]}, indent=2) + "\n")
    write_bench_run(cfg.out / "bench.json", records, machine, cfg)
    print(f"wrote {report} (+ gpu_check.json, bench.json for mnn-report --bench)")
    return 0 if all(r.status in ("ok", "skipped") for r in results) else 1
