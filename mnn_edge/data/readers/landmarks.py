"""Landmark-only formats: 300W ``.pts`` (68 points), COFW per-image ``.pts`` (29), WFLW list (98).

None of them has a head pose; they serve landmark training/evaluation and calibration crops.
- 300W / iBUG ``.pts``: ``version: 1`` / ``n_points: 68`` / ``{`` / one ``x y`` per line / ``}``,
  1-based pixel coordinates (the iBUG convention); the image is the file of the same stem.
- COFW: the official release is a MATLAB v7.3 (HDF5) file with the images inside; ``mnn-data cofw``
  (:mod:`mnn_edge.data.readers.cofw_mat`) unpacks it into the per-image form this reader takes:
  ``NAME.pts`` in the same syntax with ``n_points: 29``, each line ``x y`` or ``x y occluded``
  (1 = occluded, as COFW's third block of ``phis``), 1-based.
- WFLW: the annotation list ``list_98pt_rect_attr_{train,test}.txt``; each line holds 196 numbers
  (x0 y0 ... x97 y97), the face box x_min y_min x_max y_max, 6 attribute flags (pose, expression,
  illumination, make-up, occlusion, blur) and the image path relative to ``WFLW_images/``.
  Coordinates are used as given (0-based floats).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnn_edge.data.readers.base import FormatReader, SkipFile
from mnn_edge.data.sample import FaceSample

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff")
PTS_OFFSET = 1.0  # iBUG .pts are 1-based
POINTS = {"300w": 68, "cofw": 29}
WFLW_POINTS = 98
WFLW_FIELDS = 2 * WFLW_POINTS + 4 + 6 + 1
WFLW_SEARCH_UP = 3


def list_pts(root: Path) -> list[Path]:
    if root.is_file():
        return [root] if root.suffix == ".pts" else []
    return sorted(root.rglob("*.pts"))


def find_image(path: Path) -> Path:
    for suffix in IMAGE_SUFFIXES:
        for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
            if candidate.is_file():
                return candidate
    raise SkipFile("missing image")


def parse_pts_text(text: str) -> np.ndarray:
    """Rows of numbers between ``{`` and ``}`` of an iBUG ``.pts`` file (checks ``n_points``)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    try:
        header = dict(ln.split(":", 1) for ln in lines[: lines.index("{")] if ":" in ln)
        body = lines[lines.index("{") + 1: lines.index("}")]
        rows = np.array([[float(v) for v in ln.split()] for ln in body], dtype=np.float64)
    except (ValueError, IndexError) as e:
        raise SkipFile("unreadable annotation") from e
    n = int(header.get("n_points", len(rows)))
    if rows.ndim != 2 or len(rows) != n or rows.shape[1] not in (2, 3):
        raise SkipFile("bad n_points")
    return rows


def parse_pts(path: Path, fmt: str) -> FaceSample:
    try:
        rows = parse_pts_text(path.read_text(errors="replace"))
    except OSError as e:
        raise SkipFile("unreadable annotation") from e
    if len(rows) != POINTS[fmt]:
        raise SkipFile(f"not {POINTS[fmt]} points")
    if not np.all(np.isfinite(rows)):
        raise SkipFile("NaN in landmarks")
    vis = None
    if rows.shape[1] == 3:
        vis = (rows[:, 2] < 0.5).astype(np.float32)  # third column: 1 = occluded
    return FaceSample(image_path=find_image(path), landmarks=rows[:, :2] - PTS_OFFSET, visibility=vis, source=fmt)


# ---- WFLW -------------------------------------------------------------------------------------

def list_wflw(root: Path) -> list[tuple[Path, Path, int, str]]:
    """(search top, list file, line number, line) for every non-empty line of every WFLW list file.

    Images are looked up from the list file's folder upwards, to ``root`` when a folder is given,
    else up to :data:`WFLW_SEARCH_UP` levels (the release keeps the lists two levels below the
    folder that holds ``WFLW_images/``)."""
    files = [root] if root.is_file() else sorted(root.rglob("list_98pt*.txt"))
    items = []
    for f in files:
        top = root if root.is_dir() else f.parents[min(WFLW_SEARCH_UP, len(f.parents) - 1)]
        for i, line in enumerate(f.read_text(errors="replace").splitlines(), start=1):
            if line.strip():
                items.append((top, f, i, line))
    return items


def _wflw_image(top: Path, list_file: Path, name: str) -> Path:
    """WFLW names are relative to ``WFLW_images/``; look beside the list file and up to ``top``."""
    folder = list_file.parent
    while True:
        for candidate in (folder / name, folder / "WFLW_images" / name):
            if candidate.is_file():
                return candidate
        if folder == top or folder.parent == folder:
            raise SkipFile("missing image")
        folder = folder.parent


def parse_wflw(item: tuple[Path, Path, int, str]) -> FaceSample:
    root, list_file, _, line = item
    fields = line.split()
    if len(fields) != WFLW_FIELDS:
        raise SkipFile("bad WFLW line")
    try:
        numbers = np.array([float(v) for v in fields[: 2 * WFLW_POINTS + 4]])
    except ValueError as e:
        raise SkipFile("bad WFLW line") from e
    if not np.all(np.isfinite(numbers)):
        raise SkipFile("NaN in landmarks")
    lms = numbers[: 2 * WFLW_POINTS].reshape(WFLW_POINTS, 2)
    box = numbers[2 * WFLW_POINTS:]
    return FaceSample(image_path=_wflw_image(root, list_file, fields[-1]), landmarks=lms, box=box, source="wflw")


def _wflw_str(item) -> str:
    return f"{item[1]}:{item[2]}"


class _WflwItem(tuple):
    """A WFLW line item whose str() names file:line (used in the skip warning)."""

    def __str__(self) -> str:
        return _wflw_str(self)


def reader(fmt: str) -> FormatReader:
    if fmt == "wflw":
        return FormatReader(list_items=lambda root: [_WflwItem(it) for it in list_wflw(root)], parse_item=parse_wflw)
    return FormatReader(list_items=list_pts, parse_item=lambda path: parse_pts(path, fmt))
