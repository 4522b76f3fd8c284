"""Synthetic faces with exact labels: a z-buffered 3D head at a random pose, written like AFLW2000-3D.

Each face comes from its own ``np.random.default_rng([seed, i])``, so a data set depends only on
the seed (not on ``workers``). Labels are exact in :mod:`mnn_edge.geometry`'s convention: the 68
landmarks are ``project(shape_3d, pose)`` for the (deformed) landmark vertices ``shape_3d``, and a
landmark is visible when the z-buffer shows its own surface there and no occluder covers it.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from mnn_edge.data.mesh import BROW_L, BROW_R, Material, head_mesh, vertex_normals
from mnn_edge.data.raster import interpolate, rasterize
from mnn_edge.data.sample import FaceSample
from mnn_edge.data.synth_scene import background, camera_artefacts, draw_occluders, hair_colour, skin_tone
from mnn_edge.data.synth_shape import deformed_vertices, global_stretch, landmark_displacements
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import atomic_path
from mnn_edge.geometry import euler_to_matrix

YAW_RANGE = (-90.0, 90.0)
PITCH_RANGE = (-45.0, 45.0)
ROLL_RANGE = (-45.0, 45.0)
MIN_IMAGE_SIZE = 64
NAME_FORMAT = "synth_{:06d}"


@dataclass(frozen=True)
class SynthLabels:
    """Exact labels of one synthetic face (image pixels, pixel centres on integers)."""

    landmarks: np.ndarray  # (68, 2) x, y
    depth: np.ndarray  # (68,) s * (R X)_z, larger = nearer the camera
    visibility: np.ndarray  # (68,) float32, 1 visible / 0 self-occluded or under an occluder
    pose: np.ndarray  # (6,) yaw, pitch, roll deg; tx, ty px; tz = scale (geometry.py)
    shape_3d: np.ndarray  # (68, 3) the deformed landmark vertices (mean-face units and axes)
    jpeg_quality: int

    def to_mat(self) -> dict[str, np.ndarray]:
        """The ``.mat`` content: AFLW2000-3D keys plus ``visibility``, ``pose_mnn``, ``shape_3d``."""
        yaw, pitch, roll, tx, ty, s = self.pose
        pose_para = np.array([[np.deg2rad(pitch), np.deg2rad(yaw), np.deg2rad(roll), tx, ty, 0.0, s]])
        pt3d = np.vstack([self.landmarks.T, self.depth[None]])
        return {"Pose_Para": pose_para, "pt3d_68": pt3d, "visibility": self.visibility[None].astype(np.float64),
                "pose_mnn": self.pose[None].astype(np.float64), "shape_3d": self.shape_3d.astype(np.float64)}

    def to_sample(self, image_path: Path) -> FaceSample:
        return FaceSample(image_path=Path(image_path), landmarks=self.landmarks.copy(),
                          visibility=self.visibility.copy(), angles=self.pose[:3].copy(),
                          pose=self.pose.copy(), source="synthetic")


def _signed(rng: np.random.Generator, lo: float, hi: float) -> float:
    """Half uniform over the range, half concentrated near zero (where most real faces are)."""
    if rng.random() < 0.5:
        return float(rng.uniform(lo, hi))
    return float(np.clip(rng.normal(0.0, (hi - lo) / 7.0), lo, hi))


def sample_pose(rng: np.random.Generator, shape_3d: np.ndarray, image_size: int) -> np.ndarray:
    """Random pose whose 68 projected landmarks lie inside the image."""
    yaw = float(rng.uniform(*YAW_RANGE))
    pitch, roll = _signed(rng, *PITCH_RANGE), _signed(rng, *ROLL_RANGE)
    scale = image_size * rng.uniform(0.2, 0.42)
    cam = shape_3d @ euler_to_matrix(yaw, pitch, roll).T
    xy = np.stack([scale * cam[:, 0], -scale * cam[:, 1]], axis=1)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    target = image_size / 2 + rng.uniform(-0.1, 0.1, size=2) * image_size
    t = target - (lo + hi) / 2
    margin = 2.0
    t = np.clip(t, margin - lo, image_size - 1 - margin - hi)
    return np.array([yaw, pitch, roll, t[0], t[1], scale])


def _project_all(verts: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rot = euler_to_matrix(*pose[:3])
    cam = verts @ rot.T
    s = pose[5]
    xy = np.stack([s * cam[:, 0] + pose[3], -s * cam[:, 1] + pose[4]], axis=1)
    return xy, s * cam[:, 2], rot


def _visibility(xy: np.ndarray, depth: np.ndarray, zbuf: np.ndarray, tol: float) -> np.ndarray:
    """Visible when some pixel centre around the landmark shows a surface not clearly nearer."""
    h, w = zbuf.shape
    vis = np.zeros(len(xy), dtype=bool)
    for dx in (0, 1):
        for dy in (0, 1):
            ix = np.clip(np.floor(xy[:, 0]).astype(int) + dx, 0, w - 1)
            iy = np.clip(np.floor(xy[:, 1]).astype(int) + dy, 0, h - 1)
            vis |= zbuf[iy, ix] <= depth + tol
    return vis


def _skin_vertex_colours(rng: np.random.Generator, canon: np.ndarray, tone: np.ndarray) -> np.ndarray:
    """Skin tone with low-frequency blotches and redder cheeks, per vertex."""
    k = rng.normal(0, 3.0, size=(4, 3))
    ph = rng.uniform(0, 2 * np.pi, size=4)
    blotch = np.sin(canon @ k.T + ph).mean(axis=1)
    col = tone[None] * (1 + 0.06 * blotch[:, None])
    cheek = np.exp(-(((np.abs(canon[:, 0]) - 0.4) ** 2 + (canon[:, 1] + 0.05) ** 2) / 0.03))
    cheek *= canon[:, 2] > -0.8
    col += cheek[:, None] * rng.uniform(0, 0.06) * np.array([1.0, -0.4, -0.4])
    return np.clip(col, 0, 1)


def _brow_distance(xy: np.ndarray, brow: np.ndarray) -> np.ndarray:
    """Distance of (P,2) points to a polyline (K,2)."""
    best = np.full(len(xy), np.inf)
    for a, b in zip(brow[:-1], brow[1:]):
        ab = b - a
        t = np.clip(((xy - a) @ ab) / (ab @ ab + 1e-12), 0, 1)
        best = np.minimum(best, np.linalg.norm(xy - (a + t[:, None] * ab), axis=1))
    return best


def render_face(rng: np.random.Generator, image_size: int = 256, *, deform: bool = True,
                pose: np.ndarray | None = None, occlude: bool = True) -> tuple[np.ndarray, SynthLabels]:
    """Render one face: (image (S,S,3) uint8 RGB, exact labels).

    Args:
        deform: random per-face shape and expression; off, the landmark vertices are exactly
            ``mean_face()``.
        pose: force this (6,) pose (yaw, pitch, roll, tx, ty, tz) instead of a random one.
        occlude: allow random occluders (drawn on about a third of the faces).
    """
    mesh = head_mesh()
    size = int(image_size)
    canon = mesh.vertices
    if deform:
        verts = deformed_vertices(mesh, landmark_displacements(rng, canon[:68]), global_stretch(rng))
    else:
        verts = np.array(canon, dtype=np.float64)
    shape_3d = verts[:68].copy()
    pose = sample_pose(rng, shape_3d, size) if pose is None else np.asarray(pose, dtype=np.float64)
    xy, depth, rot = _project_all(verts, pose)
    tris = np.asarray(mesh.triangles)
    ras = rasterize(xy, depth, tris, size, size, cullable=np.asarray(mesh.cullable))

    tone = skin_tone(rng)
    hair = hair_colour(rng)
    normals = vertex_normals(verts, tris) @ rot.T
    vcol = _skin_vertex_colours(rng, canon, tone)
    attrs = np.concatenate([canon, verts, normals, vcol], axis=1).astype(np.float32)
    px = interpolate(ras, tris, attrs)
    m = ras.mask
    p_canon, p_model, p_n, p_col = px[m, 0:3], px[m, 3:6], px[m, 6:9], px[m, 9:12]
    mat = np.asarray(mesh.materials)[ras.tri[m]]
    col = _material_colours(rng, p_canon, p_model, p_col, mat, tone, hair, verts)
    shade = _shading(rng, p_n, mat)
    img = background(rng, size)
    img[m] = np.clip(col * shade[:, :1] + shade[:, 1:], 0, 1)

    lm_xy, lm_depth = xy[:68], depth[:68]
    vis = _visibility(lm_xy, lm_depth, ras.depth, tol=max(0.05 * pose[5], 1.5))
    if rng.random() < 0.35 and occlude:
        occ = draw_occluders(rng, img, lm_xy, face_size=1.4 * pose[5])
        ix = np.clip(np.rint(lm_xy[:, 0]).astype(int), 0, size - 1)
        iy = np.clip(np.rint(lm_xy[:, 1]).astype(int), 0, size - 1)
        vis &= ~occ[iy, ix]
    out = camera_artefacts(rng, img)
    labels = SynthLabels(landmarks=lm_xy, depth=lm_depth, visibility=vis.astype(np.float32), pose=pose,
                         shape_3d=shape_3d, jpeg_quality=int(rng.integers(40, 96)))
    return out, labels


def _material_colours(rng: np.random.Generator, canon: np.ndarray, model: np.ndarray, col: np.ndarray,
                      mat: np.ndarray, tone: np.ndarray, hair: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Albedo of every face pixel from its material and its canonical (texture) position."""
    col = col.copy()
    x, y, z = canon[:, 0], canon[:, 1], canon[:, 2]
    skinlike = (mat == Material.SKIN) | (mat == Material.EAR)
    # Hair: above a hairline that falls from the forehead to the nape going backwards.
    front = 1.4 if rng.random() < 0.08 else rng.uniform(0.72, 1.05)
    back = rng.uniform(-0.45, 0.25)
    behind = np.clip((-z - 0.55) / 0.9, 0, 1)
    line = front - behind * (front - back) + 0.04 * np.sin(x * rng.uniform(8, 20))
    is_hair = skinlike & (y > line)
    strands = 1 + 0.18 * np.sin(x * 90 + y * rng.uniform(20, 60) + np.sin(z * 40))
    col[is_hair] = hair * strands[is_hair, None]
    # Brows: a band along each brow polyline on the front of the face.
    brow_col = hair * 0.6 + tone * 0.15
    thick = rng.uniform(0.02, 0.04)
    strength = rng.uniform(0.6, 0.95)
    on_face = (mat == Material.SKIN) & (z > -0.6) & ~is_hair
    near_brows = np.nonzero(on_face & (np.abs(y - 0.5) < 0.15) & (np.abs(x) < 0.7))[0]
    for idx in (BROW_R, BROW_L):
        d = _brow_distance(canon[near_brows, :2], head_mesh().vertices[list(idx), :2])
        w = (strength * np.clip((thick - d) / (0.4 * thick) + 0.5, 0, 1))[:, None]
        col[near_brows] = col[near_brows] * (1 - w) + brow_col * w
    # Beard / stubble on some faces.
    if rng.random() < 0.15:
        beard = on_face & (y < -0.15 - 0.25 * np.clip(np.abs(x) - 0.2, 0, 1)) & (np.abs(x) > -1)
        a = rng.uniform(0.3, 0.9)
        col[beard] = col[beard] * (1 - a) + hair * a
    # Lips, mouth interior (with teeth when open), eyes (sclera, iris, pupil).
    lips = mat == Material.LIPS
    col[lips] = tone * np.array([0.85, 0.58, 0.58]) * rng.uniform(0.8, 1.05)
    mouth = mat == Material.MOUTH
    col[mouth] = np.array([0.25, 0.08, 0.08])
    upper_y = verts[[61, 62, 63], 1].mean()
    gap = upper_y - verts[[65, 66, 67], 1].mean()
    if gap > 0.03:
        teeth = mouth & (model[:, 1] > upper_y - 0.45 * gap)
        col[teeth] = np.array([0.85, 0.83, 0.76])
    eye = mat == Material.EYE
    if eye.any():
        col[eye] = np.array([0.82, 0.78, 0.74]) * rng.uniform(0.55, 0.95)
        iris_col = np.array([0.25, 0.15, 0.08]) * rng.uniform(0.4, 1.6) if rng.random() < 0.8 else \
            rng.uniform(0.2, 0.5, size=3)
        gaze = rng.normal(0, 0.02, size=2)
        for idx in (range(36, 42), range(42, 48)):
            c = verts[list(idx), :2].mean(axis=0) + gaze
            d = np.linalg.norm(model[:, :2] - c, axis=1)
            col[eye & (d < 0.042)] = iris_col
            col[eye & (d < 0.017)] = 0.03
    # Clothes below the neck.
    neck = mat == Material.NECK
    col[neck & (y < -1.5)] = rng.uniform(0, 1, size=3)
    return np.clip(col, 0, 1)


