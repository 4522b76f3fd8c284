"""From a detection to the network's crop: the box and CenterFace's keypoints put the crop where
the training crop rule would, closer than the box alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnn_edge.errors import MnnEdgeError
from mnn_edge.run import det_crop
from mnn_edge.run.detect import Detection


def test_a_detection_without_keypoints_gets_the_box_rule():
    centre, side = det_crop.crop_from_detection(Detection(np.array([100.0, 50.0, 200.0, 170.0]), 0.9))
    # longest side 120 -> crop 1.39 x 120, centre 0.037 x 120 below the box centre
    assert side == pytest.approx(166.8)
    np.testing.assert_allclose(centre, [150.0, 110.0 + 4.44])


def test_keypoints_far_from_the_box_fall_back_to_the_box_rule():
    box = np.array([100.0, 100.0, 200.0, 220.0])
    wild = np.array([[900.0, 900.0]] * 5)  # a keypoint read the fit never saw
    assert det_crop.crop_from_detection(Detection(box, 0.9, wild))[1] == pytest.approx(det_crop.box_rule(box)[1])
    nan = np.full((5, 2), np.nan)
    np.testing.assert_allclose(det_crop.crop_from_detection(Detection(box, 0.9, nan))[0], det_crop.box_rule(box)[0])


def test_the_fit_recovers_a_known_linear_model():
    rng = np.random.default_rng(0)
    truth = rng.normal(0, 0.05, size=(3, det_crop.N_FEATURES))
    boxes = np.column_stack([rng.uniform(0, 100, 200), rng.uniform(0, 100, 200)])
    boxes = np.column_stack([boxes, boxes + rng.uniform(60, 120, size=(200, 2))])
    kps = (boxes[:, None, :2] + boxes[:, None, 2:]) / 2 + rng.normal(0, 20, size=(200, 5, 2))
    crops = [det_crop.apply_model(truth, b, k) for b, k in zip(boxes, kps)]
    fitted = det_crop.fit_model(boxes, kps, np.stack([c for c, _ in crops]), np.array([s for _, s in crops]))
    np.testing.assert_allclose(fitted, truth, atol=1e-9)


def test_an_unreadable_calibration_is_one_clear_error(tmp_path):
    bad = tmp_path / "detector_crop.json"
    bad.write_text(json.dumps({"coefficients": [[1.0, 2.0]]}))
    with pytest.raises(MnnEdgeError, match="3x13"):
        det_crop._coefficients(bad)
    bad.write_text("{not json")
    with pytest.raises(MnnEdgeError, match="cannot be read.*--calibrate --write"):
        det_crop._coefficients(bad)


def test_the_shipped_calibration_frames_real_faces_closer_than_the_box(shared_data):
    """Real faces of held-out people (the calibration used training people only), pasted at tracked
    sizes and turns: the keypoint crop's centre and side are nearer the training-rule crop."""
    from mnn_edge.data.readers import DataSource
    from mnn_edge.errors import MissingDependencyError
    from mnn_edge.run.detect import CenterFaceDetector, find_centerface_model
    from mnn_edge.run.track_videos import FACE_SIDE, background, load_photos, paste_face

    try:
        find_centerface_model()
    except MissingDependencyError as e:
        pytest.skip(str(e))
    faces = DataSource(shared_data / "real/ytf_keypoints/train", "keypoints-csv", subset="heldout").read()[::40][:12]
    rng = np.random.default_rng(1)
    bg = background(rng)
    detector = CenterFaceDetector(max_side=320)
    errors = {"box": [], "keypoints": []}
    for photo in load_photos(faces):
        for side, turn in ((90, -20.0), (150, 0.0), (120, 25.0)):
            frame, truth = paste_face(photo, bg, np.array([320.0, 240.0]), side / FACE_SIDE, turn)
            centre, crop_side = truth.crop()
            det = max(detector.detect(frame), key=lambda d: d.score)
            for name, (c, s) in (("box", det_crop.box_rule(det.box)), ("keypoints", det_crop.crop_from_detection(det))):
                errors[name].append(np.linalg.norm(c - centre) / crop_side + abs(np.log(s / crop_side)))
    assert len(errors["box"]) == 36
    # measured: median framing error (centre off + |log side ratio|) 0.114 (box) vs 0.073 (keypoints)
    assert np.median(errors["keypoints"]) < 0.8 * np.median(errors["box"]), errors


def test_the_calibration_fits_on_one_half_of_the_people_and_scores_on_the_other(shared_data):
    from mnn_edge.data.readers import DataSource
    from mnn_edge.data.readers.keypoints_csv import person_of
    from mnn_edge.errors import MissingDependencyError
    from mnn_edge.run.detect import find_centerface_model
    from mnn_edge.run.track_eval import detector_crop_fit

    try:
        find_centerface_model()
    except MissingDependencyError as e:
        pytest.skip(str(e))
    faces = DataSource(shared_data / "real/ytf_keypoints/train", "keypoints-csv", subset="train").read()[::60][:16]
    doc = detector_crop_fit(faces, [person_of(s.image_path) for s in faces])
    assert doc["faces"] >= 50 and doc["people"] >= 8
    assert np.asarray(doc["coefficients"]).shape == (3, det_crop.N_FEATURES)
    errors = doc["errors_on_held_out_half"]
    assert errors["keypoints"]["centre_median"] < errors["box_rule"]["centre_median"]
    with pytest.raises(MnnEdgeError, match="groups for"):
        detector_crop_fit(faces, ["one person"])
