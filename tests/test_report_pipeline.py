"""The report pipeline's measuring step on real (random-weight) artifacts and two synthetic faces."""

from __future__ import annotations

import pytest

from mnn_edge.bench.timing import TimingConfig
from mnn_edge.report.cli import main
from mnn_edge.report.measure import PipelineConfig, load_results, measure, write_results


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    synth = pytest.importorskip("mnn_edge.data.synth")
    out = tmp_path_factory.mktemp("heldout")
    synth.write_synthetic(out, 2, seed=99, progress=False)
    return out


def test_measure_then_report_reproduces_accuracy(random_export, heldout, tmp_path) -> None:
    pytest.importorskip("mnn_edge.evaluate.metrics")
    cfg = PipelineConfig(checkpoint=None, work=tmp_path, n_eval=2, eval_seed=99, calib_synthetic=0,
                         timing=TimingConfig(warmup=0, runs=1), batches=(1,), threads=1, quantize=False,
                         reuse=True, progress=False)
    artifacts = [random_export / "pose.onnx", random_export / "mnn.onnx"]
    doc = measure(artifacts, heldout, cfg, "test")
    again = measure(artifacts, heldout, cfg, "test")
    assert doc["accuracy"]["results"] == again["accuracy"]["results"]  # same inputs -> same figures, exactly
    path = tmp_path / "results.json"
    write_results(doc, path)
    run, acc, _ = load_results(path)
    assert [r.name for r in run.records] == ["pose", "mnn"]
    by_name = acc.by_name()
    assert by_name["pose"].get("nme") is None and by_name["mnn"].get("nme") is not None  # encoder: no landmarks
    assert by_name["mnn"].metrics["n"] == 2
    assert main(["--results", str(path), "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "REPORT.md").read_text()
    assert "| encoder-only | fp32 |" in text and "| full | fp32 |" in text
    assert (tmp_path / "rep" / "tradeoff.png").read_bytes()[:4] == b"\x89PNG"


def test_from_random_calls_the_library_and_times_in_a_fresh_process(tmp_path, monkeypatch) -> None:
    """mnn-report --from-random exports and renders in this process through the library; the one
    child process is the timing (mnn-bench alone, so the export's and evaluation's thread pools do
    not share the cores with the timed sessions); the report names every FP32 artifact."""
    import subprocess
    import sys

    from mnn_edge.report.cli import main as report_main

    real_run = subprocess.run
    children = []

    def only_the_timing_child(cmd, *args, **kwargs):
        if isinstance(cmd, list) and cmd and cmd[0] == sys.executable:
            assert cmd[1:3] == ["-m", "mnn_edge.bench.cli"], cmd
            children.append(cmd)
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", only_the_timing_child)
    out = tmp_path / "report"
    assert report_main(["--from-random", "--work", str(tmp_path / "work"), "--n-eval", "2", "--no-quantize",
                        "--runs", "2", "--warmup", "1", "--out", str(out), "--no-progress"]) == 0
    assert len(children) == 1 and "--runs" in children[0] and children[0][children[0].index("--runs") + 1] == "2"
    assert sorted(p.name for p in (tmp_path / "work" / "export").glob("*.onnx")) == ["mnn.onnx", "pose.onnx"]
    assert len(list((tmp_path / "work" / "heldout").glob("synth_*.mat"))) == 2
    report = (out / "REPORT.md").read_text()
    assert "pose" in report and "mnn" in report