def _shading(rng: np.random.Generator, normals: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """(P,2): multiplicative Lambert + ambient term and additive specular highlight."""
    n = normals / (np.linalg.norm(normals, axis=1, keepdims=True) + 1e-9)
    n = np.where(n[:, 2:3] < 0, -n, n)  # two-sided: thin pieces (ears) have no inside
    light = np.array([rng.uniform(-1, 1), rng.uniform(-0.6, 1), rng.uniform(0.15, 1.0)])
    light /= np.linalg.norm(light)
    ambient = rng.uniform(0.2, 0.6)
    diffuse = rng.uniform(0.55, 1.0)
    lam = np.clip(n @ light, 0, 1)
    half = light + np.array([0, 0, 1.0])
    half /= np.linalg.norm(half)
    spec = rng.uniform(0, 0.25) * np.clip(n @ half, 0, 1) ** 20
    spec = np.where((mat == Material.MOUTH) | (mat == Material.NECK), 0, spec)
    return np.stack([ambient + diffuse * lam, spec], axis=1)


def face_name(i: int) -> str:
    return NAME_FORMAT.format(i)


def write_face(out: Path, seed: int, i: int, image_size: int = 256) -> Path:
    """Render face ``i`` of the data set ``seed`` and write ``NAME.jpg`` + ``NAME.mat`` atomically."""
    img, labels = render_face(np.random.default_rng([seed, i]), image_size)
    name = face_name(i)
    ok, enc = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, labels.jpeg_quality])
    if not ok:
        raise MnnEdgeError(f"JPEG encoding failed for {name}")
    jpg = out / f"{name}.jpg"
    with atomic_path(jpg) as tmp:
        tmp.write_bytes(enc.tobytes())
    with atomic_path(out / f"{name}.mat") as tmp:
        tmp.write_bytes(mat_bytes(labels))
    return jpg


