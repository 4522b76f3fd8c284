"""From a detection to the square crop the network reads: as close as a detector can get to the
training crop rule (:func:`mnn_edge.data.crop.standard_box`: side = margin x the 68-landmark box's
longest side, centre shifted up), which no detector can apply because it has no 68 landmarks.

CenterFace gives a box *and* five keypoints (eyes, nose, mouth corners). The crop is a linear
function of both, in the box's own units (keypoints relative to the box centre over the box's
longest side, and the box's width and height over that side) to the crop centre's offset from the
box centre and the log of crop side / box side. Its coefficients are fitted by least squares on
real faces of YouTube-Faces *training* people (never the benchmark's held-out people) pasted into
640x480 frames at several sizes, positions and in-plane turns, and stored with their provenance in
``mnn_edge/assets/detector_crop.json`` (``python bench/tracking.py --calibrate --write``).

Measured on held-out halves of those people, the keypoints halve what the box alone leaves: see
the asset's ``errors`` and docs/RUN.md. A detection without keypoints (``--box``, another
detector) or with keypoints the fit was not made for (a prediction far from the box) gets the box
rule: side = ``BOX_CROP_SCALE`` x the box's longest side, centre ``BOX_CROP_SHIFT_Y`` of it lower.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from mnn_edge.errors import MnnEdgeError
from mnn_edge.run.detect import Detection

# The box rule (median crop side / CenterFace box side 1.39, centre 0.037 of the side lower; see
# the asset's "box_rule").
BOX_CROP_SCALE = 1.39
BOX_CROP_SHIFT_Y = 0.037
# A keypoint crop further than this from the box rule's (centre offset in crop sides, side ratio)
# is not trusted: keypoints that far off belong to a detection the fit never saw.
MAX_CENTRE_DEPARTURE = 0.2
MAX_SIDE_DEPARTURE = 1.3

ASSET = Path(__file__).resolve().parent.parent / "assets" / "detector_crop.json"
N_FEATURES = 13  # 1, 5 keypoints (x, y), box width and height


def features(box: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """(13,) the crop model's inputs for one detection, in units of the box's longest side."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0)
    centre = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
    rel = (np.asarray(keypoints, dtype=np.float64) - centre) / side
    return np.concatenate([[1.0], rel.reshape(-1), [(x1 - x0) / side, (y1 - y0) / side]])


def box_rule(box: np.ndarray) -> tuple[np.ndarray, float]:
    """Crop (centre, side) from the box alone."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0)
    return np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0 + BOX_CROP_SHIFT_Y * side]), side * BOX_CROP_SCALE


@lru_cache(maxsize=1)
def _coefficients(path: Path = ASSET) -> np.ndarray:
    try:
        doc = json.loads(path.read_text())
        coef = np.asarray(doc["coefficients"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MnnEdgeError(f"{path}: the detector crop calibration cannot be read ({e}); reinstall mnn-edge "
                           "or remake it with python bench/tracking.py --calibrate --write") from e
    if coef.shape != (3, N_FEATURES) or not np.all(np.isfinite(coef)):
        raise MnnEdgeError(f"{path}: coefficients must be 3x{N_FEATURES} finite numbers, got shape {coef.shape}")
    return coef


def apply_model(coef: np.ndarray, box: np.ndarray, keypoints: np.ndarray) -> tuple[np.ndarray, float]:
    """Crop (centre, side) that the linear model ``coef`` (3 x 13) gives for one detection."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0)
    dx, dy, log_ratio = coef @ features(box, keypoints)
    return np.array([(x0 + x1) / 2.0 + dx * side, (y0 + y1) / 2.0 + dy * side]), float(side * np.exp(log_ratio))


def crop_from_detection(det: Detection) -> tuple[np.ndarray, float]:
    """Square crop (centre, side) for a detection: from its box and keypoints when it has them."""
    rule_centre, rule_side = box_rule(det.box)
    kps = det.keypoints
    if kps is None or np.shape(kps) != (5, 2) or not np.all(np.isfinite(kps)):
        return rule_centre, rule_side
    centre, side = apply_model(_coefficients(), det.box, kps)
    far = np.linalg.norm(centre - rule_centre) > MAX_CENTRE_DEPARTURE * rule_side
    if far or not (1 / MAX_SIDE_DEPARTURE <= side / rule_side <= MAX_SIDE_DEPARTURE):
        return rule_centre, rule_side
    return centre, side


def fit_model(boxes: np.ndarray, keypoints: np.ndarray, centres: np.ndarray, sides: np.ndarray) -> np.ndarray:
    """Least-squares coefficients (3 x 13) from detections (boxes (n, 4), keypoints (n, 5, 2)) to the
    training-rule crops of the same faces (centres (n, 2), sides (n,))."""
    x = np.stack([features(b, k) for b, k in zip(boxes, keypoints)])
    box_side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    box_centre = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    targets = np.column_stack([(centres - box_centre) / box_side[:, None], np.log(sides / box_side)])
    return np.linalg.lstsq(x, targets, rcond=None)[0].T
