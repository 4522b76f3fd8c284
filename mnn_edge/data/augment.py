"""Training augmentation that keeps every label consistent with the pixels.

All geometric augmentation happens in crop space, after the standard crop map: an optional
horizontal mirror, then one similarity (rotation about the crop centre, zoom, shift). Labels go
through the same maps. The pose follows exactly (no small-angle shortcut):

- mirror x -> (S - 1) - x: the mean face is left/right symmetric, so the mirrored face is the same
  head with R -> D R D (D = diag(-1, 1, 1)), i.e. yaw and roll change sign, pitch stays; tx is
  mirrored; landmarks are re-ordered so that "left eye" stays the left eye (iBUG 68 order).
- similarity p -> k Q p + t: with the image y axis pointing down, Q in image coordinates is the
  3D rotation F Q F (F = diag(1, -1)) about the camera axis in the mean face's y-up frame, so
  R -> Rz R; the angles are re-read from the product (roll changes by the rotation angle only for
  a face without yaw/pitch); tx, ty move with the map and tz multiplies by the zoom k.

Colour jitter (brightness, contrast, saturation; optionally a fully grey image, saturation 0)
touches pixels only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mnn_edge.artifact.landmarks import SCHEMES, scheme_for
from mnn_edge.errors import MnnEdgeError
from mnn_edge.geometry import apply_affine, euler_to_matrix, matrix_to_euler


@dataclass(frozen=True)
class Augment:
    """Random augmentation ranges (every draw is uniform in the range given)."""

    flip_prob: float = 0.5  # probability of a horizontal mirror (68-point schemes only)
    rotation_deg: float = 30.0  # in-plane rotation drawn in [-rotation_deg, +rotation_deg]
    scale_range: tuple[float, float] = (0.9, 1.1)  # zoom of the crop (>1 = face larger)
    shift_frac: float = 0.05  # shift in x and y, as a fraction of the crop side
    brightness: float = 0.25  # pixel values multiplied by 1 +- brightness
    contrast: float = 0.25  # deviation from the mean scaled by 1 +- contrast
    saturation: float = 0.25  # deviation from gray scaled by 1 +- saturation
    gray_prob: float = 0.0  # probability of a fully grey image (IR / monochrome cameras, grey photos)

    def __post_init__(self) -> None:
        for name in ("flip_prob", "gray_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise MnnEdgeError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        lo, hi = self.scale_range
        if not 0.0 < lo <= hi:
            raise MnnEdgeError(f"scale_range must satisfy 0 < low <= high, got {self.scale_range}")
        for name in ("rotation_deg", "shift_frac", "brightness", "contrast", "saturation"):
            if getattr(self, name) < 0:
                raise MnnEdgeError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class AugmentDraw:
    """One concrete draw of :class:`Augment` (tests build these directly)."""

    flip: bool = False
    rotation_deg: float = 0.0  # counter-clockwise as seen on screen (OpenCV's getRotationMatrix2D sign)
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)  # crop px
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0


def draw(aug: Augment, rng: np.random.Generator) -> AugmentDraw:
    """Draw one set of parameters; the order of the draws is fixed (reproducible for a seed)."""
    u = rng.uniform(size=8)
    lo, hi = aug.scale_range
    saturation = float(1 + (2 * u[7] - 1) * aug.saturation)
    # Drawn only when asked for, so runs without it keep their random stream.
    if aug.gray_prob > 0 and rng.uniform() < aug.gray_prob:
        saturation = 0.0
    return AugmentDraw(
        flip=bool(u[0] < aug.flip_prob),
        rotation_deg=float((2 * u[1] - 1) * aug.rotation_deg),
        scale=float(lo + (hi - lo) * u[2]),
        shift=(float((2 * u[3] - 1) * aug.shift_frac), float((2 * u[4] - 1) * aug.shift_frac)),
        brightness=float(1 + (2 * u[5] - 1) * aug.brightness),
        contrast=float(1 + (2 * u[6] - 1) * aug.contrast),
        saturation=saturation,
    )


def flip_order(num_landmarks: int) -> np.ndarray:
    order = scheme_for(num_landmarks).flip_order
    if order is None:
        known = sorted(n for n, s in SCHEMES.items() if s.flip_order is not None)
        raise MnnEdgeError(f"horizontal flip needs a landmark mirror order; known for "
                           f"{known} points, not {num_landmarks} (set flip_prob=0)")
    return np.asarray(order)


def flip_matrix(size: int) -> np.ndarray:
    """2x3 mirror of a size x size crop onto itself (pixel centres on integers)."""
    return np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]])


def similarity_matrix(d: AugmentDraw, size: int) -> np.ndarray:
    """2x3 rotation by ``d.rotation_deg`` (CCW on screen) and zoom about the crop centre, then shift."""
    c = (size - 1) / 2.0
    a = np.deg2rad(d.rotation_deg)
    # On screen (y down) a CCW rotation is x' = cos x + sin y, y' = -sin x + cos y.
    lin = d.scale * np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    t = np.array([c, c]) - lin @ np.array([c, c]) + np.array(d.shift) * size
    return np.hstack([lin, t[:, None]])


def flip_pose(pose: np.ndarray, size: int) -> np.ndarray:
    """Pose of the mirrored crop: yaw and roll change sign, tx mirrored."""
    yaw, pitch, roll, tx, ty, tz = (float(v) for v in pose)
    return np.array([-yaw, pitch, -roll, size - 1.0 - tx, ty, tz])


def similarity_pose(pose: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Pose after a proper 2x3 similarity ``m`` in image coordinates (see the module docstring)."""
    lin = m[:, :2]
    zoom = float(np.sqrt(abs(np.linalg.det(lin))))
    if np.linalg.det(lin) <= 0:
        raise ValueError("similarity_pose needs a proper (non-mirroring) similarity")
    q = lin / zoom
    f = np.diag([1.0, -1.0])
    rz = np.eye(3)
    rz[:2, :2] = f @ q @ f
    rot = rz @ euler_to_matrix(*(float(v) for v in pose[:3]))
    yaw, pitch, roll = matrix_to_euler(rot)
    tx, ty = apply_affine(m, np.asarray(pose[None, 3:5], dtype=np.float64))[0]
    return np.array([yaw, pitch, roll, tx, ty, float(pose[5]) * zoom])


def colour_jitter(image: np.ndarray, d: AugmentDraw) -> np.ndarray:
    """Brightness, contrast and saturation on a uint8 RGB image (labels unchanged).

    In sequence: x1 = b x; x2 = c (x1 - mean(x1)) + mean(x1); x3 = s (x2 - gray(x2)) + gray(x2).
    All three are linear, so x3 = s c b x + (1 - s) c b gray(x) + (1 - c) b mean(x): one 3x4
    colour matrix applied by ``cv2.transform`` (saturating to uint8), ~10x faster than numpy.
    """
    if d.brightness == 1.0 and d.contrast == 1.0 and d.saturation == 1.0:
        return image
    b, c, s = d.brightness, d.contrast, d.saturation
    gray_w = np.array([0.299, 0.587, 0.114])
    mat = s * c * b * np.eye(3) + (1 - s) * c * b * np.tile(gray_w, (3, 1))
    offset = (1 - c) * b * float(image.mean())
    return cv2.transform(image, np.hstack([mat, np.full((3, 1), offset)]))
