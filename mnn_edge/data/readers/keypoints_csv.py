"""``keypoints-csv``: a folder holding ``keypoints.csv`` and the images it names (landmarks, no pose).

``keypoints.csv``: a header row, then one row per image: the file name (relative to the CSV's
folder), then ``2 L`` numbers ``x0, y0, x1, y1, ...`` in pixels of that image (0-based, as the
shared YouTube-Faces frames are written). ``root`` is the folder or the CSV file itself.

Frames of one person share a name stem (``First_Last_NN.jpg``), so :func:`group_of` gives the
person: held-out parts are split by person, never by file (see ``readers.split_of``).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from mnn_edge.data.readers.base import FormatReader, SkipFile
from mnn_edge.data.sample import FaceSample

CSV_NAME = "keypoints.csv"
POINTS = 68
FIELDS = 1 + 2 * POINTS
_FRAME_SUFFIX = re.compile(r"_\d+$")


class CsvRow(tuple):
    """(csv path, line number, fields); str() names ``file:line`` for the skip warning."""

    def __str__(self) -> str:
        return f"{self[0]}:{self[1]}"


def csv_path(root: Path) -> Path:
    return root if root.is_file() else root / CSV_NAME


def list_rows(root: Path) -> list[CsvRow]:
    """Every data row of the CSV (the header row is the first row, always skipped)."""
    path = csv_path(root)
    if not path.is_file():
        return []
    with open(path, newline="", errors="replace") as f:
        rows = list(csv.reader(f))
    return [CsvRow((path, i, row)) for i, row in enumerate(rows[1:], start=2) if any(c.strip() for c in row)]


def parse_row(item: CsvRow) -> FaceSample:
    path, _, row = item
    if len(row) != FIELDS:
        raise SkipFile("wrong column count")
    try:
        values = np.array([float(v) for v in row[1:]], dtype=np.float64)
    except ValueError as e:
        raise SkipFile("bad number") from e
    if not np.all(np.isfinite(values)):
        raise SkipFile("NaN in landmarks")
    name = row[0].strip()
    if not name:
        raise SkipFile("missing image")
    return FaceSample(image_path=path.parent / name, landmarks=values.reshape(POINTS, 2), source="keypoints-csv")


def person_of(image_name: str | Path) -> str:
    """The person of a frame: the image name without folder, extension and trailing frame number."""
    return _FRAME_SUFFIX.sub("", Path(image_name).stem)


def group_of(item: CsvRow) -> str:
    """The person of a row."""
    return person_of(item[2][0].strip() if item[2] else "")


def reader() -> FormatReader:
    return FormatReader(list_items=list_rows, parse_item=parse_row, group_of=group_of)
