"""mnn-report from fake benchmark/accuracy JSON: one row per artifact, a valid PNG, reproducible figures."""

from __future__ import annotations

import json
from types import SimpleNamespace

import cv2
import pytest

from mnn_edge.bench.schema import BenchRun, record_from_timing, with_ratios, write_run
from mnn_edge.bench.timing import CaseTiming, summarize
from mnn_edge.errors import MnnEdgeError
from mnn_edge.report.accuracy import AccuracyResult, AccuracySet, clean_metrics, write_accuracy
from mnn_edge.report.cli import main
from mnn_edge.report.measure import load_results, results_document, write_results
from mnn_edge.report.plot import pareto_front
from mnn_edge.report.rows import build_rows

# name, model, precision, flavour, ms at batch 1, MAE, NME
ARTIFACTS = [("pose", "pose", "fp32", "", 100.0, 3.10, None), ("pose.int8", "pose", "int8", "cpu", 38.0, 3.40, None),
             ("mnn", "full", "fp32", "", 200.0, 3.00, 0.040), ("mnn.fp16", "full", "fp16", "", 260.0, 3.001, 0.040),
             ("mnn.int8-trt", "full", "int8", "trt", 150.0, 3.50, 0.043)]


def fake_bench() -> BenchRun:
    recs = []
    for name, model, prec, flav, ms, _, _ in ARTIFACTS:
        for batch in (1, 4):
            t = [ms * (1.0 if batch == 1 else 3.0) * f for f in (0.9, 1.0, 1.1, 1.5)]  # batch 4: 3x the time
            recs.append(record_from_timing(CaseTiming(name, batch, tuple(t), summarize(t)), artifact=f"e/{name}.onnx",
                                           model=model, precision=prec, flavour=flav, backend="onnxruntime",
                                           size_bytes=int(ms * 1e5)))
    return BenchRun(tuple(with_ratios(recs, "pose")), machine={"cpu": "Fake CPU", "cores": 2, "libraries": {}},
                    config={"runs": 4})


def fake_accuracy() -> AccuracySet:
    res = [AccuracyResult(name, f"e/{name}.onnx", clean_metrics(
        {"n": 50, "mae_yaw": mae + 0.1, "mae_pitch": mae, "mae_roll": mae - 0.1, "mae": mae,
         "nme": float("nan") if nme is None else nme, "nme_box": nme, "vis_acc": None if nme is None else 0.9}))
        for name, _, _, _, _, mae, nme in ARTIFACTS]
    return AccuracySet(tuple(res), {"format": "synthetic", "n": 50, "seed": 7})


@pytest.fixture()
def inputs(tmp_path):
    b, e = tmp_path / "bench.json", tmp_path / "acc.json"
    write_run(fake_bench(), b)
    write_accuracy(fake_accuracy(), e)
    return b, e


def table_rows(report: str) -> list[str]:
    section = report.split("## Speed and accuracy", 1)[1].split("\n\n", 2)[1]
    return [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]


