"""The inference crop: a square box of a frame warped to the network's input size, and its crop->image map.

:func:`warp` is the warp every crop takes, the training crops' too
(:func:`mnn_edge.data.crop.crop_sample`), so the network sees the pixels it was trained on.
"""

from __future__ import annotations

import cv2
import numpy as np

from mnn_edge.geometry import compose_affine, crop_transform, invert_affine

MIN_WARP_ZOOM = 0.5  # below this zoom the image is area-reduced before the bilinear warp


def warp(image: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """``cv2.warpAffine`` of ``image`` through ``m`` (image -> crop px), black outside the image.

    Bilinear sampling aliases when the crop shrinks the face by more than 2x (large photos), so
    the image is first reduced with area averaging to a zoom of about 0.5 and ``m`` adjusted.
    """
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


