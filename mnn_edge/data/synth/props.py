"""Glasses: a 3D wire frame in front of the eyes, drawn with a depth test against the z-buffer.

Clear lenses leave the eye landmarks visible; sunglasses (dark filled lenses) occlude the
landmarks they cover, which the caller marks through the returned mask.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Projector = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # (N,3) -> (xy (N,2), depth (N,))


def _rim(centre: np.ndarray, rx: float, ry: float, n: int = 20) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    squarish = np.sign(np.cos(a)) * np.abs(np.cos(a)) ** 0.7, np.sign(np.sin(a)) * np.abs(np.sin(a)) ** 0.7
    return centre + np.stack([rx * squarish[0], ry * squarish[1], np.zeros(n)], axis=1)


def draw_glasses(rng: np.random.Generator, img: np.ndarray, verts: np.ndarray, project: Projector,
                 zbuf: np.ndarray, scale: float) -> np.ndarray:
    """Draw glasses into ``img`` (float RGB, in place); returns the mask of opaque (sunglass) lenses."""
    size = img.shape[0]
    eyes = [verts[36:42].mean(axis=0), verts[42:48].mean(axis=0)]
    front = max(verts[27, 2], verts[[19, 24], 2].max()) + rng.uniform(0.02, 0.06)
    rx, ry = rng.uniform(0.13, 0.17), rng.uniform(0.08, 0.12)
    rims = []
    for c in eyes:
        centre = np.array([c[0] * rng.uniform(1.0, 1.08), c[1] - 0.01, front])
        rims.append(_rim(centre, rx, ry))
    ear_y = verts[[0, 16], 1].mean() - 0.05
    segments = [np.vstack([r, r[:1]]) for r in rims]
    inner = [rims[0][np.argmax(rims[0][:, 0])], rims[1][np.argmin(rims[1][:, 0])]]
    bridge_mid = np.array([0.0, inner[0][1] + 0.03, front + 0.01])
    segments.append(np.array([inner[0], bridge_mid, inner[1]]))
    for rim, side in ((rims[0], -1), (rims[1], 1)):
        outer = rim[np.argmin(rim[:, 0])] if side < 0 else rim[np.argmax(rim[:, 0])]
        segments.append(np.array([outer, [side * 0.8, ear_y, -0.7], [side * 0.82, ear_y, -1.1]]))
    colour = rng.uniform(0, 0.35, size=3) if rng.random() < 0.75 else rng.uniform(0.3, 0.9, size=3)
    width = max(1, int(round(scale * rng.uniform(0.008, 0.02))))
    tol = 0.03 * scale
    sunglasses = rng.random() < 0.2
    lens_mask = np.zeros((size, size), dtype=bool)
    if sunglasses:
        tint = rng.uniform(0.02, 0.2, size=3)
        for rim in rims:
            xy, depth = project(rim)
            layer = np.zeros((size, size), np.uint8)
            cv2.fillPoly(layer, [np.round(xy).astype(np.int32)], 1)
            m = (layer > 0) & (zbuf <= depth.mean() + tol)
            img[m] = img[m] * 0.15 + tint * 0.85
            lens_mask |= m
    for seg in segments:
        # Dense samples so each short piece gets its own depth test.
        t = np.linspace(0, 1, 12)
        pts = np.concatenate([a + (b - a) * t[:, None] for a, b in zip(seg[:-1], seg[1:])])
        xy, depth = project(pts)
        ix = np.clip(np.rint(xy[:, 0]).astype(int), 0, size - 1)
        iy = np.clip(np.rint(xy[:, 1]).astype(int), 0, size - 1)
        seen = (depth + tol >= zbuf[iy, ix]) | lens_mask[iy, ix]
        for k in range(len(pts) - 1):
            if seen[k] and seen[k + 1]:
                p0 = (int(round(xy[k, 0] * 4)), int(round(xy[k, 1] * 4)))
                p1 = (int(round(xy[k + 1, 0] * 4)), int(round(xy[k + 1, 1] * 4)))
                cv2.line(img, p0, p1, tuple(float(v) for v in colour), width, cv2.LINE_AA, shift=2)
    return lens_mask
