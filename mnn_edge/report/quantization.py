"""The quantization comparison: FP32 vs FP16 vs INT8 (both flavours) for each model, and the issue's targets.

Reads the results document of :mod:`mnn_edge.report.measure` (latency of all artifacts measured
interleaved in one run, accuracy on one held-out set) and turns it into a Markdown table plus a
pass/fail line per target. ``bench/quantization.py`` prints it and writes it into bench/README.md,
so the figures there are the run's, never copied by hand.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from mnn_edge.artifact import MODEL_NAMES, ArtifactName, Flavour, ModelKind, Precision
from mnn_edge.bench.schema import BenchRecord, BenchRun
from mnn_edge.report.accuracy import AccuracySet

# Targets of the quantization issue (measured on this machine by the benchmark, not asserted in tests).
INT8_LATENCY_RATIO = 0.40  # encoder-only INT8 (CPU flavour) p50 / FP32 p50 at batch 1
INT8_LATENCY_STRETCH = 0.35
INT8_MAX_MAE_INCREASE = 0.5  # degrees
INT8_MAX_NME_INCREASE = 0.3  # percentage points of inter-ocular NME
FP16_MAX_MAE_CHANGE = 0.05  # degrees
README_BEGIN = "<!-- quantization-table:begin (written by bench/quantization.py; do not edit by hand) -->"
README_END = "<!-- quantization-table:end -->"


@dataclass(frozen=True)
class Check:
    what: str
    value: float | None
    limit: float
    ok: bool | None  # None: could not be measured (artifact or metric missing)

    def line(self) -> str:
        state = {True: "MET", False: "NOT MET", None: "not measured"}[self.ok]
        val = "—" if self.value is None else f"{self.value:.3f}"
        return f"- {self.what}: {val} (target ≤ {self.limit:g}) — **{state}**"


def _fp32(records: list[BenchRecord], rec: BenchRecord) -> BenchRecord | None:
    return next((r for r in records if r.model == rec.model and r.precision == "fp32" and r.batch == rec.batch
                 and r.backend == rec.backend and r.device == rec.device), None)


def _delta(acc: dict, name: str, base: str, key: str, scale: float = 1.0) -> float | None:
    a, b = acc.get(name), acc.get(base)
    if a is None or b is None or a.get(key) is None or b.get(key) is None:
        return None
    return (a.get(key) - b.get(key)) * scale


def quantization_table(run: BenchRun, accuracy: AccuracySet) -> str:
    """One line per artifact and batch size: size, p50, p99, ratio to FP32, MAE and NME with their change."""
    acc = accuracy.by_name()
    recs = list(run.records)
    lines = ["| artifact | precision | batch | size MB | p50 ms | p99 ms | × FP32 p50 | MAE ° | Δ MAE ° | NME % "
             "| Δ NME pts | vis acc % |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    order = {"fp32": 0, "fp16": 1, "int8": 2}
    for r in sorted(recs, key=lambda r: (r.batch, r.model != "pose", order.get(r.precision, 9), r.flavour, r.name)):
        base = _fp32(recs, r)
        ratio = f"{r.latency_ms.p50 / base.latency_ms.p50:.3f}" if base else "—"
        a = acc.get(r.name)
        base_name = base.name if base else ""

        def fmt(v: float | None, spec: str) -> str:
            return "—" if v is None else format(v, spec)

        mae = None if a is None else a.get("mae")
        nme = None if a is None or a.get("nme") is None else a.get("nme") * 100
        vis = None if a is None or a.get("vis_acc") is None else a.get("vis_acc") * 100
        prec = f"{r.precision} ({r.flavour})" if r.flavour else r.precision
        lines.append(f"| {r.name} | {prec} | {r.batch} | {r.size_bytes / 1e6:.1f} | {r.latency_ms.p50:.1f} "
                     f"| {r.latency_ms.p99:.1f} | {ratio} | {fmt(mae, '.3f')} "
                     f"| {fmt(_delta(acc, r.name, base_name, 'mae'), '+.3f')} | {fmt(nme, '.2f')} "
                     f"| {fmt(_delta(acc, r.name, base_name, 'nme', 100), '+.3f')} | {fmt(vis, '.1f')} |")
    return "\n".join(lines)


def target_checks(run: BenchRun, accuracy: AccuracySet) -> list[Check]:
    acc = accuracy.by_name()
    recs = {(r.name, r.batch): r for r in run.records}
    checks = []
    pose = ArtifactName(ModelKind.POSE)
    enc = recs.get((ArtifactName(ModelKind.POSE, Precision.INT8, Flavour.CPU).stem, 1))
    enc32 = recs.get((pose.stem, 1))
    ratio = enc.latency_ms.p50 / enc32.latency_ms.p50 if enc and enc32 else None
    checks.append(Check("encoder-only INT8 (CPU flavour) latency / FP32, p50 at batch 1", ratio, INT8_LATENCY_RATIO,
                        None if ratio is None else ratio <= INT8_LATENCY_RATIO))
    checks.append(Check("  stretch", ratio, INT8_LATENCY_STRETCH,
                        None if ratio is None else ratio <= INT8_LATENCY_STRETCH))
    for kind in MODEL_NAMES:
        model = ArtifactName(kind).stem
        for flavour in Flavour:
            name = ArtifactName(kind, Precision.INT8, flavour).stem
            d = _delta(acc, name, model, "mae")
            checks.append(Check(f"{name} pose MAE − FP32", d, INT8_MAX_MAE_INCREASE,
                                None if d is None else d <= INT8_MAX_MAE_INCREASE))
            if kind is ModelKind.FULL:
                dn = _delta(acc, name, model, "nme", 100)
                checks.append(Check(f"{name} NME − FP32 [points]", dn, INT8_MAX_NME_INCREASE,
                                    None if dn is None else dn <= INT8_MAX_NME_INCREASE))
        fp16 = ArtifactName(kind, Precision.FP16).stem
        d = _delta(acc, fp16, model, "mae")
        checks.append(Check(f"{fp16} |pose MAE − FP32|", None if d is None else abs(d), FP16_MAX_MAE_CHANGE,
                            None if d is None else abs(d) <= FP16_MAX_MAE_CHANGE))
    return checks


def busy_processes(min_cpu: float = 10.0, top: int = 6) -> list[str]:
    """The ``top`` other processes using the CPU now (what disturbs the timings), from ``ps``; [] without ps.

    ``ps`` reports CPU use averaged over each process's lifetime, which is what a log needs here.
    """
    try:
        out = subprocess.run(["ps", "-eo", "pid,pcpu,args", "--sort=-pcpu"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    busy = []
    for line in out.splitlines()[1:]:
        parts = line.split(None, 2)
        if len(parts) < 3 or int(parts[0]) in (os.getpid(), os.getppid()):
            continue
        try:
            cpu = float(parts[1])
        except ValueError:
            continue
        if cpu >= min_cpu and not parts[2].startswith("ps "):
            busy.append(f"{cpu:.0f}% {parts[2][:70]}")
    return busy[:top]


def replace_between_markers(text: str, block: str) -> str:
    """``text`` with the part between README_BEGIN and README_END replaced (appended when absent)."""
    if README_BEGIN in text and README_END in text:
        head, rest = text.split(README_BEGIN, 1)
        _, tail = rest.split(README_END, 1)
        return f"{head}{README_BEGIN}\n{block}\n{README_END}{tail}"
    return text.rstrip() + f"\n\n{README_BEGIN}\n{block}\n{README_END}\n"
