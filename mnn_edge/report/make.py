"""The speed/accuracy report from its inputs: load (or first make, with a :class:`PipelineConfig`)
the results, bench runs and accuracy files, then write REPORT.md, tradeoff.png and machine.json.
``mnn-report`` is the flags around :func:`make_report`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from mnn_edge.bench.schema import BenchRun, load_run
from mnn_edge.bench.tracking_table import load_tracking
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import write_text_atomic
from mnn_edge.report.accuracy import AccuracySet, data_caption, load_accuracy
from mnn_edge.report.markdown import render_report
from mnn_edge.report.measure import PipelineConfig, load_results, run_pipeline, write_results
from mnn_edge.report.plot import plot_tradeoff
from mnn_edge.report.rows import build_rows

REPORT_NAME, PLOT_NAME, MACHINE_NAME, RESULTS_NAME = "REPORT.md", "tradeoff.png", "machine.json", "results.json"


@dataclass(frozen=True)
class ReportConfig:
    results: tuple[Path, ...]  # pipeline/quantization results documents
    bench: tuple[Path, ...]  # BenchRun JSON files
    evals: tuple[str, ...]  # accuracy files, FILE or NAME=FILE
    tracking: tuple[Path, ...]  # bench/tracking.py JSON documents (mnn-run on moving faces)
    pipeline: PipelineConfig | None  # make the results first
    out: Path  # REPORT.md, tradeoff.png, machine.json (and results.json from a pipeline) go here
    force: bool
    command: str  # recorded in the report


def gather(cfg: ReportConfig) -> tuple[list[BenchRun], list[AccuracySet], list[str]]:
    """Load (or make) every input; also the notes the report prints about where results came from."""
    runs, accs, notes = [], [], []
    for path in cfg.results:
        run, acc, doc = load_results(path)
        runs.append(run)
        accs.append(acc)
        notes.append(f"Results {path}: checkpoint {doc.get('checkpoint', '?')}; made by `{doc.get('command', '?')}`")
    runs += [load_run(p) for p in cfg.bench]
    accs += [load_accuracy(s) for s in cfg.evals]
    return runs, accs, notes


def write_report(cfg: ReportConfig, runs: list[BenchRun], accs: list[AccuracySet], notes: list[str],
                 tracking: list[dict]) -> Path:
    """The table rows, the plot (where an artifact has both numbers), the machine record and REPORT.md."""
    rows = build_rows(runs, accs)
    if not rows:
        raise MnnEdgeError("the inputs hold no benchmark records and no accuracy results")
    caption = data_caption(accs)
    title = "MNN: accuracy vs speed" + (f"\n{caption}" if caption else "")
    plotted = plot_tradeoff(rows, cfg.out / PLOT_NAME, title=title)
    if not plotted:
        notes = notes + ["No plot: no artifact has both a latency and an accuracy."]
    machines = [run.machine for run in runs]
    write_text_atomic(cfg.out / MACHINE_NAME, json.dumps(machines[0] if len(machines) == 1 else machines,
                                                         indent=2) + "\n")
    text = render_report(rows, runs, accs, cfg.command, PLOT_NAME if plotted else None, notes, tracking)
    report = cfg.out / REPORT_NAME
    write_text_atomic(report, text)
    return report


def make_report(cfg: ReportConfig) -> int:
    """REPORT.md, tradeoff.png and machine.json in ``cfg.out`` (results.json too when a pipeline runs first)."""
    report = cfg.out / REPORT_NAME
    if report.exists() and not cfg.force:
        raise MnnEdgeError(f"{report} already exists; pass --force to overwrite it")
    tracking = [load_tracking(p) for p in cfg.tracking]  # checked before a long pipeline run or any write
    extra_results = []
    if cfg.pipeline is not None:
        doc = run_pipeline(cfg.pipeline, cfg.command)
        write_results(doc, cfg.out / RESULTS_NAME)
        extra_results.append(cfg.out / RESULTS_NAME)
    runs, accs, notes = gather(dataclasses.replace(cfg, results=cfg.results + tuple(extra_results), pipeline=None))
    report = write_report(cfg, runs, accs, notes, tracking)
    print(f"wrote {report}, {cfg.out / PLOT_NAME}, {cfg.out / MACHINE_NAME}")
    return 0
