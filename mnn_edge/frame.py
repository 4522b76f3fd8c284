"""A frame's faces to the network and back, as ``mnn-run`` and ``mnn-bench --breakdown`` both take them.

- :func:`crop_frame_bgr`: one square box of a BGR frame warped to the network's input size, and
  its crop->image map; :func:`warp` is the warp every crop takes, the training crops' too
  (:func:`mnn_edge.data.crop.crop_sample`), so the network sees the pixels it was trained on.
- :func:`network_input`: the boxes of one batch -> the network's input
  (:func:`mnn_edge.preprocess.to_input`) and their crop->image maps.
- :func:`to_image`: the network's outputs for those crops mapped back to image pixels.

The stage names both tools time are spelled here once: ``mnn-run`` times a frame's whole way
(:data:`STAGES`); the breakdown times only the network's part of it, and splits ``infer`` into the
host->device copy, the execution and the device->host copy where a runner can time them apart
(:data:`BREAKDOWN_STAGES`, the keys of a benchmark record's ``breakdown.stages``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mnn_edge.artifact import ModelKind, ModelMetadata
from mnn_edge.geometry import apply_affine, compose_affine, crop_transform, invert_affine, pose_to_image
from mnn_edge.preprocess import to_input

STAGES = ("decode", "detect", "track", "preprocess", "infer", "postprocess", "draw")
INFER_SPLIT = ("h2d", "infer", "d2h")
_INFER = STAGES.index("infer")
BREAKDOWN_STAGES = (STAGES[_INFER - 1], *INFER_SPLIT, STAGES[_INFER + 1])

MIN_WARP_ZOOM = 0.5  # below this zoom the image is area-reduced before the bilinear warp

Face = tuple[np.ndarray, tuple[float, float], float]  # (BGR frame, centre, side): a square box in image px


def warp(image: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """``cv2.warpAffine`` of ``image`` through ``m`` (image -> crop px), black outside the image.

    Bilinear sampling aliases when the crop shrinks the face by more than 2x (large photos), so
    the image is first reduced with area averaging to a zoom of about 0.5 and ``m`` adjusted.
    """
    import cv2  # here, not at the top: mnn-bench and mnn-report import this module for the stage names only

    zoom = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if zoom < MIN_WARP_ZOOM:
        r = zoom / MIN_WARP_ZOOM
        h, w = image.shape[:2]
        small = cv2.resize(image, (max(1, round(w * r)), max(1, round(h * r))), interpolation=cv2.INTER_AREA)
        rx, ry = small.shape[1] / w, small.shape[0] / h
        # small-image px from image px with pixel centres on integers: x_s = (x + 0.5) r - 0.5
        to_small = np.array([[rx, 0.0, 0.5 * rx - 0.5], [0.0, ry, 0.5 * ry - 0.5]])
        m = compose_affine(m, invert_affine(to_small))
        image = small
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(0, 0, 0))


def crop_frame_bgr(image_bgr: np.ndarray, centre: tuple[float, float], side: float,
                   size: int) -> tuple[np.ndarray, np.ndarray]:
    """One face of a BGR video frame -> (size, size, 3) RGB crop and its 2x3 crop->image map.

    What ``mnn-run`` pays per face (and ``mnn-bench --breakdown`` times): cropping the BGR frame and
    flipping only the crop's channels avoids converting a whole (maybe 4K) frame to RGB; the warp is
    the training crops' own (area pre-reduction against aliasing on big faces)."""
    m = crop_transform((float(centre[0]), float(centre[1])), float(side), size)
    return warp(image_bgr, m, size)[..., ::-1], invert_affine(m)


def network_input(faces: Sequence[Face], meta: ModelMetadata) -> tuple[np.ndarray, list[np.ndarray]]:
    """The (N, 3, S, S) network input of N boxes (each on its own frame, or several on one) and
    their 2x3 crop->image maps; outside a frame is black."""
    size = meta.input_size
    crops = np.empty((len(faces), size, size, 3), dtype=np.uint8)
    maps = []
    for i, (image_bgr, centre, side) in enumerate(faces):
        crops[i], m = crop_frame_bgr(image_bgr, centre, side, size)
        maps.append(m)
    return to_input(crops, meta), maps


@dataclass(frozen=True)
class ImageFace:
    """One face's network outputs in image coordinates."""

    pose: np.ndarray  # (6,) yaw, pitch, roll deg; tx, ty image px; tz scale in image px
    landmarks: np.ndarray | None  # (L, 2) image px (full model only)
    visibility: np.ndarray | None  # (L,) probability in [0, 1] (full model only)


def to_image(outputs: dict[str, np.ndarray], maps: Sequence[np.ndarray], meta: ModelMetadata) -> list[ImageFace]:
    """Row i of the network's outputs mapped through crop i's crop->image map to the image."""
    full = meta.kind is ModelKind.FULL and "landmarks" in outputs
    faces = []
    for i, c2i in enumerate(maps):
        pose = pose_to_image(np.asarray(outputs["pose"][i], dtype=np.float64), c2i)
        landmarks = apply_affine(c2i, outputs["landmarks"][i]) if full else None
        visibility = np.asarray(outputs["visibility"][i], dtype=np.float64) if "visibility" in outputs else None
        faces.append(ImageFace(pose, landmarks, visibility))
    return faces
