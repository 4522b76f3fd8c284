"""How a face's box moved between two frames, from the pixels: median flow.

The network's own outputs are a poor guide for where the face went: the pose model's (tx, ty)
follows a shifted face with a median slope of ~0.6 (and the wrong way on some faces), so a crop
driven by it drifts off the face between detections. The image itself says it directly: a grid
of points inside the face is tracked with pyramidal Lucas-Kanade from the previous frame to this
one and back; points that do not come back to where they started (forward-backward error) are
unreliable and dropped; the median displacement of the rest is the box's shift, and the median
ratio of their pairwise distances its scale (Kalal et al., "Forward-backward error", ICPR 2010).
Too few reliable points, or a large error, means the box no longer holds what it held — a cut,
an occlusion, a face that left — and the caller re-detects instead of drifting. About 1 ms per
face on one core.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

GRID = 10  # points per side of the grid
INNER = 0.6  # the grid covers this central fraction of the crop (the face, not the background)
MIN_POINTS = 12  # fewer reliable points than this: the motion is unknown
MAX_FB_PX = 2.0  # median forward-backward error (px) above this: the motion is unknown
MIN_NCC = 0.6  # the crop's centre now vs before, normalised cross-correlation: below, it holds something else
PATCH = 24  # side of the patches compared, px
_LK = {"winSize": (15, 15), "maxLevel": 3,
       "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)}


@dataclass(frozen=True)
class BoxMotion:
    shift: np.ndarray  # (2,) px, this frame minus the previous
    scale: float  # side now / side before


def to_gray(image_bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr


def grid_points(center: np.ndarray, side: float, shape: tuple[int, ...]) -> np.ndarray:
    """(N, 1, 2) float32 grid over the central part of a crop, inside the frame."""
    half = INNER * side / 2.0
    u = np.linspace(-half, half, GRID)
    pts = np.stack(np.meshgrid(center[0] + u, center[1] + u), -1).reshape(-1, 2)
    h, w = shape[:2]
    pts = pts[(pts[:, 0] >= 0) & (pts[:, 0] <= w - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= h - 1)]
    return pts.astype(np.float32).reshape(-1, 1, 2)


def boxes_motion(prev_gray: np.ndarray, gray: np.ndarray,
                 boxes: list[tuple[np.ndarray, float]]) -> list[BoxMotion | None]:
    """How each crop (centre, side) moved from ``prev_gray`` to ``gray``; None where unknown.

    Every crop's points go through one Lucas-Kanade call each way, so the two image pyramids are
    built once per frame, not once per face (each point is tracked on its own: the same result)."""
    if prev_gray.shape != gray.shape:
        return [None] * len(boxes)
    grids = [grid_points(c, s, gray.shape) for c, s in boxes]
    used = [k for k, g in enumerate(grids) if len(g) >= MIN_POINTS]
    out: list[BoxMotion | None] = [None] * len(boxes)
    if not used:
        return out
    p0 = np.concatenate([grids[k] for k in used])
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev_gray, gray, p0, None, **_LK)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(gray, prev_gray, p1, None, **_LK)
    ok = (st1.ravel() == 1) & (st2.ravel() == 1)
    fb = np.linalg.norm((p0 - back).reshape(-1, 2), axis=1)
    ok &= np.isfinite(fb)
    start = 0
    for k in used:
        end = start + len(grids[k])
        part = slice(start, end)
        start = end
        out[k] = _median_flow(prev_gray, gray, boxes[k], p0[part].reshape(-1, 2), p1[part].reshape(-1, 2),
                              fb[part], ok[part])
    return out


def box_motion(prev_gray: np.ndarray, gray: np.ndarray, center: np.ndarray, side: float) -> BoxMotion | None:
    """How one crop (``center``, ``side``) moved from ``prev_gray`` to ``gray``; None when unknown."""
    return boxes_motion(prev_gray, gray, [(center, side)])[0]


def _median_flow(prev_gray: np.ndarray, gray: np.ndarray, box: tuple[np.ndarray, float], p0: np.ndarray,
                 p1: np.ndarray, fb: np.ndarray, ok: np.ndarray) -> BoxMotion | None:
    """One crop's motion from its tracked points (forward-backward error ``fb``, usable ``ok``)."""
    center, side = box
    if ok.sum() < MIN_POINTS:
        return None
    med_fb = float(np.median(fb[ok]))
    if med_fb > MAX_FB_PX:
        return None
    keep = ok & (fb <= med_fb)
    a, b = p0[keep], p1[keep]
    if len(a) < MIN_POINTS // 2:
        return None
    shift = np.median(b - a, axis=0).astype(np.float64)
    i, j = np.triu_indices(len(a), k=1)
    d0 = np.linalg.norm(a[i] - a[j], axis=1)
    d1 = np.linalg.norm(b[i] - b[j], axis=1)
    valid = d0 > 1e-3
    scale = float(np.median(d1[valid] / d0[valid])) if valid.any() else 1.0
    if patch_ncc(prev_gray, center, side, gray, center + shift, side * scale) < MIN_NCC:
        return None  # the points moved consistently, but over something else (a cut to a still backdrop)
    return BoxMotion(shift, scale)


def _patch(gray: np.ndarray, center: np.ndarray, side: float) -> np.ndarray:
    k = PATCH / max(INNER * side, 1.0)
    m = np.array([[k, 0.0, PATCH / 2.0 - k * center[0]], [0.0, k, PATCH / 2.0 - k * center[1]]], np.float32)
    return cv2.warpAffine(gray, m, (PATCH, PATCH), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float32)


def patch_ncc(prev_gray: np.ndarray, c0: np.ndarray, s0: float, gray: np.ndarray, c1: np.ndarray, s1: float) -> float:
    """Normalised cross-correlation of the central part of two crops (1 = the same pattern)."""
    a, b = _patch(prev_gray, c0, s0), _patch(gray, c1, s1)
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-6 else 0.0
