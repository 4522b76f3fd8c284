"""Dataset readers: every supported format becomes a list of :class:`FaceSample`.

``read_dataset(root, fmt)`` is the one entry point. Each format family lives in its own module
(``readers.mat`` for the ``.jpg`` + ``.mat`` layout of AFLW2000-3D / 300W-LP / synthetic faces,
``readers.landmarks`` for 300W ``.pts`` / COFW / WFLW, ``readers.biwi`` for Biwi Kinect,
``readers.keypoints_csv`` for keypoint CSV frames; what they share is ``readers.base``) and
provides two functions: ``list_items(root)`` (the files or annotation lines to read, in a stable
order) and ``parse_item(item) -> FaceSample`` (raises :class:`SkipFile` with a short reason).

Bad input never disappears silently: every skipped file is counted by reason and reported in one
warning line ("skipped 3 of 120 files: 2 unreadable image, 1 missing Pose_Para"); when nothing
usable is left, or the folder does not exist, :class:`MnnEdgeError` is raised.
See ``docs/DATA_FORMATS.md`` for the exact conventions of every format.
"""

from __future__ import annotations

import logging
import warnings
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mnn_edge.data.readers.base import (  # noqa: F401 - the package's API: readers and their users import these here
    OUTSIDE_TOLERANCE,
    FormatReader,
    SkipFile,
    check_sample,
    image_size,
    load_image_rgb,
)
from mnn_edge.data.sample import FORMATS, FaceSample
from mnn_edge.errors import MnnEdgeError

log = logging.getLogger(__name__)

# AFLW2000-3D protocol: faces with any angle outside +-99 degrees are dropped (Hopenet, FSA-Net,
# 3DDFA and the MNN paper all report on the 1969 faces that remain).
PROTOCOL_MAX_ANGLE = 99.0


# Person-disjoint hold-out: a group is held out when crc32(group) % 100 < HOLDOUT_PERCENT. A hash,
# not a random draw, so every command and every machine agrees on the split without a file.
HOLDOUT_PERCENT = 15
SUBSETS = ("train", "heldout")


def _reader(fmt: str) -> FormatReader:
    # Imported here so that reading one format does not import the others' dependencies.
    if fmt in ("synthetic", "aflw2000", "300wlp"):
        from mnn_edge.data.readers import mat

        return mat.reader(fmt)
    if fmt in ("300w", "cofw", "wflw"):
        from mnn_edge.data.readers import landmarks

        return landmarks.reader(fmt)
    if fmt == "biwi":
        from mnn_edge.data.readers import biwi

        return biwi.reader()
    if fmt == "keypoints-csv":
        from mnn_edge.data.readers import keypoints_csv

        return keypoints_csv.reader()
    raise MnnEdgeError(f"unknown dataset format {fmt!r}; choose one of {', '.join(FORMATS)}")


def summarize_skips(skipped: Counter, total: int) -> str:
    """'skipped 3 of 120 files: 2 unreadable image, 1 missing Pose_Para'."""
    parts = ", ".join(f"{n} {reason}" for reason, n in skipped.most_common())
    return f"skipped {sum(skipped.values())} of {total} files: {parts}"


def in_subset(group: str, subset: str) -> bool:
    """Whether ``group`` (a person) falls in ``subset`` of the person-disjoint split."""
    held = zlib.crc32(group.encode("utf-8")) % 100 < HOLDOUT_PERCENT
    return held if subset == "heldout" else not held


