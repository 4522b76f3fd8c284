"""The benchmark suite shared by ``mnn-bench``, ``mnn-report`` and the bench/ scripts: open the
artifacts, time them interleaved per batch size (see :mod:`mnn_edge.bench.timing`), one
:class:`BenchRun` with the machine record; the console table.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnn_edge.artifact import ModelKind
from mnn_edge.bench.machine import machine_record
from mnn_edge.bench.schema import Backend, BenchRecord, BenchRun, record_from_timing, with_ratios
from mnn_edge.bench.timing import Case, TimingConfig, time_cases
from mnn_edge.errors import MnnEdgeError
from mnn_edge.frame import BREAKDOWN_STAGES
from mnn_edge.runtime import backend_for, open_runner
from mnn_edge.runtime.base import Runner
from mnn_edge.runtime.inputs import random_input
from mnn_edge.runtime.remote.url import is_model_url, parse_model_url


@dataclass(frozen=True)
class BenchConfig:
    artifacts: tuple[Path | str, ...]  # files, or model URLs (str) of served models
    batches: tuple[int, ...]  # batch sizes, each timed in its own interleaved run
    timing: TimingConfig
    baseline: str | None  # display name or path of the artifact ratios are taken against
    breakdown_frames: Path | None  # time the end-to-end stages on these frames instead of random tensors
    threads: int  # ONNX Runtime / PyTorch intra-op threads; 0 = the library's default
    device: str  # auto | cpu | cuda
    torch_kind: ModelKind  # which head a .pt checkpoint is benchmarked as
    json_out: Path | None
    progress: bool


# A 256x256 crop is 0.75 MB of float32 input and the full model's heatmaps 17.8 MB per face: past
# this the run would only exhaust memory, so it is refused before anything is allocated.
MAX_BATCH = 256


def parse_batches(text: str) -> tuple[int, ...]:
    """``"1,4,8"`` -> ``(1, 4, 8)``; the ``--batch`` value of mnn-bench, mnn-report and bench/ scripts."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as e:
        raise MnnEdgeError(f"--batch takes comma-separated integers like 1,4,8, got '{text}'") from e
    if not values or min(values) < 1 or max(values) > MAX_BATCH:
        raise MnnEdgeError(f"--batch values must be between 1 and {MAX_BATCH}, got '{text}'")
    return values


def artifact_name(path: Path | str, backend: str) -> str:
    """``export/pose.int8.onnx`` -> ``pose.int8``; engines and checkpoints get their backend appended;
    ``grpc://h:8001/pose`` -> ``pose@grpc``."""
    if is_model_url(path):
        url = parse_model_url(path)
        return f"{url.model}@{url.scheme}"
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return stem if backend == Backend.ONNXRUNTIME.value else f"{stem}@{backend}"


def int8_flavour(runner: Runner) -> str:
    """"cpu" / "trt" for INT8 artifacts, "" otherwise: from the artifact's metadata."""
    flavour = runner.metadata.flavour
    return "" if flavour is None else flavour.value


def open_all(cfg: BenchConfig) -> list[tuple[str, Runner]]:
    """Open every artifact once (they stay loaded, so rounds can alternate between them)."""
    if cfg.threads and any(backend_for(a) == "pytorch" for a in cfg.artifacts):
        import torch

        torch.set_num_threads(cfg.threads)
    opened, names = [], set()
    for path in cfg.artifacts:
        backend = backend_for(path)
        kwargs: dict = {}
        if backend == "onnxruntime":
            kwargs["threads"] = cfg.threads
        if backend == "pytorch":
            kwargs["kind"] = cfg.torch_kind
        runner = open_runner(path, device=cfg.device, **kwargs) if backend != "tensorrt" else open_runner(path)
        name = artifact_name(path, backend)
        while name in names:  # same file name in two folders
            name += "'"
        names.add(name)
        opened.append((name, runner))
    return opened


def resolve_baseline(cfg: BenchConfig, opened: list[tuple[str, Runner]]) -> str:
    if cfg.baseline is None:
        return opened[0][0]
    for name, runner in opened:
        if cfg.baseline in (name, str(runner.path)) or (isinstance(runner.path, Path)
                                                        and Path(cfg.baseline).resolve() == runner.path.resolve()):
            return name
    raise MnnEdgeError(f"--baseline {cfg.baseline} is not one of the artifacts ({', '.join(n for n, _ in opened)})")


def synthetic_batch(runner: Runner, batch: int) -> np.ndarray:
    """A fixed normalised-looking input: latency does not depend on the pixel values."""
    size = runner.metadata.input_size
    return random_input(batch, size, seed=batch)


