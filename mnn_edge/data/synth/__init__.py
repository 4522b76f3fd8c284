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

from mnn_edge.data.raster import Raster, interpolate, rasterize
from mnn_edge.data.sample import FaceSample
from mnn_edge.data.synth.head_mesh import HeadMesh, Material, head_mesh, vertex_normals
from mnn_edge.data.synth.look import Light, Look, albedo, hair_albedo, hat_albedo, shade, skin_vertex_colours
from mnn_edge.data.synth.props import draw_glasses
from mnn_edge.data.synth.scene import background, camera_artefacts, draw_occluders, smooth_noise
from mnn_edge.data.synth.shape import deformed_vertices, global_stretch, landmark_displacements, skull_shape
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import atomic_path
from mnn_edge.geometry import euler_to_matrix

YAW_RANGE = (-90.0, 90.0)
PITCH_RANGE = (-45.0, 45.0)
ROLL_RANGE = (-45.0, 45.0)
MIN_IMAGE_SIZE = 64
MAX_IMAGE_SIZE = 2048  # px: a 100000-px face needed 37 GiB for one image and ended in ArrayMemoryError
GLASSES_P = 0.15  # fraction of faces wearing glasses (a fifth of them sunglasses)
OCCLUDER_P = 0.35  # fraction of faces with random occluders
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
    yaw = float(rng.uniform(*YAW_RANGE)) if rng.random() < 0.6 else float(np.clip(rng.normal(0, 30), *YAW_RANGE))
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


