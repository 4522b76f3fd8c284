"""mnn-eval: metric definitions, baselines, .pt vs .onnx agreement, the CLI's table and JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mnn_edge.data.readers import read_dataset
from mnn_edge.errors import MnnEdgeError
from mnn_edge.evaluate.baseline import mean_baseline, zero_baseline
from mnn_edge.evaluate.cli import main as eval_main
from mnn_edge.evaluate.metrics import EvalResult, angle_errors, evaluate_artifact, evaluate_runner, face_nme

KEYS = {"n", "mae_yaw", "mae_pitch", "mae_roll", "mae", "nme", "nme_box", "vis_acc", "artifact", "data", "format"}


def test_angle_errors_wrap_around():
    np.testing.assert_allclose(angle_errors([179.0, 10.0, -170.0], [-179.0, -5.0, 170.0]), [2.0, 15.0, 20.0])


def test_face_nme_inter_ocular_and_box():
    gt = np.zeros((68, 2))
    gt[:, 0] = np.linspace(0, 100, 68)
    gt[:, 1] = np.linspace(0, 25, 68)
    pred = gt + [3.0, 4.0]  # every point 5 px off
    iod = np.linalg.norm(gt[36] - gt[45])
    nme, nme_box = face_nme(pred, gt)
    assert nme == pytest.approx(5.0 / iod) and nme_box == pytest.approx(5.0 / math.sqrt(100 * 25))
    gt[36] = np.nan  # no eye corner: inter-ocular undefined, box still fine
    nme, nme_box = face_nme(pred, gt)
    assert math.isnan(nme) and nme_box == pytest.approx(5.0 / math.sqrt(100 * 25))


def test_result_json_has_none_for_missing_metrics():
    d = EvalResult(n=1, mae_yaw=1.0, mae_pitch=2.0, mae_roll=3.0, mae=2.0, nme=math.nan, nme_box=math.nan,
                   vis_acc=math.nan).to_dict()
    assert KEYS - {"artifact", "data", "format"} <= set(d) and d["nme"] is None and d["vis_acc"] is None
    json.dumps(d, allow_nan=False)


def test_mean_baseline_predicts_the_training_mean(synthetic_dir):
    samples = read_dataset(synthetic_dir, "synthetic")
    base = mean_baseline(samples)
    out = base.infer(np.zeros((2, 3, 256, 256), np.float32))
    assert out["pose"].shape == (2, 6) and out["landmarks"].shape == (2, 68, 2)
    res = evaluate_runner(base, samples, progress=False)
    yaw = np.array([s.angles[0] for s in samples])
    assert res.mae_yaw == pytest.approx(np.abs(yaw - out["pose"][0, 0]).mean(), abs=1e-3)
    assert res.n == len(samples) and 0.0 < res.nme_box < 0.5 and 0.0 < res.vis_acc <= 1.0
    zero = evaluate_runner(zero_baseline(), samples, progress=False)
    assert zero.mae_yaw == pytest.approx(np.abs(yaw).mean(), abs=1e-3)


def test_pt_and_onnx_give_the_same_numbers(synthetic_dir, random_checkpoint, random_export):
    samples = read_dataset(synthetic_dir, "synthetic", limit=4)
    pt = evaluate_artifact(random_checkpoint, samples, batch=2, progress=False, device="cpu")
    ox = evaluate_artifact(random_export / "mnn.onnx", samples, batch=2, progress=False, device="cpu")
    assert (pt.backend, ox.backend) == ("pytorch", "onnxruntime") and pt.n == ox.n == 4
    for key in ("mae_yaw", "mae_pitch", "mae_roll", "mae"):
        assert getattr(pt, key) == pytest.approx(getattr(ox, key), abs=1e-3), key
    for key in ("nme", "nme_box"):
        assert getattr(pt, key) == pytest.approx(getattr(ox, key), abs=1e-5), key
    # Random heads give visibility probabilities near 0.5, where a 1e-6 difference can flip a point.
    assert abs(pt.vis_acc - ox.vis_acc) <= 0.02
    pose_only = evaluate_artifact(random_export / "pose.onnx", samples, batch=4, progress=False)
    assert pose_only.mae == pytest.approx(pt.mae, abs=1e-3) and math.isnan(pose_only.nme)


def test_cli_table_json_and_errors(synthetic_dir, tmp_path, capsys):
    out, faces = tmp_path / "r.json", tmp_path / "faces.jsonl"
    assert eval_main(["--data", str(synthetic_dir), "--format", "synthetic", "--baseline", "zero", "--limit", "5",
                      "--json", str(out), "--per-face", str(faces), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "MAE yaw / pitch / roll" in text and "NME inter-ocular" in text
    d = json.loads(out.read_text())
    assert KEYS <= set(d) and d["n"] == 5 and d["artifact"] == "baseline:zero" and d["format"] == "synthetic"
    assert "faces" not in d
    rows = [json.loads(line) for line in faces.read_text().splitlines()]
    assert len(rows) == 5 and rows[0]["image"].endswith("synth_000000.jpg")
    # The zero baseline predicts zero angles: each error is |gt|, and they average to the summary.
    assert all(r["pred_angles"] == [0.0, 0.0, 0.0] for r in rows)
    assert np.mean([r["abs_error"][0] for r in rows]) == pytest.approx(d["mae_yaw"], abs=1e-2)
    assert np.mean([r["nme_box"] for r in rows]) == pytest.approx(d["nme_box"], abs=1e-4)
    assert all(abs(r["abs_error"][1]) == pytest.approx(abs(r["gt_angles"][1]), abs=1e-2) for r in rows)
    with pytest.raises(MnnEdgeError, match="either --artifact or --baseline"):
        eval_main(["--data", str(synthetic_dir), "--format", "synthetic", "--baseline", "zero",
                   "--artifact", "x.onnx"])
    with pytest.raises(MnnEdgeError, match="needs --baseline-data"):
        eval_main(["--data", str(synthetic_dir), "--format", "synthetic", "--baseline", "mean"])
    with pytest.raises(MnnEdgeError, match="not found"):
        eval_main(["--data", str(synthetic_dir), "--format", "synthetic", "--artifact", str(tmp_path / "no.onnx")])


def test_aflw2000_samples_zero_baseline(shared_data):
    res = evaluate_runner(zero_baseline(), read_dataset(shared_data / "samples" / "aflw2000", "aflw2000"),
                          progress=False)
    assert res.n == 4 and 0 < res.mae < 45 and math.isnan(res.vis_acc)
