"""What every dataset format reader shares: the skip signal, the reader record, image loading and
the checks every sample passes. The format modules import this, never the package, so the package
can import them without a cycle."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mnn_edge.data.sample import FaceSample
from mnn_edge.errors import MnnEdgeError

# A landmark may lie a little outside the image (a jaw cut by the border is legitimate; the crop
# pads). Farther than this fraction of the face's landmark-box size, the annotation is broken.
OUTSIDE_TOLERANCE = 0.5

class SkipFile(Exception):
    """Raised by a format parser: this file/line is unusable, for the short reason given."""


@dataclass(frozen=True)
class FormatReader:
    """How one format is read: which items exist, and how one item becomes a FaceSample."""

    list_items: Callable[[Path], Sequence]
    parse_item: Callable[[object], FaceSample]
    # The identity an item belongs to (a person), for splits that never put one person on both
    # sides; None where the format does not know it.
    group_of: Callable[[object], str] | None = None


def load_image_rgb(path: str | Path) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 RGB; gray is replicated, alpha dropped, 16 bit scaled.

    EXIF orientation is deliberately not applied: dataset landmarks refer to the stored pixel
    array (MATLAB's imread and Pillow's size ignore it too).
    """
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise MnnEdgeError(f"cannot read image {path}")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return np.ascontiguousarray(np.repeat(img[:, :, None], 3, axis=2))
    if img.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(img, 3, axis=2))
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image, reading only its header when Pillow can; raises SkipFile."""
    if not path.is_file():
        raise SkipFile("missing image")
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - any failure of the fast path falls back to a full decode
        pass
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise SkipFile("unreadable image")
    return img.shape[1], img.shape[0]


def check_sample(sample: FaceSample) -> None:
    """Checks common to every format (raises SkipFile): image readable, numbers finite, landmarks
    inside the image up to :data:`OUTSIDE_TOLERANCE`."""
    width, height = image_size(Path(sample.image_path))
    for name in ("angles", "pose", "box", "visibility"):
        value = getattr(sample, name)
        if value is not None and not np.all(np.isfinite(value)):
            raise SkipFile(f"NaN in {name}")
    if sample.landmarks is None:
        if sample.box is None:
            raise SkipFile("no landmarks or box")
        x0, y0, x1, y1 = sample.box
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        if not (x1 > x0 and y1 > y0 and -0.5 <= cx <= width - 0.5 and -0.5 <= cy <= height - 0.5):
            raise SkipFile("box outside the image")
        return
    lms = np.asarray(sample.landmarks)
    valid = np.all(np.isfinite(lms), axis=1)
    if not valid.any():
        raise SkipFile("NaN in landmarks")
    pts = lms[valid]
    extent = float(np.max(pts.max(0) - pts.min(0)))
    tol = OUTSIDE_TOLERANCE * max(extent, 1.0)
    lo, hi = -0.5 - tol, np.array([width - 0.5 + tol, height - 0.5 + tol])
    if np.any(pts < lo) or np.any(pts > hi):
        raise SkipFile("landmarks outside the image")
