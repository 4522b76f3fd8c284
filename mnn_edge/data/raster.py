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


def rasterize(xy: np.ndarray, depth: np.ndarray, tris: np.ndarray, height: int, width: int) -> Raster:
    """Rasterise triangles with vertex image coords ``xy`` (V,2) and ``depth`` (V,) (larger = nearer)."""
    p = xy[tris]  # (T,3,2)
    x0, y0 = p[:, 0, 0], p[:, 0, 1]
    x1, y1 = p[:, 1, 0], p[:, 1, 1]
    x2, y2 = p[:, 2, 0], p[:, 2, 1]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    xmin = np.clip(np.ceil(p[..., 0].min(axis=1)), 0, width - 1).astype(np.int64)
    xmax = np.clip(np.floor(p[..., 0].max(axis=1)), -1, width - 1).astype(np.int64)
    ymin = np.clip(np.ceil(p[..., 1].min(axis=1)), 0, height - 1).astype(np.int64)
    ymax = np.clip(np.floor(p[..., 1].max(axis=1)), -1, height - 1).astype(np.int64)
    bw = np.maximum(xmax - xmin + 1, 0)
    bh = np.maximum(ymax - ymin + 1, 0)
    keep = (np.abs(area) > 1e-9) & (bw > 0) & (bh > 0)
    # Off-image triangles have a box clipped to nothing or to the border column; both are exact.
    keep &= (p[..., 0].max(axis=1) >= 0) & (p[..., 0].min(axis=1) <= width - 1)
    keep &= (p[..., 1].max(axis=1) >= 0) & (p[..., 1].min(axis=1) <= height - 1)
    tid = np.nonzero(keep)[0]
    counts = (bw * bh)[tid]
    total = int(counts.sum())
    out_tri = np.full((height, width), -1, dtype=np.int32)
    out_bary = np.zeros((height, width, 3), dtype=np.float32)
    out_depth = np.full((height, width), -np.inf, dtype=np.float32)
    if total == 0:
        return Raster(out_tri, out_bary, out_depth)

    frag_t = np.repeat(tid, counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    local = np.arange(total) - starts
    fw = bw[frag_t]
    px = (xmin[frag_t] + local % fw).astype(np.float64)
    py = (ymin[frag_t] + local // fw).astype(np.float64)
    inv = 1.0 / area[frag_t]
    ax, ay = x0[frag_t], y0[frag_t]
    bx, by = x1[frag_t], y1[frag_t]
    cx, cy = x2[frag_t], y2[frag_t]
    w1 = ((px - ax) * (cy - ay) - (cx - ax) * (py - ay)) * inv
    w2 = ((bx - ax) * (py - ay) - (px - ax) * (by - ay)) * inv
    w0 = 1.0 - w1 - w2
    eps = -1e-7
    inside = (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
    frag_t, px, py = frag_t[inside], px[inside], py[inside]
    w = np.stack([w0[inside], w1[inside], w2[inside]], axis=1)
    z = (w * depth[tris[frag_t]]).sum(axis=1)
    pid = py.astype(np.int64) * width + px.astype(np.int64)
    order = np.lexsort((-z, pid))
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
