"""Pose conventions, fixed once for the whole toolkit.

Angles follow 300W-LP / AFLW2000-3D ``Pose_Para`` (3DDFA's ``angle2matrix``, see
:func:`euler_to_matrix`), in radians there and in degrees everywhere in this toolkit.
A 3D point X of the mean face (x right, y up, z toward the camera) projects with a
scaled-orthographic camera whose image y axis points down:

    u = s * (R X)_x + tx,    v = -s * (R X)_y + ty

The six pose parameters of the network heads are (yaw, pitch, roll, tx, ty, tz): degrees, crop
pixels, and ``tz`` = s, the weak-perspective scale in crop pixels per mean-face unit (it grows as
the head comes closer to the camera). Pixel coordinates put pixel centres on integers (OpenCV).

This convention was checked against AFLW2000-3D ground truth (``mnn-data fetch aflw2000-samples``):
the fitted mean face lands within ~0.05 of the box size; a flipped sign roughly doubles the error on
turned faces, so tests pin it on the real samples.
"""

from __future__ import annotations

import numpy as np

POSE_NAMES = ("yaw", "pitch", "roll", "tx", "ty", "tz")


def euler_to_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation matrix of 300W-LP / AFLW2000-3D ``Pose_Para`` angles given in degrees.

    3DDFA's ``angle2matrix`` builds R = Rx Ry Rz from elementary matrices written transposed
    (e.g. its Rx is [[1,0,0],[0,c,s],[0,-s,c]]), so in standard right-handed form
    R = Rx(-pitch) @ Ry(-yaw) @ Rz(-roll). The transposed reading is the one that lands the mean
    face on AFLW2000-3D's landmarks (a test pins it on the real samples): with standard matrices
    every angle comes out with the wrong sign.
    """
    y, p, r = np.deg2rad([-yaw, -pitch, -roll])
    cx, sx = np.cos(p), np.sin(p)
    cy, sy = np.cos(y), np.sin(y)
    cz, sz = np.cos(r), np.sin(r)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rx @ ry @ rz


def matrix_to_euler(rot: np.ndarray) -> tuple[float, float, float]:
    """Inverse of :func:`euler_to_matrix`: (yaw, pitch, roll) in degrees, yaw in [-90, 90].

    With a = -angle and R = Rx(a_p) Ry(a_y) Rz(a_r): R[0, 2] = sin(a_y), R[1, 2] = -sin(a_p) cos(a_y),
    R[2, 2] = cos(a_p) cos(a_y), R[0, 1] = -cos(a_y) sin(a_r), R[0, 0] = cos(a_y) cos(a_r).
    At gimbal lock (|yaw| = 90) roll and pitch are not separable; roll is then reported as 0.
    """
    rot = np.asarray(rot, dtype=np.float64)
    sy = float(np.clip(rot[0, 2], -1.0, 1.0))
    a_y = np.arcsin(sy)
    if abs(sy) < 1.0 - 1e-9:
        a_p = np.arctan2(-rot[1, 2], rot[2, 2])
        a_r = np.arctan2(-rot[0, 1], rot[0, 0])
    else:
        a_p = np.arctan2(rot[2, 1], rot[1, 1])
        a_r = 0.0
    return tuple(float(-v) + 0.0 for v in np.rad2deg([a_y, a_p, a_r]))


def project(points3d: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Project (N, 3) mean-face points with a 6-vector pose to (N, 2) pixel coordinates."""
    yaw, pitch, roll, tx, ty, scale = (float(v) for v in pose)
    cam = np.asarray(points3d, dtype=np.float64) @ euler_to_matrix(yaw, pitch, roll).T
    return np.stack([scale * cam[:, 0] + tx, -scale * cam[:, 1] + ty], axis=1)


def rotated_depth(points3d: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Depth toward the camera (larger = nearer) of each point under ``pose``."""
    yaw, pitch, roll = (float(v) for v in pose[:3])
    return (np.asarray(points3d, dtype=np.float64) @ euler_to_matrix(yaw, pitch, roll).T)[:, 2]


def crop_transform(center: tuple[float, float], size: float, out_size: int = 256) -> np.ndarray:
    """2x3 affine map from image pixels to crop pixels for a square box.

    The box of side ``size`` centred at ``center`` maps onto ``out_size`` x ``out_size``; with
    integer pixel centres the box edges are at -0.5 and out_size - 0.5.
    """
    k = out_size / float(size)
    cx, cy = center
    off = (out_size - 1) / 2.0
    return np.array([[k, 0.0, off - k * cx], [0.0, k, off - k * cy]])


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine map."""
    full = np.vstack([m, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def compose_affine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2x3 map ``a`` after ``b``."""
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2]


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine map to (N, 2) points."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def pose_to_image(pose: np.ndarray, crop_to_image: np.ndarray) -> np.ndarray:
    """Map a crop-space pose to image space through a similarity crop map.

    Angles change only by the in-plane rotation of the map (none for the axis-aligned crops made
    by :func:`crop_transform`); tx, ty move with the map and the scale multiplies by its zoom.
    """
    out = np.array(pose, dtype=np.float64)
    a, b = crop_to_image[0, 0], crop_to_image[1, 0]
    zoom = float(np.hypot(a, b))
    if abs(b) > 1e-12:
        raise ValueError("pose_to_image supports axis-aligned (unrotated) crop maps only")
    out[3:5] = apply_affine(crop_to_image, out[None, 3:5])[0]
    out[5] = out[5] * zoom
    return out


def fit_translation_scale(points3d: np.ndarray, angles: tuple[float, float, float],
                          landmarks2d: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Least-squares (tx, ty, scale) so that the posed 3D points best match 2D landmarks.

    Real datasets give angles and 2D landmarks but no pose translation/scale in our camera model:
    this completes the 6-vector label with the rotation held fixed (how the AFLW2000-3D check in
    ``shared/data/README.md`` was made). Returns the full pose (yaw, pitch, roll, tx, ty, tz).
    """
    yaw, pitch, roll = angles
    cam = np.asarray(points3d, dtype=np.float64) @ euler_to_matrix(yaw, pitch, roll).T
    a = np.concatenate([cam[:, 0], -cam[:, 1]])  # coefficient of the scale
    ones, zeros = np.ones(len(cam)), np.zeros(len(cam))
    design = np.stack([np.concatenate([ones, zeros]), np.concatenate([zeros, ones]), a], axis=1)
    target = np.concatenate([landmarks2d[:, 0], landmarks2d[:, 1]]).astype(np.float64)
    if weights is not None:
        w = np.sqrt(np.concatenate([weights, weights]).astype(np.float64))
        design, target = design * w[:, None], target * w
    (tx, ty, scale), *_ = np.linalg.lstsq(design, target, rcond=None)
    return np.array([yaw, pitch, roll, tx, ty, scale])
