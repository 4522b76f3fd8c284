"""A contact sheet of synthetic faces (optionally with their landmarks) for people to look at."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mnn_edge.data.synth import check_image_size, render_face
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import atomic_path

MAX_SHEET_PIXELS = 8192 * 8192  # 200 MB of RGB: n = 100000 tiles or --size 100000 ended in ArrayMemoryError
VISIBLE = (40, 230, 60)
OCCLUDED = (235, 40, 40)


def check_sheet(n: int, image_size: int, cols: int) -> int:
    """The sheet's rows, once its size is known to fit in memory (checked before any work)."""
    if n <= 0 or cols <= 0:
        raise MnnEdgeError(f"contact sheet needs n > 0 and cols > 0, got n={n}, cols={cols}")
    check_image_size(image_size)
    rows = -(-n // cols)
    if rows * cols * image_size ** 2 > MAX_SHEET_PIXELS:
        raise MnnEdgeError(f"a sheet of {n} faces of {image_size} px in {cols} columns would be "
                           f"{cols * image_size}x{rows * image_size} px, more than 8192x8192: "
                           "fewer faces (--n), a smaller --size or fewer --cols")
    return rows


def contact_sheet(n: int = 16, seed: int = 0, image_size: int = 128, cols: int = 4,
                  landmarks: bool = False) -> np.ndarray:
    """(rows*S, cols*S, 3) uint8 RGB grid of faces 0..n-1 of data set ``seed`` (the same faces
    ``write_synthetic`` writes at that size); landmarks drawn green (visible) / red (occluded)."""
    rows = check_sheet(n, image_size, cols)
    sheet = np.zeros((rows * image_size, cols * image_size, 3), dtype=np.uint8)
    for i in range(n):
        img, lab = render_face(np.random.default_rng([seed, i]), image_size)
        if landmarks:
            img = img.copy()
            r = max(1, image_size // 160)
            for (x, y), v in zip(lab.landmarks, lab.visibility):
                cv2.circle(img, (int(round(x)), int(round(y))), r, VISIBLE if v else OCCLUDED, -1)
        y0, x0 = (i // cols) * image_size, (i % cols) * image_size
        sheet[y0:y0 + image_size, x0:x0 + image_size] = img
    return sheet


def write_contact_sheet(path: Path, n: int = 16, seed: int = 0, image_size: int = 128, cols: int = 4,
                        landmarks: bool = False) -> Path:
    """Write :func:`contact_sheet` as a PNG (atomically)."""
    path = Path(path)
    sheet = contact_sheet(n, seed, image_size, cols, landmarks)
    ok, enc = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise MnnEdgeError(f"PNG encoding failed for {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(enc.tobytes())
    return path
