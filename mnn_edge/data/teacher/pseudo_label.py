"""``mnn-data pseudo-label``: run the pose teacher on every face of a data set, resumably.

Labels are appended to ``OUT.partial`` as they are made; a run that finds a ``.partial`` with the
same header (same teacher files, crop and data) keeps its labels and does only the rest. The
finished file gets its footer and then its final name (:mod:`mnn_edge.data.readers.pose_labels`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tqdm import tqdm

from mnn_edge.data.readers import load_image_rgb, read_dataset
from mnn_edge.data.readers.pose_labels import label_key, make_header, partial_path, read_partial
from mnn_edge.data.teacher import open_teachers
from mnn_edge.errors import MnnEdgeError

FLUSH_EVERY = 32  # faces between flushes of the partial file: a kill loses at most this many


def _label_line(key: str, angles) -> str:
    return json.dumps({"image": key, "angles": [round(float(a), 4) for a in angles]}) + "\n"


def pseudo_label(teacher_dirs: list[Path], data: Path, fmt: str, out: Path, margin: float | None = None,
                 force: bool = False, progress: bool = True) -> tuple[int, int, int]:
    """Label every face of ``data`` with one teacher or two combined (:mod:`mnn_edge.data.teacher`);
    returns (faces labelled in this run, faces resumed, faces no teacher could read)."""
    if out.exists() and not force:
        raise MnnEdgeError(f"{out} already exists; pass --force to label again")
    teacher = open_teachers(list(teacher_dirs), margin)
    try:
        return _label_all(teacher, data, fmt, out, progress)
    finally:
        teacher.close()


def _label_all(teacher, data: Path, fmt: str, out: Path, progress: bool) -> tuple[int, int, int]:
    samples = read_dataset(data, fmt, progress=progress)
    if any(s.landmarks is None for s in samples):
        raise MnnEdgeError(f"{fmt} faces under {data} have no landmarks: the teacher crops from the 68 landmarks")
    header = make_header(teacher.provenance(), data, fmt)
    part = partial_path(out)
    done: dict = {}
    if part.is_file():
        old_header, old = read_partial(part)
        if old_header == header:
            done = old
    keys = [label_key(s, data) for s in samples]
    resumed = sum(k in done for k in keys)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(part, "w") as f:  # rewritten from what was kept: a cut-off last line goes away
            f.write(json.dumps(header) + "\n")
            for key in keys:
                if key in done:
                    f.write(_label_line(key, done[key]))
            f.flush()
            made = unread = 0
            todo = [(k, s) for k, s in zip(keys, samples) if k not in done]
            for key, s in tqdm(todo, desc="pseudo-label", unit="face", disable=not progress):
                angles = teacher.predict(load_image_rgb(s.image_path), s.landmarks)
                if angles is None:  # the Face Landmarker alone found no face: no label, counted
                    unread += 1
                    continue
                f.write(_label_line(key, angles))
                made += 1
                if made % FLUSH_EVERY == 0:
                    f.flush()
            if made + resumed == 0:
                raise MnnEdgeError(f"the teacher read none of the {len(keys)} faces under {data}; nothing written")
            f.write(json.dumps({"complete": True, "n": made + resumed}) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise MnnEdgeError(f"cannot write {part}: {e.strerror}") from e
    os.replace(part, out)
    return made, resumed, unread