def read_dataset(root: str | Path, fmt: str, limit: int | None = None, progress: bool = False,
                 subset: str | None = None, pose_labels: str | Path | None = None) -> list[FaceSample]:
    """Read every usable face under ``root`` in format ``fmt`` (one of ``FORMATS``).

    Items are read in sorted order; ``limit`` stops after that many usable faces; ``progress``
    shows a tqdm bar (300W-LP has 122k files). ``subset`` (``train`` / ``heldout``) keeps one side
    of the person-disjoint split (formats that know the person only). ``pose_labels`` is a file
    written by ``mnn-data pseudo-label``: its angles become the faces' pose labels, marked as the
    teacher's (:mod:`mnn_edge.data.readers.pose_labels`). Unusable files are skipped and reported in one
    warning; MnnEdgeError when the folder does not exist, the format is unknown, or nothing
    usable is left.
    """
    root = Path(root)
    if not root.exists():
        from mnn_edge.data.fetch import fetch_hint

        raise MnnEdgeError(f"dataset folder {root} does not exist{fetch_hint(root)}")
    if limit is not None and limit < 1:
        raise MnnEdgeError(f"limit must be at least 1, got {limit}")
    reader = _reader(fmt)
    if subset is not None and subset not in SUBSETS:
        raise MnnEdgeError(f"subset must be one of {', '.join(SUBSETS)}, got {subset!r}")
    if subset is not None and reader.group_of is None:
        raise MnnEdgeError(f"format {fmt} does not name the person of a face: it cannot be split by person "
                           "(--subset needs keypoints-csv)")
    items = reader.list_items(root)
    if not items:
        raise MnnEdgeError(f"no {fmt} annotation files found under {root} (see docs/DATA_FORMATS.md)")
    if subset is not None:
        items = [it for it in items if in_subset(reader.group_of(it), subset)]
        if not items:
            raise MnnEdgeError(f"the {subset} part of {root} is empty (split by person, {HOLDOUT_PERCENT}% held out)")
    samples: list[FaceSample] = []
    skipped: Counter = Counter()
    examples: dict[str, str] = {}
    seen = 0
    for item in tqdm(items, desc=f"read {fmt}", unit="file", disable=not progress):
        if limit is not None and len(samples) >= limit:
            break
        seen += 1
        try:
            sample = reader.parse_item(item)
            check_sample(sample)
        except SkipFile as e:
            skipped[str(e)] += 1
            examples.setdefault(str(e), str(item))
            continue
        samples.append(sample)
    if skipped:
        detail = "; ".join(f"e.g. {ex} ({reason})" for reason, ex in examples.items())
        message = f"{fmt} reader under {root}: {summarize_skips(skipped, seen)} ({detail})"
        warnings.warn(message, stacklevel=2)
        log.warning(message)
    if not samples:
        raise MnnEdgeError(f"no usable {fmt} faces under {root}: {summarize_skips(skipped, seen)}")
    if pose_labels is not None:
        from mnn_edge.data.readers.pose_labels import attach_pose_labels

        attach_pose_labels(samples, pose_labels, root)
    return samples


@dataclass(frozen=True)
class DataSource:
    """A dataset as commands name it: folder, reader, side of the person split, teacher labels, limit."""

    data: Path
    format: str = "synthetic"
    subset: str | None = None  # train | heldout: one side of the person-disjoint split
    pose_labels: Path | None = None  # teacher labels (mnn-data pseudo-label) used as the pose reference
    limit: int | None = None  # read at most this many faces

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise MnnEdgeError(f"{self.data}: format '{self.format}' is not one of {', '.join(FORMATS)}")
        if self.subset is not None and self.subset not in SUBSETS:
            raise MnnEdgeError(f"{self.data}: subset must be one of {', '.join(SUBSETS)}, got {self.subset!r}")

    def read(self, progress: bool = False) -> list[FaceSample]:
        return read_dataset(self.data, self.format, self.limit, progress=progress, subset=self.subset,
                            pose_labels=self.pose_labels)

    def describe(self) -> dict:
        """Builtin types only, for JSON: what was read."""
        d = {"root": str(self.data), "format": self.format}
        if self.subset is not None:
            d["subset"] = self.subset
        if self.pose_labels is not None:
            d["pose_labels"] = f"teacher labels {self.pose_labels}"
        return d


def aflw2000_protocol(samples: Sequence[FaceSample]) -> list[FaceSample]:
    """The AFLW2000-3D test protocol: drop faces with any |angle| > 99 degrees.

    Samples without angles are kept (the filter is about pose labels only).
    """
    kept = [s for s in samples if s.angles is None or np.all(np.abs(s.angles) <= PROTOCOL_MAX_ANGLE)]
    if len(kept) < len(samples):
        log.info("AFLW2000-3D protocol dropped %d of %d faces (|angle| > %g)",
                 len(samples) - len(kept), len(samples), PROTOCOL_MAX_ANGLE)
    return kept
