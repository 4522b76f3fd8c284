"""Checkpoint -> export + quantize -> held-out faces -> accuracy + interleaved latency.

Accuracy is measured on ``eval_source`` (e.g. the held-out people of the real YTF frames, with
teacher pose labels) or, when none is given, on freshly rendered held-out synthetic faces; INT8
is calibrated on ``calib_source`` or on synthetic faces.

Shared by ``mnn-report --from-checkpoint`` and ``bench/quantization.py``, so the committed report
and the quantization table are the same measurement. The result is one JSON file::

    {"schema": "mnn-edge-results/1", "command": "...", "bench": <BenchRun>, "accuracy": <AccuracySet>}

Export and synthesis call the same library functions as ``mnn-export`` and ``mnn-data synth``
(:func:`mnn_edge.export.exporter.run_export`, :func:`mnn_edge.data.synth.write_synthetic`), in this
process: the same checks and progress bars. Latency is timed by ``mnn-bench`` in a process of its
own (:mod:`mnn_edge.bench.fresh`): in this one, the export's and evaluation's thread pools would
share the cores with the timed sessions.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mnn_edge.artifact import export_onnx_names
from mnn_edge.bench.schema import BenchRun, validate
from mnn_edge.bench.timing import TimingConfig
from mnn_edge.data.readers import DataSource
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import read_json, write_text_atomic
from mnn_edge.report.accuracy import AccuracySet, evaluate_set, parse_accuracy

RESULTS_SCHEMA = "mnn-edge-results/1"
# Held-out faces: face i of a synthetic set is rendered from rng([seed, i]), so a seed used neither for
# the training set (1000 for the starter model's synth_train) nor for calibration (1234,
# mnn_edge.quantize.calibration) shares no face with them.
HELDOUT_SEED = 20261201


@dataclass(frozen=True)
class PipelineConfig:
    checkpoint: Path | None  # None: random weights (smoke tests only; accuracy is meaningless)
    work: Path  # export/ and heldout/ go here
    n_eval: int  # held-out synthetic faces for accuracy
    eval_seed: int
    calib_synthetic: int  # synthetic calibration faces for mnn-export --int8
    timing: TimingConfig
    batches: tuple[int, ...]
    threads: int  # ONNX Runtime intra-op threads for the latency runs (0 = all cores)
    quantize: bool  # also write the FP16/INT8 artifacts (False: FP32 only)
    reuse: bool  # keep an existing export/ and heldout/ instead of rebuilding them
    progress: bool
    eval_source: DataSource | None = None  # accuracy data (None: n_eval held-out synthetic faces)
    calib_source: DataSource | None = None  # INT8 calibration data (None: calib_synthetic faces)


def export_all(cfg: PipelineConfig) -> Path:
    """What ``mnn-export [--fp16 --int8]`` does, in this process, into ``work/export``; returns the folder."""
    from mnn_edge.export.exporter import ExportConfig, run_export
    from mnn_edge.quantize.variants import Calibration, QuantizeConfig

    out = cfg.work / "export"
    if cfg.reuse and (out / "pose.onnx").is_file():
        return out
    quantize = None
    if cfg.quantize:
        src = cfg.calib_source
        calibration = (Calibration(synthetic=cfg.calib_synthetic) if src is None else
                       Calibration(folder=src.data, fmt=src.format, subset=src.subset, limit=src.limit))
        quantize = QuantizeConfig(int8=True, fp16=True, calibration=calibration, ranges_dir=cfg.work / "calibration",
                                  force=True, progress=cfg.progress)
    print(f"export: {cfg.checkpoint or 'random weights'} -> {out}", file=sys.stderr)
    run_export(ExportConfig(checkpoint=cfg.checkpoint, random_init=cfg.checkpoint is None, out=out,
                            num_landmarks=None, keep_heatmaps=False, force=True, quantize=quantize))
    return out


def heldout_folder(cfg: PipelineConfig) -> Path:
    """``cfg.n_eval`` held-out synthetic faces (seed ``cfg.eval_seed``), rendered once per work folder."""
    from mnn_edge.data.synth import write_synthetic

    out = cfg.work / "heldout"
    if cfg.reuse and len(list(out.glob("synth_*.mat"))) >= cfg.n_eval:
        return out
    write_synthetic(out, cfg.n_eval, cfg.eval_seed, progress=cfg.progress)
    return out


def artifacts_in(folder: Path) -> list[Path]:
    found = [folder / name for name in export_onnx_names() if (folder / name).is_file()]
    if not found:
        raise MnnEdgeError(f"no exported artifacts in {folder}")
    return found


def measure(artifacts: list[Path], heldout: Path, cfg: PipelineConfig, command: str) -> dict:
    """Accuracy on the held-out faces, then latency of all artifacts interleaved; the results document."""
    from mnn_edge.bench.fresh import bench_in_fresh_process
    from mnn_edge.data.readers import read_dataset

    if cfg.eval_source is not None:
        samples = cfg.eval_source.read(progress=cfg.progress)
        data = {**cfg.eval_source.describe(), "n": len(samples)}
    else:
        samples = read_dataset(heldout, "synthetic", limit=cfg.n_eval)
        data = {"root": str(heldout), "format": "synthetic", "n": len(samples), "seed": cfg.eval_seed}
    t0 = time.perf_counter()
    print(f"accuracy: {len(artifacts)} artifact(s) on {len(samples)} faces", file=sys.stderr)
    accuracy = evaluate_set(artifacts, samples, data, progress=cfg.progress)
    how = f"{cfg.timing.runs} timed runs" if cfg.timing.seconds is None else f"{cfg.timing.seconds:g} s"
    print(f"accuracy done in {time.perf_counter() - t0:.0f} s; timing: {len(artifacts)} artifact(s) x batch "
          f"{', '.join(map(str, cfg.batches))}, {how} each, interleaved, in a fresh process", file=sys.stderr)
    t0 = time.perf_counter()
    bench = bench_in_fresh_process(artifacts, cfg.batches, cfg.timing, cfg.threads, progress=cfg.progress)
    print(f"timing done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return results_document(bench, accuracy, command, cfg.checkpoint)


def results_document(bench: BenchRun, accuracy: AccuracySet, command: str, checkpoint: Path | None) -> dict:
    return {"schema": RESULTS_SCHEMA, "command": command,
            "checkpoint": "random weights" if checkpoint is None else str(checkpoint),
            "bench": bench.to_dict(), "accuracy": accuracy.to_dict()}


def write_results(doc: dict, path: Path) -> None:
    write_text_atomic(path, json.dumps(doc, indent=2) + "\n")


def load_results(path: Path) -> tuple[BenchRun, AccuracySet, dict]:
    """A results document -> its benchmark run, accuracy set and the document itself."""
    doc = read_json(path, "results JSON")
    if not isinstance(doc, dict) or doc.get("schema") != RESULTS_SCHEMA:
        raise MnnEdgeError(f"{path}: not a results document ({RESULTS_SCHEMA}); pass benchmark files with "
                           "--bench and accuracy files with --eval")
    missing = [k for k in ("bench", "accuracy") if k not in doc]
    if missing:  # was a KeyError traceback
        raise MnnEdgeError(f"{path}: the results document has no {' or '.join(missing)} section")
    return validate(doc["bench"], f"{path} bench"), parse_accuracy(doc["accuracy"], f"{path} accuracy"), doc


def run_pipeline(cfg: PipelineConfig, command: str) -> dict:
    export = export_all(cfg)
    heldout = heldout_folder(cfg)
    return measure(artifacts_in(export), heldout, cfg, command)
