"""A closed head mesh whose first 68 vertices are exactly the mean-face landmarks.

The head is star-shaped around a point inside the skull: every vertex is a direction from that
centre times a radius. Landmark vertices keep their exact mean-face positions; the other vertices
(forehead, cheeks, skull, chin underside) lie on an ellipsoid corrected towards the landmarks'
radii near the face, and those in front are then moved onto a height field through the landmarks
(see :func:`_onto_face`). Triangulating the directions on the unit sphere (their convex hull is a
spherical Delaunay triangulation) gives a closed surface with no seam, built once and reused for
every face: per-face shape and expression only move vertices, never change the topology.

Separate pieces (neck, ears) are added as their own small meshes; the z-buffer resolves overlaps.
Coordinates are the mean face's: x right, y up, z toward the camera, nose tip at the origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

import numpy as np
from matplotlib.path import Path as PolyPath
from scipy.interpolate import CloughTocher2DInterpolator
from scipy.spatial import ConvexHull

from mnn_edge.meanface import mean_face

NUM_LANDMARKS = 68
# Inside the skull, behind the eyes: every head direction from here hits the surface once.
HEAD_CENTRE = np.array([0.0, 0.30, -1.15])
# Skull ellipsoid radii (x, y, z) around HEAD_CENTRE: a head ~1.6 units wide, ~2.1 long.
HEAD_RADII = np.array([0.80, 1.22, 1.05])
# Fibonacci-sphere points closer than this (radians) to a landmark direction are dropped, so the
# triangles inside eyes and lips connect landmarks only (their material comes from that).
_EXCLUDE_RAD = 0.07
_SPHERE_POINTS = 700


class Material(IntEnum):
    """Per-triangle material: how the renderer colours a fragment."""

    SKIN = 0
    LIPS = 1
    MOUTH = 2  # inside the inner lip contour
    EYE = 3
    NECK = 4
    EAR = 5
    HAIR = 6  # long-hair curtain
    CLOTH = 7  # torso


EYE_R = tuple(range(36, 42))
EYE_L = tuple(range(42, 48))
LIPS_OUTER = tuple(range(48, 60))
LIPS_INNER = tuple(range(60, 68))
BROW_R = tuple(range(17, 22))
BROW_L = tuple(range(22, 27))
JAW = tuple(range(0, 17))


@dataclass(frozen=True)
class HeadMesh:
    """Template geometry (read-only arrays): vertices (V,3), triangles (T,3), materials (T,)."""

    vertices: np.ndarray
    triangles: np.ndarray
    materials: np.ndarray
    # (V-68, 68) weights spreading landmark displacements onto the other head vertices.
    spread: np.ndarray
    head_vertex_count: int  # vertices [0, head_vertex_count) are the star-shaped head
    cullable: np.ndarray  # (T,) bool: triangles of the closed head (back faces can be skipped)
    face_distance: np.ndarray  # (V_head-68,) distance of each non-landmark head vertex to the nearest landmark


def _fibonacci_sphere(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = np.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.cos(phi), np.sin(theta) * np.sin(phi)], axis=1)


# Below the centre the skull is shallower: under the jaw the surface tucks up toward the neck
# instead of bulging below the chin (which would widen the lower face like a double chin).
HEAD_RADIUS_DOWN = 0.78


def _ellipsoid_radius(dirs: np.ndarray) -> np.ndarray:
    radii = np.broadcast_to(HEAD_RADII, dirs.shape).copy()
    radii[dirs[:, 1] < 0, 1] = HEAD_RADIUS_DOWN
    return 1.0 / np.sqrt(((dirs / radii) ** 2).sum(axis=1))


def _topology_landmarks() -> np.ndarray:
    """Mean face with the lips parted slightly: the closed-mouth inner lip points nearly coincide,
    and the hull must see them apart to put the mouth-interior triangles between them."""
    pts = mean_face().copy()
    pts[[65, 66, 67], 1] -= 0.035
    pts[[61, 62, 63], 1] += 0.01
    pts[[57, 58, 56], 1] -= 0.02
    return pts


def _radius_field(dirs: np.ndarray, lm_dirs: np.ndarray, lm_res: np.ndarray, sigma: float) -> np.ndarray:
    """Ellipsoid radius plus landmark residuals spread by angular Gaussian weights that fade out."""
    cosang = np.clip(dirs @ lm_dirs.T, -1.0, 1.0)
    w = np.exp(-((np.arccos(cosang) / sigma) ** 2))
    corr = (w @ lm_res) / (w.sum(axis=1) + 0.15)
    return _ellipsoid_radius(dirs) + corr


def _onto_face(points: np.ndarray, dirs: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Move the front vertices (along z only) onto a smooth height field z(x, y) through the
    landmarks, and behind the outline outside it. The angular radius field alone lets the cheeks
    bulge out in front of the jaw line (hiding it in frontal views); a height field has one surface
    point per (x, y), so every landmark of a frontal face is on the visible surface."""
    height = CloughTocher2DInterpolator(lm[:, :2], lm[:, 2])
    out = points.copy()
    front = dirs[:, 2] > 0.2
    h = height(points[:, :2])
    inside = np.isfinite(h)
    d = np.linalg.norm(points[:, None, :2] - lm[None, :, :2], axis=2)
    near = d.argmin(axis=1)
    # Outside the outline the surface falls away behind its nearest landmark, never rises in front.
    fall = np.minimum(points[:, 2], lm[near, 2] - 1.2 * d[np.arange(len(d)), near])
    out[front, 2] = np.where(inside, h, fall)[front]
    return out


