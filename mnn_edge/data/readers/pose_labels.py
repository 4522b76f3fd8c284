"""Teacher pose labels on disk: ``mnn-data pseudo-label`` writes them, ``read_dataset`` attaches them.

A labels file is JSON Lines:
- line 1, the header: ``{"format": "mnn-edge-pose-labels", "version": 1, "teacher": {...model
  files with SHA-256, crop rule}, "data": ..., "data_format": ..., "convention": ...}``;
- one line per face: ``{"image": PATH relative to the data folder, "angles": [yaw, pitch, roll]}``;
- the last line, ``{"complete": true, "n": N}``.

While a run labels, it appends to ``OUT.partial`` (flushed every few faces); a killed run leaves only
that file, which a new run with the same header resumes. The finished file is renamed to ``OUT``
only after its footer is written, and the reader refuses a file without the footer, so no half
file reads as complete.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from mnn_edge.data.sample import FaceSample
from mnn_edge.errors import MnnEdgeError

log = logging.getLogger(__name__)

FORMAT = "mnn-edge-pose-labels"
VERSION = 1
CONVENTION = "yaw, pitch, roll in degrees, AFLW2000-3D / mnn_edge.geometry convention"


def data_folder(root: str | Path) -> Path:
    root = Path(root)
    return root if root.is_dir() else root.parent


def label_key(sample: FaceSample, root: str | Path) -> str:
    """The image's path relative to the data folder, with forward slashes."""
    return Path(os.path.relpath(sample.image_path, data_folder(root))).as_posix()


def partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def make_header(provenance: dict, root: str | Path, fmt: str) -> dict:
    return {"format": FORMAT, "version": VERSION, "teacher": provenance, "data": str(root), "data_format": fmt,
            "convention": CONVENTION}


def _parse_lines(lines: Iterable[str], path: Path, strict: bool) -> tuple[dict | None, dict[str, np.ndarray], bool]:
    """(header, labels, complete). ``strict`` raises on any bad line; otherwise a bad last line
    (a write cut short) ends the read."""
    header, labels, complete = None, {}, False
    for i, line in enumerate(lines, start=1):
        try:
            try:
                rec = json.loads(line)
            except RecursionError:
                raise ValueError("JSON nested too deeply to be a label") from None
            if i == 1:
                if not isinstance(rec, dict) or rec.get("format") != FORMAT:
                    raise ValueError(f"not an {FORMAT} file")
                if rec.get("version") != VERSION:
                    raise ValueError(f"version {rec.get('version')} (this mnn-edge reads {VERSION})")
                header = rec
            elif rec.get("complete") is True:
                if int(rec.get("n", -1)) != len(labels):
                    raise ValueError(f"footer says {rec.get('n')} labels, the file has {len(labels)}")
                complete = True
            else:
                angles = np.asarray(rec["angles"], dtype=np.float64)
                if angles.shape != (3,) or not np.all(np.isfinite(angles)):
                    raise ValueError("angles must be 3 finite numbers")
                labels[str(rec["image"])] = angles
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            if strict or i == 1:
                raise MnnEdgeError(f"{path} line {i}: {e}") from e
            break
    return header, labels, complete


def read_labels(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, {image key: angles}) of a finished labels file; one clear error otherwise."""
    path = Path(path)
    if not path.is_file():
        hint = " (a pseudo-label run was stopped half-way: run it again to finish)" \
            if partial_path(path).is_file() else ""
        raise MnnEdgeError(f"pose labels file not found: {path}{hint}")
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise MnnEdgeError(f"{path} is not a pose labels file (not text)") from e
    header, labels, complete = _parse_lines(text.splitlines(), path, strict=True)
    if header is None:
        raise MnnEdgeError(f"{path} is empty: not a pose labels file")
    if not complete:
        raise MnnEdgeError(f"{path} has no closing line: it is not a complete pose labels file (run "
                           "mnn-data pseudo-label again)")
    return header, labels


def read_partial(path: Path) -> tuple[dict | None, dict[str, np.ndarray]]:
    """What a stopped run left in ``path`` (a ``.partial`` file): header and the labels written."""
    try:
        header, labels, _ = _parse_lines(path.read_text(errors="replace").splitlines(), path, strict=False)
    except MnnEdgeError:
        return None, {}
    return header, labels


def attach_pose_labels(samples: list[FaceSample], path: str | Path, root: str | Path) -> None:
    """Give each sample the teacher's angles from ``path`` (marked ``pose_origin = "teacher"``)."""
    _, labels = read_labels(path)
    missing = 0
    for s in samples:
        angles = labels.get(label_key(s, root))
        if angles is None:
            missing += 1
            continue
        s.angles, s.pose, s.pose_origin = angles.copy(), None, "teacher"
    if missing == len(samples):
        raise MnnEdgeError(f"pose labels {path} name none of the {len(samples)} faces under {root} "
                           "(labels made for another data folder?)")
    if missing:
        message = f"pose labels {path}: {missing} of {len(samples)} faces have no label (no pose loss for them)"
        warnings.warn(message, stacklevel=3)
        log.warning(message)
