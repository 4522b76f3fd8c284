"""Re-render a real face at another head pose from its own 3D face mesh (face profiling).

The method of 300W-LP (Zhu et al., CVPR 2016), with a per-photo mesh instead of a fitted 3DMM:

- the face is the mesh (x, y in image pixels, depth toward the camera in pixels); two rings of
  *anchors* around its oval carry the rest of the picture: the inner ring (hair, ears) turns with
  the head at the oval's depth, the outer ring and the image border stay where they are, so the
  background does not turn and the band between the rings stretches;
- every point moves by the rotation about a pivot at the oval's depth behind the face centre, the
  triangles are z-buffered (the face's back-facing triangles culled) and each output pixel takes
  the source pixel its triangle maps it to, in one ``cv2.remap``;
- the 68 landmarks are lifted onto the mesh (the depth of the surface under each, the nearest oval
  point's depth where a landmark lies outside the mesh), turned with it and projected: AFLW2000-3D's
  convention of projected 3D points, a jaw point stays on the jaw when it turns out of sight.

Rotations are given in the toolkit's y-up frame (:mod:`mnn_edge.geometry`): a head whose pose was
R is, after ``Q``, a head whose pose is ``Q @ R``; in the picture (y down, depth toward the camera)
that is ``F Q F`` with F = diag(1, -1, 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from mnn_edge.data.profile.topology import MeshTopology
from mnn_edge.data.raster import rasterize

INNER_RING = 1.3  # anchors turning with the head: the oval scaled by this about its centre
OUTER_RING = 2.0  # anchors that stay: the oval scaled by this
BORDER_STEPS = 8  # fixed anchors per image side
FLIP_Y = np.diag([1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Profiled:
    """One re-rendered face."""

    image: np.ndarray  # (H, W, 3) uint8 RGB, the source's size
    landmarks: np.ndarray  # (68, 2) image px
    depth: np.ndarray  # (68,) px toward the camera, larger = nearer
    visibility: np.ndarray  # (68,) float32, 1 = the surface seen at the landmark is the landmark's own
    in_frame: bool  # every landmark lies inside the image


def picture_rotation(q: np.ndarray) -> np.ndarray:
    """A y-up rotation written in picture axes (x right, y down, depth toward the camera)."""
    return FLIP_Y @ np.asarray(q, dtype=np.float64) @ FLIP_Y


def _surface_depth(mesh: np.ndarray, topo: MeshTopology, points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Depth of the nearest mesh surface under each 2D point; the nearest oval point's depth off the mesh.

    The triangle is the one drawn at the point's pixel; the depth is interpolated at the exact
    sub-pixel point within it (the pixel centre's depth is off by the slope on a steep cheek).
    """
    r = rasterize(mesh[:, :2], mesh[:, 2], topo.triangles, height, width)
    ix = np.clip(np.rint(points[:, 0]).astype(int), 0, width - 1)
    iy = np.clip(np.rint(points[:, 1]).astype(int), 0, height - 1)
    tri = r.tri[iy, ix]
    depth = np.empty(len(points))
    on = tri >= 0
    if on.any():
        v = mesh[topo.triangles[tri[on]]]  # (P, 3 vertices, 3)
        e1, e2, d = v[:, 1, :2] - v[:, 0, :2], v[:, 2, :2] - v[:, 0, :2], points[on] - v[:, 0, :2]
        det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        b1 = (d[:, 0] * e2[:, 1] - d[:, 1] * e2[:, 0]) / det
        b2 = (e1[:, 0] * d[:, 1] - e1[:, 1] * d[:, 0]) / det
        depth[on] = (1 - b1 - b2) * v[:, 0, 2] + b1 * v[:, 1, 2] + b2 * v[:, 2, 2]
    if (~on).any():
        oval = mesh[topo.oval]
        d2 = ((points[~on, None, :] - oval[None, :, :2]) ** 2).sum(-1)
        depth[~on] = oval[d2.argmin(axis=1), 2]
    return depth


