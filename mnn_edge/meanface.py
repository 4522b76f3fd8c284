"""The MNN authors' 68-point 3D mean face, in iBUG/300W order (BSD-2, see assets/LICENSE.mean_face).

From github.com/pcr-upm/faces_framework (R. Valle), reordered to iBUG 0..67. Axes: x to image
right, y up, z toward the camera; nose tip at the origin; half face width about 0.71 units.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

MEAN_FACE_FILE = Path(__file__).parent / "assets" / "mean_face_68.txt"


@lru_cache(maxsize=1)
def _load() -> np.ndarray:
    pts = np.loadtxt(MEAN_FACE_FILE, comments="#")
    if pts.shape != (68, 3):
        raise ValueError(f"{MEAN_FACE_FILE}: expected 68x3 points, got {pts.shape}")
    pts.setflags(write=False)
    return pts


def mean_face() -> np.ndarray:
    """(68, 3) float64, read-only."""
    return _load()
