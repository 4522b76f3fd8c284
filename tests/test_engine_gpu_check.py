"""bench/gpu_check's logic (mnn_edge.bench.gpu_check), run against the contract double (so its
report, tolerances and exit codes are tested here); on a GPU the same command measures real engines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from trt_double.install import installed
from trt_double.models import write_tiny

from mnn_edge.artifact import Precision
from mnn_edge.bench import gpu_check
from mnn_edge.bench.machine import tensorrt_facts
from mnn_edge.bench.schema import load_run
from mnn_edge.cli_util import run_cli
from mnn_edge.runtime import tensorrt_available
from mnn_edge.runtime.tensorrt.config import BuildConfig

ROOT = Path(__file__).resolve().parents[1]


def check(export: Path, out: Path, models: tuple[str, ...] = ("pose", "mnn"),
          precisions: tuple[Precision, ...] = tuple(Precision)) -> int:
    """What ``bench/gpu_check --random-inputs --inputs 5 --runs 3 --warmup 1 --no-trtexec --max-batch 2`` runs."""
    build = BuildConfig().with_(out_dir=out / "engines", timing_cache=out / "engines" / "timing.cache", max_batch=2,
                                force=True)
    cfg = gpu_check.GpuCheckConfig(export=export, out=out, precisions=precisions, models=models, build=build,
                                   inputs=5, random_inputs=True, runs=3, warmup=1, no_trtexec=True)
    return run_cli(lambda _argv: gpu_check.run_gpu_check(cfg, tensorrt_facts()))


@pytest.fixture
def tiny_export(tmp_path):
    for p in Precision:
        write_tiny(tmp_path / "export", p)
    return tmp_path / "export"


def test_report_with_every_precision(tmp_path, tiny_export):
    out = tmp_path / "out"
    with installed("10.3", "cuda-python"):
        rc = check(tiny_export, out)
    assert rc == 0
    md = (out / "gpu_check.md").read_text()
    assert "TensorRT 10.3.0 on Orin (nvgpu) (compute capability 8.7), CUDA via cuda-python" in md
    for p in ("fp32", "fp16", "int8"):
        assert f"| pose | {p} | ok |" in md and f"| pose | {p} b1 |" in md and f"| pose | {p} b2 |" in md
    assert "| pose | fp32 b1 graph |" in md and "onnxruntime-cpu fp32 b1" in md
    assert "| mnn | fp32 | skipped: mnn.onnx not in" in md
    assert "**Result: PASS** (3 ok, 0 failed, 0 errors, 3 skipped)" in md
    data = json.loads((out / "gpu_check.json").read_text())
    ok = [r for r in data["results"] if r["status"] == "ok"]
    assert [r["source"].rsplit("/", 1)[-1] for r in ok] == ["pose.onnx", "pose.fp16.onnx", "pose.int8-trt.onnx"]
    # the double runs each artifact's own graph: fp32 equals the fp32 reference; fp16 weights and Q/DQ differ a little
    assert ok[0]["angle_max_deg"] == 0.0 and 0 < ok[1]["angle_max_deg"] < 0.05 and 0 < ok[2]["angle_max_deg"] < 0.1
    assert all(r["timing_ms"][f"{r['precision']} b1"]["p50"] > 0 for r in ok)
    assert (out / "engines" / "pose.int8.plan").is_file() and (out / "engines" / "pose.int8.json").is_file()
    # the same timings in mnn-bench's schema, so mnn-report --bench merges them with CPU runs
    run = load_run(out / "bench.json")
    names = {(r.name, r.batch, r.backend) for r in run.records}
    assert ("pose.int8@tensorrt", 2, "tensorrt") in names and ("pose.fp32@tensorrt+cudagraph", 1, "tensorrt") in names
    assert ("pose@onnxruntime-cpu", 1, "onnxruntime") in names and run.tool == "gpu_check"
    assert all(r.model == "pose" and r.latency_ms.p50 > 0 for r in run.records)


def test_out_of_tolerance_fails_with_exit_1(tmp_path, tiny_export, monkeypatch):
    real = gpu_check.compare
    monkeypatch.setattr(gpu_check, "compare", lambda ref, got: {**real(ref, got), "angle_mean_deg": 3.0})
    with installed("11.4"):
        rc = check(tiny_export, tmp_path / "o", ("pose",), (Precision.INT8,))
    md = (tmp_path / "o" / "gpu_check.md").read_text()
    assert rc == 1 and "| pose | int8 | FAIL: tolerance 1.0 deg / 2.0 px (mean) | 3.000" in md
    assert "**Result: FAIL**" in md


def test_missing_artifact_is_skipped_not_fatal(tmp_path):
    write_tiny(tmp_path / "export")
    with installed("10.3"):
        rc = check(tmp_path / "export", tmp_path / "o", ("pose",))
    md = (tmp_path / "o" / "gpu_check.md").read_text()
    assert rc == 0 and "| pose | int8 | skipped: pose.int8-trt.onnx not found" in md


def test_trtexec_output_parsing():
    sample = ("[I] Throughput: 812.5 qps\n[I] GPU Compute Time: min = 1.1 ms, max = 1.9 ms, mean = 1.2 ms, "
              "median = 1.18 ms, percentile(90%) = 1.3 ms\n")
    assert gpu_check.TRTEXEC_MEDIAN.search(sample).group(1) == "1.18"
    assert gpu_check.TRTEXEC_QPS.search(sample).group(1) == "812.5"


@pytest.mark.skipif(tensorrt_available(), reason="TensorRT is installed here")
def test_wrapper_without_tensorrt_says_what_to_install(tmp_path):
    res = subprocess.run([str(ROOT / "bench" / "gpu_check"), "--export", str(tmp_path), "--out", str(tmp_path)],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    assert res.returncode == 1
    assert res.stderr.strip().startswith("error: TensorRT is not installed: pip install 'mnn-edge[trt]'")
    assert subprocess.run([str(ROOT / "bench" / "gpu_check"), "--help"], capture_output=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}).returncode == 0
