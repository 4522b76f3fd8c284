"""REPORT.md: the trade-off table, the machine record, latency per batch size and the stage breakdown."""

from __future__ import annotations

from pathlib import Path

from mnn_edge.bench.machine import format_machine
from mnn_edge.bench.schema import BenchRun
from mnn_edge.bench.tracking_table import markdown
from mnn_edge.frame import BREAKDOWN_STAGES
from mnn_edge.report.accuracy import AccuracySet
from mnn_edge.report.rows import BACKEND_LABEL, MODEL_LABEL, ReportRow


def _f(v: float | None, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def _acc(row: ReportRow, key: str, scale: float = 1.0, fmt: str = ".2f") -> str:
    v = None if row.accuracy is None else row.accuracy.get(key)
    return _f(None if v is None else v * scale, fmt)


def results_table(rows: list[ReportRow]) -> str:
    head = ("| model | precision | backend | device | size MB | p50 ms | p99 ms | FPS (b=1) | × FP32 p50 | best img/s "
            "(batch) | MAE yaw ° | MAE pitch ° | MAE roll ° | MAE mean ° | NME % | vis acc % |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        b1 = r.batch1
        best = f"{r.best.throughput_ips:.1f} ({r.best.batch})" if r.best is not None else "—"
        size = _f(None if r.size_bytes is None else r.size_bytes / 1e6, ".1f")
        lines.append(
            f"| {MODEL_LABEL.get(r.model, r.model)} | {r.precision_label} | {BACKEND_LABEL.get(r.backend, r.backend)} "
            f"| {r.device} | {size} | {_f(b1 and b1.latency_ms.p50, '.1f')} | {_f(b1 and b1.latency_ms.p99, '.1f')} "
            f"| {_f(r.fps, '.1f')} | {_f(r.ratio_fp32, '.2f')} | {best} | {_acc(r, 'mae_yaw')} "
            f"| {_acc(r, 'mae_pitch')} | {_acc(r, 'mae_roll')} | {_acc(r, 'mae', fmt='.3f')} "
            f"| {_acc(r, 'nme', 100, '.2f')} | {_acc(r, 'vis_acc', 100, '.1f')} |")
    return "\n".join(lines)


def batch_table(runs: list[BenchRun]) -> str:
    lines = ["| artifact | device | batch | mean ms | p50 ms | p90 ms | p99 ms | min ms | max ms | img/s | runs |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        for r in run.records:
            if r.breakdown is not None:  # end-to-end timings: in the breakdown section
                continue
            s = r.latency_ms
            lines.append(f"| {r.name} | {r.device} | {r.batch} | {s.mean:.1f} | {s.p50:.1f} | {s.p90:.1f} "
                         f"| {s.p99:.1f} | {s.min:.1f} | {s.max:.1f} | {r.throughput_ips:.1f} | {s.n} |")
    return "\n".join(lines)


def breakdown_table(runs: list[BenchRun]) -> str | None:
    recs = [r for run in runs for r in run.records if r.breakdown is not None]
    if not recs:
        return None
    stage_cols = " | ".join(f"{s} ms" for s in BREAKDOWN_STAGES)
    lines = [f"| artifact | device | batch | {stage_cols} | end-to-end ms | frames/s |",
             "|---|---|---|" + "---|" * (len(BREAKDOWN_STAGES) + 2)]
    for r in recs:
        cells = [("folded" if r.breakdown.stages.get(s) is None else f"{r.breakdown.stages[s].mean:.2f}")
                 for s in BREAKDOWN_STAGES]
        cells += [f"{r.latency_ms.mean:.2f}", f"{r.throughput_ips:.1f}"]
        lines.append(f"| {r.name} | {r.device} | {r.batch} | " + " | ".join(cells) + " |")
    notes = sorted({r.breakdown.note for r in recs if r.breakdown.note})
    return "\n".join(lines + [""] + [f"- {n}" for n in notes])


def tracking_section(docs: list[dict]) -> list[str]:
    """mnn-run on moving real faces (bench/tracking.py), one table per artifact."""
    parts = ["## Moving faces: mnn-run on video", "",
             "Real held-out faces pasted into 640×480 clips with exact per-frame truth, run through mnn-run's own "
             "code at its flags (`python bench/tracking.py`, docs/RUN.md). Δ = pose MAE on the video minus the "
             "same artifact on per-image crops made from the true landmarks of the same frames; FPS and p50/p99 "
             "are whole frames.", ""]
    for doc in docs:
        if isinstance(doc.get("machine"), dict):
            parts += ["```", format_machine(doc["machine"]), "```", ""]
        for engine, rows in doc["engines"].items():
            parts += [markdown(Path(engine).name, rows, heading="###"), ""]
    return parts


def render_report(rows: list[ReportRow], runs: list[BenchRun], accuracy: list[AccuracySet], command: str,
                  plot_name: str | None, notes: list[str], tracking: list[dict] | None = None) -> str:
    parts = ["# MNN edge deployment report", "",
             f"Made by: `{command}`" if command else "", ""]
    parts += ["## Speed and accuracy", "", results_table(rows), ""]
    parts += ["- Latency: milliseconds per call at batch 1 (p50 = median), measured with all artifacts of a run "
              "interleaved round by round; FPS = 1000 / mean latency at batch 1; × FP32 = p50 over the same "
              "model's FP32 p50 in the same run (lower is faster). Size: the artifact on disk.",
              "- Accuracy: MAE in degrees; NME = mean landmark error / inter-ocular distance; vis acc = "
              "visibility accuracy; — where the model has no such output (the encoder-only model predicts pose only)."]
    for a in accuracy:
        if a.data:
            parts.append("- Accuracy data: " + ", ".join(f"{k} {v}" for k, v in a.data.items()))
    parts += [f"- {n}" for n in notes]
    parts.append("")
    if plot_name:
        parts += [f"![accuracy vs FPS]({plot_name})", ""]
    parts += ["## Machine", ""]
    machines = []
    for run in runs:
        text = format_machine(run.machine)
        if text not in machines:
            machines.append(text)
            when = f" (run {run.created}, {run.tool}, config: "
            when += ", ".join(f"{k}={v}" for k, v in run.config.items()) + ")"
            parts += ["```", text, "```", when.strip(), ""]
    if runs:
        parts += ["## Latency at every batch size", "", batch_table(runs), ""]
    bd = breakdown_table(runs)
    if bd:
        parts += ["## End-to-end breakdown (mean ms per batch, real frames)", "",
                  "Each call: crop + normalise the next decoded frames, infer, map pose and landmarks back to the "
                  "frame (see docs/BENCH.md). A separate interleaved run from the table above.", "", bd, ""]
    if tracking:
        parts += tracking_section(tracking)
    return "\n".join(parts).rstrip() + "\n"
