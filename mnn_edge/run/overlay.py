"""Draw the results on the frame: box, head axes, angles, landmarks, and a status corner.

Colours are BGR (OpenCV). Axes follow the pose convention of :mod:`mnn_edge.geometry`: x (red)
to the face's left-to-right, y (green) up, z (blue) out of the face toward the camera when the
head faces it.
"""

from __future__ import annotations

import cv2
import numpy as np

from mnn_edge.geometry import project

VISIBLE_THRESHOLD = 0.5  # visibility >= this: drawn green (visible), else red (occluded)
GREEN, RED, BLUE = (0, 200, 0), (0, 0, 255), (255, 80, 0)
BOX_COLOUR, TEXT_COLOUR = (0, 220, 255), (255, 255, 255)
AXES = np.eye(3)


def draw_axes(image: np.ndarray, angles: np.ndarray, origin: np.ndarray, length: float) -> None:
    """Head axes for (yaw, pitch, roll) degrees at ``origin`` (image px), ``length`` px long."""
    pose = np.array([*angles[:3], origin[0], origin[1], length], dtype=np.float64)
    ends = project(AXES, pose)
    o = tuple(int(round(v)) for v in origin)
    thickness = max(2, int(length / 40))
    # draw z first so x and y stay on top of it when the head faces the camera
    for end, colour in ((ends[2], BLUE), (ends[1], GREEN), (ends[0], RED)):
        cv2.arrowedLine(image, o, tuple(int(round(v)) for v in end), colour, thickness, cv2.LINE_AA, tipLength=0.15)


def _text(image: np.ndarray, text: str, org: tuple[int, int], scale: float, colour=TEXT_COLOUR) -> None:
    """Text on a dark band so it reads on any background."""
    thickness = max(1, int(round(scale * 2)))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = org
    # keep the whole band inside the image (a face at the border would push it out)
    x = int(min(max(x, 2), max(2, image.shape[1] - w - 3)))
    y = int(min(max(y, h + 3), image.shape[0] - base - 1))
    cv2.rectangle(image, (x - 2, y - h - 3), (x + w + 2, y + base), (0, 0, 0), -1)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)


def draw_face(image: np.ndarray, box: np.ndarray, pose: np.ndarray, landmarks: np.ndarray | None,
              visibility: np.ndarray | None, track_id: int | None = None) -> None:
    """One face: its crop box, axes at the predicted nose (kept inside the box), angle text, landmarks."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    size = float(box[2] - box[0])
    line = max(1, int(size / 150))
    cv2.rectangle(image, (x0, y0), (x1, y1), BOX_COLOUR, line, cv2.LINE_AA)
    # The translation is the model's estimate of the nose tip; clamping keeps a poor estimate from
    # drawing the axes far from the face they belong to.
    origin = np.clip(np.asarray(pose[3:5], dtype=np.float64), box[:2], box[2:])
    draw_axes(image, pose[:3], origin, 0.35 * size)
    if landmarks is not None:
        radius = max(1, int(round(size / 120)))
        vis = np.ones(len(landmarks)) if visibility is None else visibility
        for (x, y), v in zip(landmarks, vis):
            if np.isfinite(x) and np.isfinite(y):
                colour = GREEN if v >= VISIBLE_THRESHOLD else RED
                cv2.circle(image, (int(round(x)), int(round(y))), radius, colour, -1, cv2.LINE_AA)
    scale = float(np.clip(size / 400.0, 0.4, 1.2))
    label = f"yaw {pose[0]:+.1f}  pitch {pose[1]:+.1f}  roll {pose[2]:+.1f}"
    if track_id is not None:
        label = f"#{track_id}  " + label
    _text(image, label, (x0, y0 - 6), scale)


def draw_status(image: np.ndarray, backend: str, fps: float | None, faces: int) -> None:
    """Bottom-left corner (faces are seldom there): backend/precision/model, smoothed FPS, face count."""
    scale = float(np.clip(image.shape[1] / 1400.0, 0.45, 1.0))
    step = int(32 * scale) + 6
    h = image.shape[0]
    fps_text = f"{fps:.1f} FPS" if fps is not None else "-- FPS"
    _text(image, f"{fps_text}   faces: {faces}", (8, h - 8 - step), scale)
    _text(image, backend, (8, h - 8), scale)


def draw_no_face(image: np.ndarray) -> None:
    scale = float(np.clip(image.shape[1] / 1400.0, 0.45, 1.0))
    _text(image, "no face", (8, int(32 * scale) + 6), scale, RED)