def _anchors(mesh: np.ndarray, topo: MeshTopology, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(inner ring (K, 3) at the oval's depth, fixed 2D points (M, 2): outer ring and image border)."""
    oval = mesh[topo.oval]
    centre = oval[:, :2].mean(axis=0)
    inner = np.column_stack([centre + INNER_RING * (oval[:, :2] - centre), oval[:, 2]])
    outer = centre + OUTER_RING * (oval[:, :2] - centre)
    t = np.linspace(0.0, 1.0, BORDER_STEPS, endpoint=False)
    x1, y1 = width - 1.0, height - 1.0
    zero, one = np.zeros_like(t), np.ones_like(t)
    border = np.concatenate([np.column_stack([t * x1, zero]), np.column_stack([one * x1, t * y1]),
                             np.column_stack([x1 - t * x1, one * y1]), np.column_stack([zero, y1 - t * y1])])
    margin = 0.5 * max(height, width)  # the outer ring may leave the picture; keep it near
    outer = np.clip(outer, -margin, np.array([x1, y1]) + margin)
    return inner, np.concatenate([outer, border])


def _surround_triangles(n_oval: int, points2d: np.ndarray) -> np.ndarray:
    """Delaunay triangles of the oval + anchors, without those inside the oval (the mesh covers it)."""
    tri = Delaunay(points2d).simplices
    return tri[~(tri < n_oval).all(axis=1)]


def render_profile(image: np.ndarray, mesh: np.ndarray, topo: MeshTopology, landmarks: np.ndarray,
                   q: np.ndarray) -> Profiled:
    """``image`` with its face (mesh ``(468, 3)``: x, y px, depth px toward the camera) turned by ``q``.

    ``q`` is a 3x3 rotation in the y-up frame; the landmarks ``(68, 2)`` are the source's, in pixels.
    """
    height, width = image.shape[:2]
    mesh = np.asarray(mesh, dtype=np.float64)
    landmarks = np.asarray(landmarks, dtype=np.float64)
    lm3 = np.column_stack([landmarks, _surface_depth(mesh, topo, landmarks, height, width)])
    inner, fixed = _anchors(mesh, topo, height, width)
    oval = mesh[topo.oval]
    pivot = np.array([*oval[:, :2].mean(axis=0), oval[:, 2].mean()])
    rot = picture_rotation(q)

    def turn(p: np.ndarray) -> np.ndarray:
        return (p - pivot) @ rot.T + pivot

    n_mesh, n_oval = len(mesh), len(topo.oval)
    # Vertex order: mesh, inner ring, fixed anchors; the surround triangulates oval + rings + border.
    src = np.concatenate([mesh[:, :2], inner[:, :2], fixed])
    far = float(mesh[:, 2].min() - (mesh[:, 0].max() - mesh[:, 0].min()))
    dst3 = np.concatenate([turn(mesh), turn(inner), np.column_stack([fixed, np.full(len(fixed), far)])])
    surround_ids = np.concatenate([topo.oval, n_mesh + np.arange(len(inner) + len(fixed))])
    local = _surround_triangles(n_oval, src[surround_ids])
    tris = np.concatenate([topo.triangles, surround_ids[local]])
    # The surround's triangles must face the camera to survive culling-free z-buffering: orientation
    # does not matter to them; only the face's own triangles are culled when they turn away.
    cullable = np.zeros(len(tris), dtype=bool)
    cullable[: len(topo.triangles)] = True
    r = rasterize(dst3[:, :2], dst3[:, 2], tris, height, width, cullable=cullable)
    # Each output pixel reads the source point its triangle's barycentrics give.
    hit = r.mask
    src_xy = np.einsum("pk,pkc->pc", r.bary[hit], src[tris[r.tri[hit]]])
    map_x = np.tile(np.arange(width, dtype=np.float32), (height, 1))
    map_y = np.tile(np.arange(height, dtype=np.float32)[:, None], (1, width))
    map_x[hit], map_y[hit] = src_xy[:, 0], src_xy[:, 1]
    out = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    lm_dst = turn(lm3)
    xy, depth = lm_dst[:, :2], lm_dst[:, 2]
    in_frame = bool(((xy >= 0) & (xy <= [width - 1, height - 1])).all())
    return Profiled(image=out, landmarks=xy, depth=depth, visibility=_visible(xy, depth, r.depth, mesh),
                    in_frame=in_frame)


def _visible(xy: np.ndarray, depth: np.ndarray, zbuf: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """Seen when the surface drawn at the landmark is not clearly nearer than the landmark itself."""
    h, w = zbuf.shape
    tol = 0.03 * float(mesh[:, 0].max() - mesh[:, 0].min())
    ix = np.clip(np.rint(xy[:, 0]).astype(int), 0, w - 1)
    iy = np.clip(np.rint(xy[:, 1]).astype(int), 0, h - 1)
    return (zbuf[iy, ix] <= depth + tol).astype(np.float32)