def _orient_outward(verts: np.ndarray, tris: np.ndarray, centre: np.ndarray) -> np.ndarray:
    a, b, c = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    n = np.cross(b - a, c - a)
    flip = np.einsum("ij,ij->i", n, (a + b + c) / 3 - centre) < 0
    tris = tris.copy()
    tris[flip] = tris[flip][:, [0, 2, 1]]
    return tris


def _inside(poly_idx: tuple[int, ...], pts2d: np.ndarray, lm: np.ndarray) -> np.ndarray:
    return PolyPath(lm[list(poly_idx), :2]).contains_points(pts2d)


def _materials(verts: np.ndarray, tris: np.ndarray, lm: np.ndarray) -> np.ndarray:
    cent = verts[tris].mean(axis=1)
    front = cent[:, 2] > -0.7
    mat = np.full(len(tris), Material.SKIN, dtype=np.int8)
    xy = cent[:, :2]
    lips = front & _inside(LIPS_OUTER, xy, lm)
    mat[lips] = Material.LIPS
    mat[front & _inside(LIPS_INNER, xy, lm)] = Material.MOUTH
    mat[front & (_inside(EYE_R, xy, lm) | _inside(EYE_L, xy, lm))] = Material.EYE
    return mat


def _tube(rings: list[tuple[float, float, float, float]], n_around: int = 16,
          arc: tuple[float, float] = (0.0, 2 * np.pi)) -> tuple[np.ndarray, np.ndarray]:
    """An open tube through horizontal elliptic rings (y, rx, rz, cz), over an arc of angles
    (x = rx cos a, z = cz + rz sin a: a in (pi, 2 pi) is the back half)."""
    closed = np.isclose(arc[1] - arc[0], 2 * np.pi)
    ang = np.linspace(arc[0], arc[1], n_around, endpoint=not closed)
    verts = np.concatenate([np.stack([rx * np.cos(ang), np.full(n_around, y), cz + rz * np.sin(ang)], axis=1)
                            for y, rx, rz, cz in rings])
    tris = []
    for r in range(len(rings) - 1):
        for i in range(n_around if closed else n_around - 1):
            a, b = r * n_around + i, r * n_around + (i + 1) % n_around
            c, d = a + n_around, b + n_around
            tris += [(a, b, c), (b, d, c)]
    return verts, np.array(tris)


# Neck from inside the jaw to inside the torso; shoulders/torso; a curtain of long hair hanging
# behind the ears (rendered only for long-haired faces).
NECK_RINGS = [(-0.25, 0.47, 0.46, -1.25), (-0.9, 0.46, 0.45, -1.30), (-1.6, 0.52, 0.48, -1.30)]
TORSO_RINGS = [(-1.35, 0.58, 0.42, -1.35), (-1.65, 1.30, 0.58, -1.35), (-2.1, 1.75, 0.68, -1.35),
               (-5.0, 1.90, 0.75, -1.35)]
CURTAIN_RINGS = [(0.45, 0.80, 1.06, -1.15), (-0.4, 0.90, 0.98, -1.18), (-1.2, 0.98, 0.88, -1.25),
                 (-1.9, 1.08, 0.80, -1.30)]
