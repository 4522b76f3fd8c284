"""Large-pose measures: bins of per-face errors and the in-plane roll sweep."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mnn_edge.data.sample import FaceSample
from mnn_edge.errors import MnnEdgeError
from mnn_edge.evaluate.baseline import zero_baseline
from mnn_edge.evaluate.large_pose import PITCH_BINS, YAW_BINS, binned_mae, roll_sweep
from mnn_edge.geometry import project
from mnn_edge.meanface import mean_face


def test_binned_mae_splits_by_the_label_angle():
    faces = [{"gt_angles": [10, 25, 0], "abs_error": [1, 2, 3]}, {"gt_angles": [-45, -5, 0], "abs_error": [4, 4, 4]},
             {"gt_angles": [70, 0, 0], "abs_error": [9, 0, 0]}, {"gt_angles": [-65, 30, 0], "abs_error": [11, 2, 2]},
             {"image": "no pose output"}]
    by_yaw = binned_mae(faces, 0, YAW_BINS)
    assert [r["bin"] for r in by_yaw] == ["0-30", "30-60", "60+"] and [r["n"] for r in by_yaw] == [1, 1, 2]
    assert by_yaw[2]["mae_yaw"] == 10.0 and by_yaw[2]["mae"] == pytest.approx((10 + 1 + 1) / 3)
    by_pitch = binned_mae(faces, 1, PITCH_BINS)
    assert [r["n"] for r in by_pitch] == [2, 2] and by_pitch[1]["mae_pitch"] == 2.0
    empty = binned_mae([], 0, YAW_BINS)
    assert all(r["n"] == 0 and math.isnan(r["mae"]) for r in empty)


def test_roll_sweep_of_a_model_that_ignores_the_turn(monkeypatch):
    """A constant predictor reads no roll change: slope 0, roll error = the applied turn."""
    lms = project(mean_face(), np.array([0.0, 0.0, 0.0, 150.0, 150.0, 60.0]))
    face = FaceSample(Path("f.png"), landmarks=lms, angles=np.zeros(3))
    img = np.zeros((300, 300, 3), np.uint8)
    monkeypatch.setattr("mnn_edge.data.crop.load_image_rgb", lambda _path: img)
    res = roll_sweep(zero_baseline(), [face, face], angles=(-20.0, 10.0))
    assert res["faces"] == 2 and res["slope"] == pytest.approx(0.0, abs=1e-9)
    assert [r["label_roll_change"] for r in res["rows"]] == pytest.approx([20.0, -10.0])
    assert res["roll_error"] == pytest.approx(15.0) and res["induced_yaw"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(MnnEdgeError, match="pose labels"):
        roll_sweep(zero_baseline(), [FaceSample(Path("x.png"), landmarks=lms)])


def test_frontal_only_keeps_faces_with_every_angle_within_the_bound():
    from mnn_edge.evaluate.metrics import FRONTAL_DEG, frontal_only

    faces = [FaceSample(Path(f"{i}.png"), angles=np.array(a)) for i, a in
             enumerate([(9.0, -10.0, 3.0), (11.0, 0.0, 0.0), (0.0, 0.0, -10.5)])] + [FaceSample(Path("n.png"))]
    assert [f.image_path.name for f in frontal_only(faces)] == ["0.png"] and FRONTAL_DEG == 10.0
    assert [f.image_path.name for f in frontal_only(faces, 12.0)] == ["0.png", "1.png", "2.png"]