def bench(cfg: BenchConfig, opened: list[tuple[str, Runner]]) -> list[BenchRecord]:
    """Every batch size in turn; within one, every artifact interleaved. One record per (artifact, batch)."""
    from mnn_edge.bench.breakdown import FramePipeline, load_frames

    frames = load_frames(cfg.breakdown_frames) if cfg.breakdown_frames else None
    records = []
    for batch in cfg.batches:
        usable = [(n, r) for n, r in opened if r.input_spec.max_batch is None or batch <= r.input_spec.max_batch]
        skipped = [n for n, _ in opened if all(n != u for u, _ in usable)]
        if skipped:
            print(f"note: batch {batch} skipped for {', '.join(skipped)} (above the engine's max batch)",
                  file=sys.stderr)
        if not usable:
            continue
        pipes = {}
        cases = []
        for name, runner in usable:
            if frames is not None:
                pipes[name] = FramePipeline(runner, frames, batch)
                cases.append(Case(name, pipes[name], batch))
            else:
                x = synthetic_batch(runner, batch)
                cases.append(Case(name, lambda r=runner, x=x: r.infer(x), batch))
        if cfg.progress:
            print(f"batch {batch}: {len(cases)} artifact(s), "
                  + (f"{cfg.timing.runs} runs" if cfg.timing.seconds is None else f"{cfg.timing.seconds:g} s"),
                  file=sys.stderr)
        for (name, runner), timing in zip(usable, time_cases(cases, cfg.timing, progress=cfg.progress)):
            meta = runner.metadata
            kind = "pose" if meta.kind is ModelKind.POSE else "full"
            bd = pipes[name].breakdown(skip=cfg.timing.warmup) if name in pipes else None
            records.append(record_from_timing(timing, artifact=runner.path, model=kind,
                                              precision=meta.precision.value, backend=runner.backend,
                                              device=runner.device, flavour=int8_flavour(runner),
                                              breakdown=bd))
    return records


def format_table(records: list[BenchRecord], baseline: str | None) -> str:
    head = f"{'artifact':<22} {'batch':>5} {'mean':>8} {'p50':>8} {'p90':>8} {'p99':>8} {'min':>8} {'max':>8} " \
           f"{'img/s':>8} {'vs ' + (baseline or 'base'):>14}"
    lines = [head, "-" * len(head)]
    for r in records:
        s = r.latency_ms
        ratio = f"{r.ratio_to_baseline['p50']:.3f}" if r.ratio_to_baseline else "-"
        lines.append(f"{r.name:<22} {r.batch:>5} {s.mean:>8.2f} {s.p50:>8.2f} {s.p90:>8.2f} {s.p99:>8.2f} "
                     f"{s.min:>8.2f} {s.max:>8.2f} {r.throughput_ips:>8.1f} {ratio:>14}")
    lines.append("latency in ms per batch (ratio: p50 / baseline p50 at the same batch, same interleaved run)")
    bds = [r for r in records if r.breakdown is not None]
    if bds:
        lines.append("")
        lines.append(f"{'breakdown (mean ms)':<22} {'batch':>5} " + " ".join(f"{s:>11}" for s in BREAKDOWN_STAGES))
        for r in bds:
            cells = []
            for stage in BREAKDOWN_STAGES:
                st = r.breakdown.stages.get(stage)
                cells.append(f"{st.mean:>11.2f}" if st is not None else f"{'folded':>11}")
            lines.append(f"{r.name:<22} {r.batch:>5} " + " ".join(cells))
        lines.append(f"note: {bds[0].breakdown.note}")
    return "\n".join(lines)


def run_bench(cfg: BenchConfig, tool: str = "mnn-bench") -> BenchRun:
    """Open, time, close; the whole run as a :class:`BenchRun` (what mnn-report and scripts call)."""
    opened = open_all(cfg)
    try:
        baseline = resolve_baseline(cfg, opened)
        records = with_ratios(bench(cfg, opened), baseline)
    finally:
        for _, r in opened:
            r.close()
    conf = {"warmup": cfg.timing.warmup, "runs": cfg.timing.runs, "seconds": cfg.timing.seconds,
            "batches": list(cfg.batches), "threads": cfg.threads, "device": cfg.device,
            "breakdown": cfg.breakdown_frames is not None, "interleaved": True,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "")}
    return BenchRun(tuple(records), machine=machine_record(), config=conf, baseline=baseline, tool=tool)
