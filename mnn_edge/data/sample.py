"""The one in-memory form every dataset reader produces and every consumer (training, evaluation,
calibration, mnn-run tests) reads. Readers fill what their format has and leave the rest None.

On-disk layout shared by the synthetic generator and the AFLW2000-3D / 300W-LP readers: one
``NAME.jpg`` + ``NAME.mat`` per face, with AFLW2000-3D's keys ``Pose_Para`` (1x7: pitch, yaw, roll
[rad], tx, ty, tz, scale) and ``pt3d_68`` (3x68 image pixels, row 3 depth). Synthetic faces add
``visibility`` (1x68, 1 = visible) and ``pose_mnn`` (1x6: the exact label in this toolkit's
convention, see :mod:`mnn_edge.geometry`, in image pixels).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMATS = ("synthetic", "aflw2000", "300wlp", "biwi", "300w", "cofw", "wflw", "keypoints-csv")


@dataclass
class FaceSample:
    """One annotated face in its original image."""

    image_path: Path
    landmarks: np.ndarray | None = None  # (L, 2) image px, pixel centres on integers; NaN = missing
    visibility: np.ndarray | None = None  # (L,) float32, 1 visible / 0 occluded
    angles: np.ndarray | None = None  # (3,) yaw, pitch, roll in degrees (geometry.py convention)
    pose: np.ndarray | None = None  # (6,) exact image-space pose when the source knows it (synthetic)
    box: np.ndarray | None = None  # (4,) x0, y0, x1, y1 image px, when no landmarks define the crop
    source: str = ""  # format name
    pose_origin: str = "label"  # where angles/pose come from: "label" (the dataset's own) or "teacher"


@dataclass
class CropItem:
    """A face cropped to the network's input, labels mapped into crop pixels."""

    image: np.ndarray  # (S, S, 3) uint8 RGB
    crop_to_image: np.ndarray  # 2x3 affine, crop px -> original image px
    landmarks: np.ndarray | None  # (L, 2) crop px
    visibility: np.ndarray | None  # (L,)
    pose: np.ndarray | None  # (6,) crop-space pose: yaw, pitch, roll deg; tx, ty crop px; tz scale
