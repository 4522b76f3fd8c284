"""Checkpoint -> export + quantize -> held-out faces -> accuracy + interleaved latency.

Accuracy is measured on ``eval_source`` (e.g. the held-out people of the real YTF frames, with
teacher pose labels) or, when none is given, on freshly rendered held-out synthetic faces; INT8
is calibrated on ``calib_source`` or on synthetic faces.

Shared by ``mnn-report --from-checkpoint`` and ``bench/quantization.py``, so the committed report
and the quantization table are the same measurement. The result is one JSON file::

    {"schema": "mnn-edge-results/1", "command": "...", "bench": <BenchRun>, "accuracy": <AccuracySet>}

Export and synthesis run as subprocesses of the project's own CLIs (``mnn-export``,
``mnn-data synth``): exactly what a user would type, with their progress bars and checks.
"""

from __future__ import annotations

import json
import subprocess
import sys
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


def _cli(module: str, prog: str) -> list[str]:
    """Run a console script's ``entry()`` with this interpreter (not every CLI module has a __main__ block)."""
    code = f"import sys; sys.argv[0] = {prog!r}; from {module} import entry; raise SystemExit(entry())"
    return [sys.executable, "-c", code]


def _run(cmd: list[str], what: str) -> None:
    shown = [cmd[2].split("'")[1]] + cmd[3:] if cmd[1:2] == ["-c"] else cmd
    print("+ " + " ".join(shown), file=sys.stderr)
    if subprocess.run(cmd).returncode != 0:
        raise MnnEdgeError(f"{what} failed (command above); see its error message")


def export_all(cfg: PipelineConfig) -> Path:
    """``mnn-export`` (with ``--int8 --fp16`` when quantizing) into ``work/export``; returns the folder."""
    out = cfg.work / "export"
    if cfg.reuse and (out / "pose.onnx").is_file():
        return out
    cmd = _cli("mnn_edge.export.cli", "mnn-export") + ["--out", str(out), "--force"]
    cmd += ["--random-init"] if cfg.checkpoint is None else ["--checkpoint", str(cfg.checkpoint)]
    if cfg.quantize:
        cmd += ["--fp16", "--int8", "--ranges-dir", str(cfg.work / "calibration")]
        src = cfg.calib_source
        if src is None:
            cmd += ["--calib-synthetic", str(cfg.calib_synthetic)]
        else:
            cmd += ["--calib", str(src.data), "--calib-format", src.format]
            cmd += ["--calib-subset", src.subset] if src.subset else []
            cmd += ["--calib-limit", str(src.limit)] if src.limit else []
    if not cfg.progress:
        cmd.append("--no-progress")
    _run(cmd, "export")
    return out


def heldout_folder(cfg: PipelineConfig) -> Path:
    out = cfg.work / "heldout"
    if cfg.reuse and len(list(out.glob("synth_*.mat"))) >= cfg.n_eval:
        return out
    _run(_cli("mnn_edge.data.cli", "mnn-data") + ["synth", "--out", str(out), "--n", str(cfg.n_eval),
          "--seed", str(cfg.eval_seed), "--force"] + ([] if cfg.progress else ["--no-progress"]),
         "synthetic data")
    return out


def artifacts_in(folder: Path) -> list[Path]:
    found = [folder / name for name in export_onnx_names() if (folder / name).is_file()]
    if not found:
        raise MnnEdgeError(f"no exported artifacts in {folder}")
    return found


def measure(artifacts: list[Path], heldout: Path, cfg: PipelineConfig, command: str) -> dict:
    """Accuracy on the held-out faces, then latency of all artifacts interleaved; the results document."""
    from mnn_edge.artifact import ModelKind
    from mnn_edge.bench.cli import BenchConfig, run_bench
    from mnn_edge.data.readers import read_dataset

    if cfg.eval_source is not None:
        samples = cfg.eval_source.read(progress=cfg.progress)
        data = {**cfg.eval_source.describe(), "n": len(samples)}
    else:
        samples = read_dataset(heldout, "synthetic", limit=cfg.n_eval)
        data = {"root": str(heldout), "format": "synthetic", "n": len(samples), "seed": cfg.eval_seed}
    accuracy = evaluate_set(artifacts, samples, data, progress=cfg.progress)
    bcfg = BenchConfig(artifacts=tuple(artifacts), batches=cfg.batches, timing=cfg.timing, baseline=None,
                       breakdown_frames=None, threads=cfg.threads, device="cpu", torch_kind=ModelKind.FULL,
                       json_out=None, progress=cfg.progress)
    bench = run_bench(bcfg, tool="mnn-report pipeline")
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
    return validate(doc["bench"], f"{path} bench"), parse_accuracy(doc["accuracy"], f"{path} accuracy"), doc


def run_pipeline(cfg: PipelineConfig, command: str) -> dict:
    export = export_all(cfg)
    heldout = heldout_folder(cfg)
    return measure(artifacts_in(export), heldout, cfg, command)