def _auto_exposure(rng: np.random.Generator, img: np.ndarray, face: np.ndarray) -> np.ndarray:
    """Scale the whole picture so the head's mean brightness lands in a photographic range."""
    if not face.any():
        return img
    mean = float(img[face].mean())
    target = rng.uniform(0.3, 0.6)
    gain = np.clip(target / max(mean, 1e-3), 0.6, 2.5)
    return np.clip(img * gain, 0, 1)


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
    canon = np.asarray(mesh.vertices)
    if deform:
        verts = deformed_vertices(mesh, landmark_displacements(rng, canon[:68]), global_stretch(rng),
                                  skull_shape(rng))
    else:
        verts = np.array(canon, dtype=np.float64)
    shape_3d = verts[:68].copy()
    pose = sample_pose(rng, shape_3d, size) if pose is None else np.asarray(pose, dtype=np.float64)
    look = Look.sample(rng)
    light = Light.sample(rng)
    img, zbuf, head_mask, xy, depth = _render_head(rng, mesh, verts, pose, look, light, size)

    lm_xy, lm_depth = xy[:68], depth[:68]
    vis = _visibility(lm_xy, lm_depth, zbuf, tol=max(0.05 * pose[5], 1.5))
    ix = np.clip(np.rint(lm_xy[:, 0]).astype(int), 0, size - 1)
    iy = np.clip(np.rint(lm_xy[:, 1]).astype(int), 0, size - 1)
    if rng.random() < GLASSES_P:
        def project_pts(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            pxy, pdepth, _ = _project_all(points, pose)
            return pxy, pdepth

        vis &= ~draw_glasses(rng, img, verts, project_pts, zbuf, pose[5])[iy, ix]
    if rng.random() < OCCLUDER_P and occlude:
        vis &= ~draw_occluders(rng, img, lm_xy, face_size=1.4 * pose[5])[iy, ix]
    out = camera_artefacts(rng, _auto_exposure(rng, img, head_mask))
    labels = SynthLabels(landmarks=lm_xy, depth=lm_depth, visibility=vis.astype(np.float32), pose=pose,
                         shape_3d=shape_3d, jpeg_quality=int(rng.integers(40, 96)))
    return out, labels


def _render_head(rng: np.random.Generator, mesh: HeadMesh, verts: np.ndarray, pose: np.ndarray, look: Look,
                 light: Light, size: int) -> tuple[np.ndarray, ...]:
    """Head, neck, torso, ears and hair over a background: (float RGB image, z-buffer, head mask,
    projected vertices (V,2), their depths (V,)). ``verts`` may be changed (hair length)."""
    canon = np.asarray(mesh.vertices)
    mats_all = np.asarray(mesh.materials)
    if look.long_hair:
        # Hair length: stretch the curtain downward below its top ring.
        curtain = np.unique(np.asarray(mesh.triangles)[mats_all == Material.HAIR])
        top = verts[curtain, 1].max()
        verts[curtain, 1] = top + (verts[curtain, 1] - top) * look.long_hair
    _pose_body(rng, mesh, verts, pose)
    active = (mats_all != Material.HAIR) | (look.long_hair > 0)
    tris, mats = np.asarray(mesh.triangles)[active], mats_all[active]
    xy, depth, rot = _project_all(verts, pose)
    ras = rasterize(xy, depth, tris, size, size, cullable=np.asarray(mesh.cullable)[active])
    ras_h, shell_tris = _hair_shell(rng, mesh, verts, pose, look, size)

    normals = vertex_normals(verts, np.asarray(mesh.triangles)) @ rot.T
    vcol = skin_vertex_colours(rng, look, canon)
    attrs = np.concatenate([canon, verts, normals, vcol], axis=1).astype(np.float32)
    px = interpolate(ras, tris, attrs)
    m = ras.mask
    mat = mats[ras.tri[m]]
    col = albedo(look, px[m, 0:3], px[m, 3:6], px[m, 9:12], mat, verts)
    img = background(rng, size)
    img[m] = shade(light, px[m, 6:9], mat, col)

    head_n = mesh.head_vertex_count
    hpx = interpolate(ras_h, shell_tris, np.concatenate([canon[:head_n], normals[:head_n]], axis=1)
                      .astype(np.float32))
    hm = ras_h.mask & (ras_h.depth > ras.depth)
    hm[hm] = look.is_hair(hpx[hm, 0:3])  # the shell only shows where its point is hair
    hmat = np.full(int(hm.sum()), Material.HAIR, dtype=np.int8)
    img[hm] = shade(light, hpx[hm, 3:6], hmat, hair_albedo(look, hpx[hm, 0:3]))
    zbuf = np.where(hm, ras_h.depth, ras.depth)
    if look.hat:
        ras_c, cap_tris = _shell(mesh, verts, pose, look.is_hat, look.hair_volume * 1.6 + 0.03, None, size)
        cpx = interpolate(ras_c, cap_tris, np.concatenate([canon[:head_n], normals[:head_n]], axis=1)
                          .astype(np.float32))
        cm = ras_c.mask & (ras_c.depth > zbuf)
        cm[cm] = look.is_hat(cpx[cm, 0:3])
        img[cm] = shade(light, cpx[cm, 3:6], np.full(int(cm.sum()), Material.CLOTH, dtype=np.int8),
                        hat_albedo(look, cpx[cm, 0:3]))
        zbuf = np.where(cm, ras_c.depth, zbuf)
        hm |= cm
    # Fine skin/hair grain (pores, freckles, strands) so surfaces are never perfectly smooth.
    grain = smooth_noise(rng, size, max(8, size // 4))[..., 0] * rng.uniform(0.02, 0.08)
    head = m | hm
    img[head] *= 1 + grain[head, None]
    # Anti-alias the silhouette: the rasteriser samples pixel centres only, so the head's outline
    # would be a hard staircase (an easy cue no camera produces).
    mk = head.astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    edge = cv2.dilate(mk, kernel) != cv2.erode(mk, kernel)
    img[edge] = cv2.GaussianBlur(img, (0, 0), 0.6)[edge]
    return img, zbuf, head, xy, depth


# Where the head turns on the neck (head coordinates): the body keeps its place relative to it.
NECK_JOINT = np.array([0.0, -0.45, -1.25])


def _pose_body(rng: np.random.Generator, mesh: HeadMesh, verts: np.ndarray, pose: np.ndarray) -> None:
    """Turn torso and neck (in place) so the body follows the head only partly: a tilted or nodding
    head sits on an upright body. Torso vertices get the body's rotation about the neck joint; the
    neck blends from the head's (top ring) to the body's (bottom ring)."""
    yaw, pitch, roll = pose[:3]
    body = euler_to_matrix(yaw * rng.uniform(0.3, 0.9), pitch * rng.uniform(0.0, 0.3) + rng.normal(0, 4),
                           roll * rng.uniform(0.0, 0.3) + rng.normal(0, 3))
    rel = euler_to_matrix(yaw, pitch, roll).T @ body  # body rotation seen in head coordinates
    tris, mats = np.asarray(mesh.triangles), np.asarray(mesh.materials)
    torso = np.unique(tris[mats == Material.CLOTH])
    neck = np.unique(tris[mats == Material.NECK])
    verts[torso] = NECK_JOINT + (verts[torso] - NECK_JOINT) @ rel.T
    y = verts[neck, 1]
    w = np.clip((y.max() - y) / (y.max() - y.min()), 0, 1)[:, None]
    verts[neck] = (1 - w) * verts[neck] + w * (NECK_JOINT + (verts[neck] - NECK_JOINT) @ rel.T)


def _hair_shell(rng: np.random.Generator, mesh: HeadMesh, verts: np.ndarray, pose: np.ndarray, look: Look,
                size: int) -> tuple[Raster, np.ndarray]:
    """Raster of the hair-covered part of the head pushed out from the head centre (hair volume)."""
    head_n = mesh.head_vertex_count
    # Irregular volume (tufts, a parting, flattened sides) so hair silhouettes are not smooth domes.
    k = rng.normal(0, 4.0, size=(3, 3))
    tuft = np.sin(np.asarray(mesh.vertices)[:head_n] @ k.T + rng.uniform(0, 2 * np.pi, size=3)).mean(axis=1)
    return _shell(mesh, verts, pose, look.is_hair, look.hair_volume, tuft, size)


def _shell(mesh: HeadMesh, verts: np.ndarray, pose: np.ndarray, region, volume: float,
           bumps: np.ndarray | None, size: int) -> tuple[Raster, np.ndarray]:
    """Raster of the head triangles touching ``region`` (a predicate on canonical points), pushed
    out from the head centre by ``volume`` (times 1 + 0.6 ``bumps`` per vertex)."""
    canon = np.asarray(mesh.vertices)
    head_n = mesh.head_vertex_count
    head_tris = np.asarray(mesh.triangles)[np.asarray(mesh.cullable)]
    inside = region(canon[:head_n] + np.array([0, 0.12, 0]))  # a margin below the region's edge
    tris = head_tris[inside[head_tris].any(axis=1)]
    c = verts[:head_n].mean(axis=0)
    grow = volume * (1 + 0.6 * bumps) if bumps is not None else np.full(head_n, volume)
    shell = c + (verts[:head_n] - c) * (1 + grow)[:, None]
    sxy, sdepth, _ = _project_all(shell, pose)
    return rasterize(sxy, sdepth, tris, size, size, cullable=np.ones(len(tris), bool)), tris


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


def check_image_size(size: int, what: str = "--size") -> None:
    """One rendered face's side, before anything is allocated or created."""
    if not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
        raise MnnEdgeError(f"{what} must be {MIN_IMAGE_SIZE}..{MAX_IMAGE_SIZE} px, got {size}")


def write_synthetic(out: Path, n: int, seed: int, image_size: int = 256, workers: int = 1,
                    progress: bool = True) -> list[Path]:
    """Render ``n`` faces into ``out`` as ``synth_000000.jpg`` + ``.mat``; returns the image paths."""
    from tqdm import tqdm

    out = Path(out)
    if int(n) <= 0:
        raise MnnEdgeError(f"number of faces must be positive, got {n}")
    check_image_size(int(image_size), "image size")
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
