"""mnn-bench end to end on tiny runs (2 timed calls): JSON schema, baseline ratios, breakdown, errors."""

from __future__ import annotations

import json
import os
import stat

import cv2
import numpy as np
import pytest

from mnn_edge.bench import machine
from mnn_edge.bench.cli import main
from mnn_edge.bench.schema import load_run
from mnn_edge.bench.suite import parse_batches
from mnn_edge.errors import MnnEdgeError

FAST = ["--runs", "2", "--warmup", "1", "--threads", "1", "--no-progress"]


def test_bench_two_backends_writes_valid_json(random_export, random_checkpoint, tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert main([str(random_export / "pose.onnx"), str(random_checkpoint), "--torch-kind", "pose",
                 "--json", str(out), *FAST]) == 0
    run = load_run(out)  # validates the schema
    assert run.baseline == "pose"
    assert [(r.name, r.backend, r.model, r.precision, r.batch) for r in run.records] == [
        ("pose", "onnxruntime", "pose", "fp32", 1), ("random@pytorch", "pytorch", "pose", "fp32", 1)]
    assert run.records[0].ratio_to_baseline == {"p50": 1.0, "mean": 1.0}
    assert run.records[1].ratio_to_baseline["p50"] > 0
    assert all(r.latency_ms.n == 2 and r.latency_ms.min <= r.latency_ms.p50 <= r.latency_ms.max for r in run.records)
    assert run.records[0].size_bytes == (random_export / "pose.onnx").stat().st_size
    assert run.machine["cores"] >= 1 and "onnxruntime" in run.machine["libraries"]
    table = capsys.readouterr().out
    assert "random@pytorch" in table and "vs pose" in table


def test_breakdown_on_frames(random_export, tmp_path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(frames / f"f{i}.png"), rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    out = tmp_path / "bd.json"
    assert main([str(random_export / "mnn.onnx"), "--breakdown", "--frames", str(frames), "--batch", "2",
                 "--json", str(out), *FAST]) == 0
    rec = load_run(out).records[0]
    stages = rec.breakdown.stages
    assert rec.model == "full" and rec.batch == 2
    assert stages["h2d"] is None and stages["d2h"] is None and "folded" in rec.breakdown.note
    assert all(stages[s].n == 2 for s in ("preprocess", "infer", "postprocess"))  # warm-up calls dropped
    # the stages are parts of the end-to-end call, so together they cannot exceed it
    assert stages["preprocess"].mean + stages["infer"].mean + stages["postprocess"].mean <= rec.latency_ms.mean * 1.01


@pytest.mark.parametrize("argv, message", [
    (["missing.onnx"], "artifact not found"),
    (["model.tflite"], "unknown artifact type"),
    (["{pose}", "--breakdown"], "needs --frames"),
    (["{pose}", "--baseline", "other.onnx"], "not one of the artifacts"),
    (["{pose}", "--batch", "1,x"], "comma-separated"),
])
def test_bad_input_is_one_clear_error(random_export, argv, message) -> None:
    argv = [a.replace("{pose}", str(random_export / "pose.onnx")) for a in argv]
    with pytest.raises(MnnEdgeError, match=message):
        main([*argv, *FAST])


def test_parse_batches() -> None:
    assert parse_batches("1,4, 8") == (1, 4, 8)
    with pytest.raises(MnnEdgeError):
        parse_batches("0")


def test_machine_record_reads_nvidia_smi(tmp_path, monkeypatch) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    rec = machine.machine_record()
    assert rec["gpus"] == [{"name": "NVIDIA H100 80GB HBM3", "driver": "550.54.15", "memory": "81559 MiB"}]
    json.dumps(rec)  # JSON-ready
    assert "H100" in machine.format_machine(rec)