_MAT_HEADER = b"MATLAB 5.0 MAT-file, written by mnn-edge synthetic faces"


def mat_bytes(labels: SynthLabels) -> bytes:
    """The ``.mat`` file content, with a fixed header text (scipy stamps the time there) so that a
    seed gives byte-identical files."""
    buf = io.BytesIO()
    scipy.io.savemat(buf, labels.to_mat())
    data = bytearray(buf.getvalue())
    data[:116] = _MAT_HEADER.ljust(116, b" ")
    return bytes(data)


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MnnEdgeError(f"cannot create output folder {out}: {e.strerror}") from e
    if not out.is_dir() or not os.access(out, os.W_OK | os.X_OK):
        raise MnnEdgeError(f"output folder is not writable: {out}")


def _worker_init() -> None:
    cv2.setNumThreads(1)


def write_synthetic(out: Path, n: int, seed: int, image_size: int = 256, workers: int = 1,
                    progress: bool = True) -> list[Path]:
    """Render ``n`` faces into ``out`` as ``synth_000000.jpg`` + ``.mat``; returns the image paths."""
    from tqdm import tqdm

    out = Path(out)
    if int(n) <= 0:
        raise MnnEdgeError(f"number of faces must be positive, got {n}")
    if int(image_size) < MIN_IMAGE_SIZE:
        raise MnnEdgeError(f"image size must be at least {MIN_IMAGE_SIZE}, got {image_size}")
    if int(workers) < 1:
        raise MnnEdgeError(f"workers must be at least 1, got {workers}")
    _check_writable(out)
    job = partial(write_face, out, int(seed), image_size=int(image_size))
    bar = tqdm(total=int(n), desc="synth", unit="face", disable=not progress)
    paths: list[Path] = []
    try:
        if workers == 1:
            for i in range(int(n)):
                paths.append(job(i))
                bar.update()
        else:
            import multiprocessing as mp

            # spawn, not fork: a forked child inherits OpenCV's/OpenMP's thread-pool locks held by
            # the parent's threads and can deadlock on its first blur.
            with mp.get_context("spawn").Pool(int(workers), initializer=_worker_init) as pool:
                for p in pool.imap(job, range(int(n)), chunksize=4):
                    paths.append(p)
                    bar.update()
    finally:
        bar.close()
    return paths