CURTAIN_ARC = (np.pi + 0.08, 2 * np.pi - 0.08)  # behind the ears only: hair must not hang over the jaw


def _ear(side: float, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """A cupped oval flap on the side of the head, just behind the jaw line's top."""
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    h, w = 0.30, 0.16
    centre = np.array([side * 0.80, 0.22, -1.12])
    # The flap opens forward and out: rim points go back (-z) and out (x) from the attachment.
    back = (1 + np.cos(ang)) / 2  # 1 at the back rim, 0 at the front (attached) edge
    rim = np.stack([side * (0.2 * back**1.5), h * np.sin(ang) * (1 - 0.25 * (np.sin(ang) < 0)),
                    -w * np.cos(ang)], axis=1)
    verts = np.concatenate([centre[None] + np.array([[side * 0.04, 0, -0.02]]), centre + rim])
    tris = np.array([(0, 1 + i, 1 + (i + 1) % n) for i in range(n)])
    return verts, tris


@lru_cache(maxsize=1)
def head_mesh() -> HeadMesh:
    """The template mesh (cached; arrays are read-only)."""
    lm = mean_face()
    lm_topo = _topology_landmarks()
    lm_off = lm_topo - HEAD_CENTRE
    lm_r = np.linalg.norm(lm_off, axis=1)
    lm_dirs = lm_off / lm_r[:, None]

    sphere = _fibonacci_sphere(_SPHERE_POINTS)
    near = np.arccos(np.clip(sphere @ lm_dirs.T, -1, 1)).min(axis=1) < _EXCLUDE_RAD
    sphere = sphere[~near]
    lm_res = lm_r - _ellipsoid_radius(lm_dirs)
    radii = _radius_field(sphere, lm_dirs, lm_res, sigma=0.22)

    dirs = np.concatenate([lm_dirs, sphere])
    tris = ConvexHull(dirs).simplices.astype(np.int32)
    if len(np.unique(tris)) != len(dirs):
        raise RuntimeError("head mesh: a landmark direction was dropped by the hull")
    extra = _onto_face(HEAD_CENTRE + sphere * radii[:, None], sphere, lm)
    # Topology from the parted-lips face, geometry from the exact mean face.
    head_verts = np.concatenate([lm, extra])
    head_topo = np.concatenate([lm_topo, extra])
    tris = _orient_outward(head_topo, tris, HEAD_CENTRE)
    mats = _materials(head_topo, tris, lm_topo)

    # Landmark displacements reach nearby skin smoothly, fading with distance (canonical space).
    d2 = ((extra[:, None, :] - lm[None]) ** 2).sum(axis=2)
    w = np.exp(-d2 / (2 * 0.12**2))
    spread = w / (w.sum(axis=1, keepdims=True) + 0.1)
    face_distance = np.sqrt(d2.min(axis=1))

    pieces_v, pieces_t, pieces_m = [head_verts], [tris], [mats]
    base = len(head_verts)
    pieces = ((_tube(NECK_RINGS), Material.NECK), (_tube(TORSO_RINGS, 20), Material.CLOTH),
              (_ear(-1.0), Material.EAR), (_ear(1.0), Material.EAR),
              (_tube(CURTAIN_RINGS, 14, CURTAIN_ARC), Material.HAIR))
    for (v, t), m in pieces:
        pieces_v.append(v)
        pieces_t.append(t + base)
        pieces_m.append(np.full(len(t), m, dtype=np.int8))
        base += len(v)
    verts = np.concatenate(pieces_v)
    all_tris = np.concatenate(pieces_t)
    mesh = HeadMesh(vertices=verts, triangles=all_tris, materials=np.concatenate(pieces_m),
                    spread=spread, head_vertex_count=len(head_verts),
                    cullable=all_tris.max(axis=1) < len(head_verts), face_distance=face_distance)
    for arr in (mesh.vertices, mesh.triangles, mesh.materials, mesh.spread, mesh.cullable, mesh.face_distance):
        arr.setflags(write=False)
    return mesh


def vertex_normals(verts: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (unit length) of a consistently oriented mesh."""
    a, b, c = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    fn = np.cross(b - a, c - a)
    vn = np.zeros_like(verts)
    for k in range(3):
        np.add.at(vn, tris[:, k], fn)
    return vn / (np.linalg.norm(vn, axis=1, keepdims=True) + 1e-12)