def test_report_has_one_row_per_artifact_and_a_png(inputs, tmp_path) -> None:
    b, e = inputs
    out = tmp_path / "report"
    assert main(["--bench", str(b), "--eval", str(e), "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    rows = table_rows(text)
    assert len(rows) == len(ARTIFACTS)
    # size 10 MB; p50 and p99 of 90, 100, 110, 150 ms
    assert rows[0].startswith("| encoder-only | fp32 | ONNX Runtime | cpu | 10.0 | 105.0 | 148.8 |")
    int8 = next(r for r in rows if "int8 (cpu)" in r)
    assert "| 0.38 |" in int8  # p50 ratio to the same model's FP32 in the same run
    assert "| 3.400 |" in int8 and int8.rstrip().endswith("| — | — |")  # pose-only: no NME, no visibility
    assert "int8 (trt)" in text and "Fake CPU" in text and "![accuracy vs FPS](tradeoff.png)" in text
    png = (out / "tradeoff.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = cv2.imread(str(out / "tradeoff.png"))
    assert img is not None and img.shape[1] >= 1200 and img.shape[0] >= 500  # two panels, readable size
    assert img.std() > 10  # not a blank canvas
    assert json.loads((out / "machine.json").read_text())["cpu"] == "Fake CPU"


def test_rerun_reproduces_accuracy_exactly_and_refuses_overwrite(inputs, tmp_path) -> None:
    b, e = inputs
    out = tmp_path / "r"
    main(["--bench", str(b), "--eval", str(e), "--out", str(out)])
    first = table_rows((out / "REPORT.md").read_text())
    with pytest.raises(MnnEdgeError, match="--force"):
        main(["--bench", str(b), "--eval", str(e), "--out", str(out)])
    main(["--bench", str(b), "--eval", str(e), "--out", str(out), "--force"])
    assert table_rows((out / "REPORT.md").read_text()) == first


def test_single_mnn_eval_result_by_name(tmp_path, inputs) -> None:
    b, _ = inputs
    ev = tmp_path / "eval.json"
    ev.write_text(json.dumps({"n": 10, "mae_yaw": 1.0, "mae_pitch": 2.0, "mae_roll": 3.0, "mae": 2.0,
                              "nme": None, "nme_box": None, "vis_acc": None}))
    out = tmp_path / "o"
    with pytest.raises(MnnEdgeError, match="NAME=FILE"):
        main(["--bench", str(b), "--eval", str(ev), "--out", str(out)])
    assert main(["--bench", str(b), "--eval", f"pose.int8={ev}", "--out", str(out)]) == 0
    row = next(r for r in table_rows((out / "REPORT.md").read_text()) if "int8 (cpu)" in r)
    assert "| 2.000 |" in row


def test_accuracy_only_and_bench_only_rows() -> None:
    bench = fake_bench()
    acc = AccuracySet((AccuracyResult("pose.fp16", "e/pose.fp16.onnx", clean_metrics({"n": 1, "mae": 1.0})),), {})
    rows = build_rows([bench], [acc])
    assert len(rows) == len(ARTIFACTS) + 1
    extra = next(r for r in rows if r.name == "pose.fp16")
    assert (extra.model, extra.precision, extra.batch1) == ("pose", "fp16", None)
    assert all(r.accuracy is None for r in rows if r.name != "pose.fp16")
    mnn = next(r for r in rows if r.name == "mnn")
    assert mnn.best.batch == 4  # 4 images in 3x the time of one
    assert mnn.fps == pytest.approx(1000.0 / summarize([180.0, 200.0, 220.0, 300.0]).mean)


def test_pareto_front() -> None:
    pts = [(10.0, 3.0), (20.0, 3.5), (5.0, 2.9), (8.0, 3.2), (20.0, 3.4)]
    assert pareto_front(pts) == [2, 0, 4]  # (8, 3.2) is beaten by (10, 3.0); (20, 3.5) by (20, 3.4)


def test_results_document_round_trip(tmp_path) -> None:
    path = tmp_path / "res.json"
    write_results(results_document(fake_bench(), fake_accuracy(), "cmd", None), path)
    run, acc, doc = load_results(path)
    assert run.records == fake_bench().records and acc.results == fake_accuracy().results
    assert doc["checkpoint"] == "random weights"
    out = tmp_path / "o"
    assert main(["--results", str(path), "--out", str(out)]) == 0
    assert "checkpoint random weights" in (out / "REPORT.md").read_text()


def test_nothing_to_report() -> None:
    with pytest.raises(MnnEdgeError, match="nothing to report"):
        main([])


def test_quantization_table_and_targets() -> None:
    from mnn_edge.report.quantization import README_BEGIN, README_END, replace_between_markers, target_checks
    from mnn_edge.report.quantization import quantization_table as qt

    run, acc = fake_bench(), fake_accuracy()
    table = qt(run, acc)
    assert len([line for line in table.splitlines() if line.startswith("| pose") or line.startswith("| mnn")]) == 10
    assert "| pose.int8 | int8 (cpu) | 1 | 3.8 | 39.9 | 56.5 | 0.380 | 3.400 | +0.300 |" in table
    checks = {c.what: c for c in target_checks(run, acc)}
    lat = checks["encoder-only INT8 (CPU flavour) latency / FP32, p50 at batch 1"]
    assert lat.value == pytest.approx(0.38) and lat.ok is True
    assert checks["  stretch"].ok is False
    assert checks["pose.int8 pose MAE − FP32"].ok is True  # +0.3 <= 0.5
    assert checks["mnn.int8-trt pose MAE − FP32"].ok is True and checks["mnn.int8-trt NME − FP32 [points]"].ok is True
    assert checks["mnn.fp16 |pose MAE − FP32|"].value == pytest.approx(0.001)
    assert checks["pose.int8-trt pose MAE − FP32"].ok is None  # not in the fake run
    text = replace_between_markers(f"# t\n{README_BEGIN}\nold\n{README_END}\nafter\n", "new")
    assert text == f"# t\n{README_BEGIN}\nnew\n{README_END}\nafter\n"
    assert replace_between_markers("# t\n", "x").endswith(f"{README_BEGIN}\nx\n{README_END}\n")


def test_breakdown_records_do_not_replace_model_latency() -> None:
    from dataclasses import replace

    from mnn_edge.bench.schema import Breakdown

    bench = fake_bench()
    slow = record_from_timing(CaseTiming("pose", 1, (500.0,), summarize([500.0])), artifact="e/pose.onnx",
                              model="pose", precision="fp32", backend="onnxruntime", size_bytes=1,
                              breakdown=Breakdown({"preprocess": summarize([3.0])}, "n"))
    e2e = replace(bench, records=(slow,))
    row = next(r for r in build_rows([bench, e2e], []) if r.name == "pose")
    assert row.batch1.latency_ms.p50 == pytest.approx(105.0)  # the plain timing, not the end-to-end one
    only = build_rows([e2e], [])
    assert only[0].batch1.latency_ms.p50 == 500.0


def test_the_plot_caption_names_the_accuracy_data():
    from mnn_edge.report.accuracy import AccuracySet, data_caption

    real = {"root": "../shared/data/real/ytf_keypoints/train", "format": "keypoints-csv", "subset": "heldout",
            "pose_labels": "teacher labels x.jsonl", "n": 540}
    caption = data_caption([AccuracySet((), real)])
    assert caption == ("accuracy: ytf_keypoints/train (keypoints-csv), heldout people, 540 faces, "
                       "pose vs teacher labels")
    synthetic = {"root": "work/heldout", "format": "synthetic", "n": 200, "seed": 1}
    assert data_caption([AccuracySet((), synthetic)]).endswith("200 faces, true labels")
    assert data_caption([AccuracySet((), real), AccuracySet((), synthetic)]) == ""  # mixed: no single caption


def test_tradeoff_axes_read_no_loss_as_no_loss() -> None:
    """A 0.008 deg spread (3.944-3.952) must not fill the axis: it spans the tolerance on each side
    of FP32; coinciding points share one label; neighbouring labels go to different levels."""
    from mnn_edge.report.plot import accuracy_limits, label_groups, label_offsets

    lo, hi = accuracy_limits([3.944, 3.952, 3.950], reference=3.944, tolerance=0.5)
    assert lo < 3.944 - 0.5 and hi > 3.944 + 0.5 and hi - lo < 1.5
    lo, hi = accuracy_limits([3.0, 7.0], reference=3.0, tolerance=0.5)  # a real loss stays in view
    assert lo < 3.0 and hi > 7.0
    assert label_groups([(6.0, 3.944), (6.1, 3.944), (17.0, 3.944), (57.0, 3.952)], near=(1.0, 0.05)) == \
        [[0, 1], [2], [3]]
    levels = label_offsets([10.0, 40.0, 400.0], [30, 20, 10])  # the first label runs over the second
    assert levels[0] != levels[1] and levels[2] == levels[0]


def test_tensorrt_flavour_int8_timed_on_onnxruntime_is_not_plotted() -> None:
    from mnn_edge.report.plot import off_target

    row = SimpleNamespace(flavour="trt", backend="onnxruntime")
    assert off_target(row) and not off_target(SimpleNamespace(flavour="trt", backend="tensorrt"))
    assert not off_target(SimpleNamespace(flavour="cpu", backend="onnxruntime"))


def _tracking_doc() -> dict:
    setting = {"mae": 3.62, "nme_box": 0.0583, "misses": 0, "faces": 200, "false_faces": 0, "id_switches": 0,
               "recovery_max": 0, "fps": 17.3, "p50_ms": 56.8, "p99_ms": 68.4, "detector_runs": 24}
    row = {"clip": "slide", "per_image": {"mae": 4.16, "nme_box": 0.0545}, "settings": {"defaults": setting}}
    machine = {"cpu": "Fake CPU", "cpu_flags": ["avx2"], "cores": 2}
    return {"machine": machine, "engines": {"export/mnn.int8.onnx": [row]}}


def test_tracking_results_get_a_section_of_their_own(inputs, tmp_path) -> None:
    b, e = inputs
    track = tmp_path / "tracking.json"
    track.write_text(json.dumps(_tracking_doc()))
    out = tmp_path / "t"
    assert main(["--bench", str(b), "--eval", str(e), "--tracking", str(track), "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    section = text.split("## Moving faces: mnn-run on video", 1)[1]
    assert "### mnn.int8.onnx" in section and "CPU flags: avx2" in section
    assert ("| slide | defaults | 3.62 | 4.16 | -0.54 | 5.83 | 5.45 | 0/200 | 0 | 0 | 0 | "
            "17.3 | 56.8 | 68.4 | 1.20 | 24 |") in section
    assert len(table_rows(text)) == len(ARTIFACTS)  # the speed/accuracy table is unchanged


def test_a_tracking_file_that_is_not_one_is_one_clear_error(inputs, tmp_path) -> None:
    b, e = inputs
    bad = tmp_path / "bad.json"
    doc = _tracking_doc()
    del doc["engines"]["export/mnn.int8.onnx"][0]["settings"]["defaults"]["fps"]
    bad.write_text(json.dumps(doc))
    with pytest.raises(MnnEdgeError, match="not tracking benchmark rows"):
        main(["--bench", str(b), "--tracking", str(bad), "--out", str(tmp_path / "o")])
    bad.write_text(json.dumps({"runs": []}))
    with pytest.raises(MnnEdgeError, match="no 'engines' results"):
        main(["--bench", str(b), "--tracking", str(bad), "--out", str(tmp_path / "o")])
    with pytest.raises(MnnEdgeError, match="not found"):
        main(["--bench", str(b), "--tracking", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())  # nothing written
