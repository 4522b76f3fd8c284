"""Biwi Kinect Head Pose: ``NN/frame_XXXXX_rgb.png`` + ``NN/frame_XXXXX_pose.txt`` (+ ``NN/rgb.cal``).

``frame_XXXXX_pose.txt``: three rows of the 3x3 head rotation R, a blank line, then the head
centre (x, y, z) in millimetres in the depth camera frame (x right, y down, z away from the camera,
as OpenCV). ``rgb.cal``: the RGB camera's 3x3 intrinsics, a blank line, its distortion, a blank
line, a 3x3 rotation and a translation (mm) of the RGB camera relative to the depth camera.

Angles: this toolkit's frame has y up and z toward the camera, C = diag(1, -1, -1) away from
Biwi's, so R_toolkit = C R C and the angles are read with :func:`geometry.matrix_to_euler`. This is
the same reading as the Biwi loaders of models trained on 300W-LP (Hopenet, FSA-Net: pitch =
atan2(M21, M22), yaw = -asin(-M20), roll = -atan2(M10, M00) with M = R^T); a test checks both agree.

Biwi has no 2D landmarks, so the crop comes from a box: the head centre is projected into the RGB
image (``X_rgb = R_cal X + t_cal``, then the intrinsics; Kinect defaults when ``rgb.cal`` is absent).
That direction is the physical one: Biwi's calibration has t ~ (-24, 6, -13) mm, and on a Kinect v1
the RGB camera sits ~25 mm to the IR camera's +x (its right, looking out), so t = -C_rgb.
The box side is :data:`FACE_SIZE_MM` at that depth, the size of a 68-landmark box, so the
standard crop margin gives the same framing as landmark crops.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnn_edge.data.readers.base import FormatReader, SkipFile
from mnn_edge.data.sample import FaceSample
from mnn_edge.geometry import matrix_to_euler

# Biwi's own RGB intrinsics (identical in every sequence's rgb.cal), used when rgb.cal is missing.
DEFAULT_RGB_K = np.array([[517.679, 0.0, 320.0], [0.0, 517.679, 240.5], [0.0, 0.0, 1.0]])
FACE_SIZE_MM = 150.0  # side of the 68-landmark box of an adult face (jaw width ~ brow-to-chin)
BIWI_TO_TOOLKIT = np.diag([1.0, -1.0, -1.0])


def list_items(root: Path) -> list[Path]:
    if root.is_file():
        return [root] if root.name.endswith("_pose.txt") else []
    return sorted(root.rglob("frame_*_pose.txt"))


def _numeric_rows(path: Path) -> list[list[float]]:
    try:
        text = path.read_text(errors="replace")
        return [[float(v) for v in ln.split()] for ln in text.splitlines() if ln.strip()]
    except (OSError, ValueError) as e:
        raise SkipFile("unreadable annotation") from e


def read_pose_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(R 3x3, head centre mm) of a ``frame_XXXXX_pose.txt``."""
    rows = _numeric_rows(path)
    if len(rows) < 4 or any(len(r) != 3 for r in rows[:4]):
        raise SkipFile("bad pose file")
    rot, centre = np.array(rows[:3]), np.array(rows[3])
    if not (np.all(np.isfinite(rot)) and np.all(np.isfinite(centre))):
        raise SkipFile("NaN in pose file")
    if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-2):
        raise SkipFile("pose rotation not orthonormal")
    return rot, centre


def read_calibration(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K, R, t) of an ``rgb.cal``; the defaults (no extrinsics) when the file is absent."""
    if not path.is_file():
        return DEFAULT_RGB_K, np.eye(3), np.zeros(3)
    rows = _numeric_rows(path)
    three = [r for r in rows if len(r) == 3]
    # Intrinsics (3 rows of 3), distortion (one row, 4-5 values), rotation (3x3), translation (3).
    if len(three) < 7:
        raise SkipFile("bad rgb.cal")
    k, rot, t = np.array(three[:3]), np.array(three[3:6]), np.array(three[6])
    return k, rot, t


def biwi_angles(rot: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) degrees in the toolkit convention from a Biwi pose-file rotation."""
    return np.array(matrix_to_euler(BIWI_TO_TOOLKIT @ rot @ BIWI_TO_TOOLKIT))


def head_box(centre_mm: np.ndarray, k: np.ndarray, rot: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) RGB px: :data:`FACE_SIZE_MM` square around the projected head centre."""
    p = rot @ centre_mm + t
    if p[2] <= 0:
        raise SkipFile("head behind the camera")
    u, v = k[0, 0] * p[0] / p[2] + k[0, 2], k[1, 1] * p[1] / p[2] + k[1, 2]
    half = 0.5 * FACE_SIZE_MM * k[0, 0] / p[2]
    return np.array([u - half, v - half, u + half, v + half])


def parse_item(path: Path) -> FaceSample:
    rot, centre = read_pose_file(path)
    image = path.with_name(path.name.replace("_pose.txt", "_rgb.png"))
    if not image.is_file():
        raise SkipFile("missing image")
    k, r_cal, t_cal = read_calibration(path.parent / "rgb.cal")
    return FaceSample(image_path=image, angles=biwi_angles(rot), box=head_box(centre, k, r_cal, t_cal),
                      source="biwi")


def reader() -> FormatReader:
    return FormatReader(list_items=list_items, parse_item=parse_item)
