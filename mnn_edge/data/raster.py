"""A vectorised numpy z-buffer rasteriser for triangle meshes.

All candidate (triangle, pixel) pairs inside each triangle's bounding box are enumerated at once,
tested with barycentric coordinates, and the nearest fragment per pixel wins after one lexsort.
Pixel centres are on integer coordinates (OpenCV's convention, like the labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Raster:
    """Per-pixel result: triangle id (-1 = empty), barycentric weights (H,W,3), depth (-inf empty)."""

    tri: np.ndarray
    bary: np.ndarray
    depth: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.tri >= 0


def rasterize(xy: np.ndarray, depth: np.ndarray, tris: np.ndarray, height: int, width: int,
              cullable: np.ndarray | None = None) -> Raster:
    """Rasterise triangles with vertex image coords ``xy`` (V,2) and ``depth`` (V,) (larger = nearer).

    ``cullable`` (T,) marks triangles of closed, outward-oriented surfaces: those facing away from
    the camera are skipped (on a closed surface the nearest fragment always faces the camera).
    """
    p = xy[tris]  # (T,3,2)
    ax, ay = p[:, 0, 0], p[:, 0, 1]
    bx, by = p[:, 1, 0], p[:, 1, 1]
    cx, cy = p[:, 2, 0], p[:, 2, 1]
    area = (bx - ax) * (cy - ay) - (cx - ax) * (by - ay)
    ymin = np.clip(np.ceil(p[..., 1].min(axis=1)), 0, height).astype(np.int64)
    ymax = np.clip(np.floor(p[..., 1].max(axis=1)), -1, height - 1).astype(np.int64)
    keep = (np.abs(area) > 1e-9) & (ymax >= ymin)
    keep &= (p[..., 0].max(axis=1) >= 0) & (p[..., 0].min(axis=1) <= width - 1)
    if cullable is not None:
        # Image y points down, so a camera-facing (counter-clockwise in x-right/y-up) triangle has
        # negative area here.
        keep &= ~(cullable & (area > 0))
    out_tri = np.full((height, width), -1, dtype=np.int32)
    out_bary = np.zeros((height, width, 3), dtype=np.float32)
    out_depth = np.full((height, width), -np.inf, dtype=np.float32)
    tid = np.nonzero(keep)[0]
    if len(tid) == 0:
        return Raster(out_tri, out_bary, out_depth)

    # Barycentrics as linear functions of the pixel: w_k = a_k x + b_k y + c_k (k = 1, 2; w0 = rest).
    inv = 1.0 / area[tid]
    ax, ay, bx, by, cx, cy = (v[tid] for v in (ax, ay, bx, by, cx, cy))
    a1, b1 = (cy - ay) * inv, -(cx - ax) * inv
    c1 = -(a1 * ax + b1 * ay)
    a2, b2 = -(by - ay) * inv, (bx - ax) * inv
    c2 = -(a2 * ax + b2 * ay)
    coef = np.stack([np.stack([-a1 - a2, a1, a2]), np.stack([-b1 - b2, b1, b2]),
                     np.stack([1 - c1 - c2, c1, c2])])  # (3 coef, 3 weights, T)

    # Exact x span of every (triangle, row): the intersection of the three half-planes w_k >= 0.
    rows = (ymax - ymin + 1)[tid]
    row_t = np.repeat(np.arange(len(tid)), rows)
    y = (ymin[tid][row_t] + np.arange(len(row_t)) - np.repeat(np.cumsum(rows) - rows, rows)).astype(np.float64)
    a = coef[0][:, row_t]
    rest = coef[1][:, row_t] * y + coef[2][:, row_t]
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = -rest / a
    eps = 1e-7
    lo = np.where(a > 0, bound, -np.inf).max(axis=0) - eps
    hi = np.where(a < 0, bound, np.inf).min(axis=0) + eps
    empty = ((a == 0) & (rest < 0)).any(axis=0)
    x0 = np.clip(np.ceil(lo), 0, width).astype(np.int64)
    x1 = np.clip(np.floor(hi), -1, width - 1).astype(np.int64)
    span = np.where(empty, 0, np.maximum(x1 - x0 + 1, 0))
    frag_r = np.repeat(np.arange(len(row_t)), span)
    if len(frag_r) == 0:
        return Raster(out_tri, out_bary, out_depth)
    px = x0[frag_r] + np.arange(len(frag_r)) - np.repeat(np.cumsum(span) - span, span)
    py = y[frag_r]
    ft = row_t[frag_r]
    w = (coef[0][:, ft] * px + coef[1][:, ft] * py + coef[2][:, ft]).T  # (F,3)
    frag_t = tid[ft]
    z = (w * depth[tris[frag_t]]).sum(axis=1)
    pid = py.astype(np.int64) * width + px
    # One sort key: pixel id, then nearest first within a pixel (depth scaled into [0, 1)).
    zn = (z.max() - z) / (np.ptp(z) + 1e-9) * 0.999
    order = np.argsort(pid + zn, kind="stable")
    pid_s = pid[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = pid_s[1:] != pid_s[:-1]
    win = order[first]
    flat = pid[win]
    out_tri.reshape(-1)[flat] = frag_t[win]
    out_bary.reshape(-1, 3)[flat] = w[win]
    out_depth.reshape(-1)[flat] = z[win]
    return Raster(out_tri, out_bary, out_depth)


def interpolate(r: Raster, tris: np.ndarray, attr: np.ndarray) -> np.ndarray:
    """Per-pixel barycentric interpolation of a per-vertex attribute (V,C) -> (H,W,C); 0 outside."""
    h, w = r.tri.shape
    out = np.zeros((h, w, attr.shape[1]), dtype=np.float32)
    m = r.mask
    t = tris[r.tri[m]]  # (P,3)
    b = r.bary[m]
    out[m] = np.einsum("pk,pkc->pc", b, attr[t])
    return out
