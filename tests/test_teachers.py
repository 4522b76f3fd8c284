"""The second pose teacher (MediaPipe's Face Landmarker) and the measured rule combining it with FSA-Net."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from mnn_edge.data.readers import load_image_rgb, read_dataset
from mnn_edge.data.teacher import AVERAGE_BELOW_YAW, TeacherPair, average_pose, open_teachers
from mnn_edge.errors import MnnEdgeError

MODELS = Path(__file__).resolve().parents[1].parent / "shared/models"


def test_average_pose_is_the_rotation_midway():
    a = np.array([10.0, -4.0, 3.0])
    np.testing.assert_allclose(average_pose(a, a), a, atol=1e-9)
    np.testing.assert_allclose(average_pose(np.array([10.0, 0, 0]), np.array([30.0, 0, 0])), [20.0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(average_pose(np.array([0, 20.0, 0]), np.array([0, -10.0, 0])), [0, 5.0, 0], atol=1e-9)


@pytest.fixture(scope="module")
def pair(shared_data):
    pytest.importorskip("mediapipe", reason="the Face Landmarker is an optional extra (README)")
    teacher = open_teachers([MODELS / "mediapipe", MODELS / "fsanet"])
    yield teacher
    teacher.close()


def test_pair_beats_fsanet_alone_on_the_true_labelled_samples(shared_data, pair):
    """What docs/DATA_PROFILE.md measured: mean error 4.54 (FSA-Net), 3.79 (Face Landmarker), 3.73 (the rule:
    the average on three faces, FSA-Net alone on the one it reads beyond 60 degrees of yaw)."""
    assert isinstance(pair, TeacherPair)
    err = {"fsa": [], "mesh": [], "pair": []}
    for s in read_dataset(shared_data / "samples/aflw2000", "aflw2000"):
        img = load_image_rgb(s.image_path)
        err["fsa"].append(np.abs(pair.fsanet.predict(img, s.landmarks) - s.angles))
        err["mesh"].append(np.abs(pair.mesh.predict(img, s.landmarks) - s.angles))
        err["pair"].append(np.abs(pair.predict(img, s.landmarks) - s.angles))
    mean = {k: float(np.mean(v)) for k, v in err.items()}
    assert mean["mesh"] == pytest.approx(3.79, abs=0.1) and mean["fsa"] == pytest.approx(4.54, abs=0.1)
    assert mean["pair"] == pytest.approx(3.73, abs=0.1)
    prov = pair.provenance()
    assert prov["kind"] == "fsanet+mediapipe" and f"< {AVERAGE_BELOW_YAW:g}" in prov["rule"]
    assert len(prov["teachers"][1]["models"][0]["sha256"]) == 64


def test_pseudo_label_with_the_face_landmarker_counts_faceless_photos(tmp_path, shared_data, capsys):
    pytest.importorskip("mediapipe", reason="the Face Landmarker is an optional extra (README)")
    from mnn_edge.data.cli import main

    data = tmp_path / "aflw"
    shutil.copytree(shared_data / "samples/aflw2000", data)
    blank = data / "image00050.jpg"  # the same labels, a photo with no face in it
    cv2.imwrite(str(blank), np.full((450, 450, 3), 128, np.uint8))
    out = tmp_path / "labels.jsonl"
    assert main(["pseudo-label", "--teacher", str(MODELS / "mediapipe"), "--data", str(data), "--format", "aflw2000",
                 "--out", str(out), "--no-progress"]) == 0
    assert "no face found in 1" in capsys.readouterr().out
    lines = out.read_text().splitlines()
    assert json.loads(lines[0])["teacher"]["kind"] == "mediapipe-face-landmarker"
    assert json.loads(lines[-1]) == {"complete": True, "n": 3}


def test_teacher_folder_combinations_are_checked(tmp_path):
    with pytest.raises(MnnEdgeError, match="one or two --teacher folders"):
        open_teachers([])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(MnnEdgeError, match="one FSA-Net folder and one Face Landmarker folder"):
        open_teachers([tmp_path / "a", tmp_path / "b"])
