"""COFW's official MATLAB release -> the per-image ``NAME.png`` + ``NAME.pts`` form ``--format cofw`` reads.

The release (``COFW_train_color.mat`` / ``COFW_test_color.mat``, Burgos-Artizzu et al. 2013)
holds the images inside the file: a cell array ``IsTr`` (train) or ``IsT`` (test) of uint8
images, H x W x 3 or H x W for grey ones, and ``phisTr`` / ``phisT``, one row of 87 numbers per
face: 29 x, then 29 y (1-based MATLAB pixels), then 29 occlusion flags (1 = occluded). The colour
files are MATLAB v7.3, i.e. HDF5, read with h5py (the optional ``data`` extra); older v5 copies
are read with scipy. HDF5 stores MATLAB arrays with their dimensions reversed, so every array is
transposed back on reading.

Images are written as PNG (lossless: the pixels are the release's own) and the ``.pts`` keeps the
release's numbers unchanged, so the reader's 1-based convention applies to both sources.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import atomic_path, require_file

POINTS = 29
ROW = 3 * POINTS  # x (29), y (29), occluded (29)
SPLITS = {"IsTr": ("phisTr", "train"), "IsT": ("phisT", "test")}


def _split_keys(keys) -> tuple[str, str, str]:
    for images, (phis, split) in SPLITS.items():
        if images in keys and phis in keys:
            return images, phis, split
    raise MnnEdgeError(f"not a COFW release file: expected the variables IsTr + phisTr or IsT + phisT, "
                       f"found {', '.join(sorted(k for k in keys if not k.startswith('_'))) or 'none'}")


def _load_v73(path: Path) -> tuple[list[np.ndarray], np.ndarray, str]:
    try:
        import h5py
    except ImportError as e:
        raise MnnEdgeError(f"{path} is a MATLAB v7.3 (HDF5) file: reading it needs h5py "
                           "(pip install 'mnn-edge[data]' or pip install h5py)") from e
    with h5py.File(path, "r") as f:
        images_key, phis_key, split = _split_keys(list(f.keys()))
        refs = np.asarray(f[images_key]).reshape(-1)
        images = [np.asarray(f[r]).T for r in refs]
        phis = np.asarray(f[phis_key], dtype=np.float64).T
    return images, phis, split


def _load_v5(path: Path) -> tuple[list[np.ndarray], np.ndarray, str]:
    import scipy.io

    mat = scipy.io.loadmat(path)
    images_key, phis_key, split = _split_keys(list(mat.keys()))
    images = [np.asarray(im) for im in np.asarray(mat[images_key]).reshape(-1)]
    return images, np.asarray(mat[phis_key], dtype=np.float64), split


def load_cofw_mat(path: str | Path) -> tuple[list[np.ndarray], np.ndarray, str]:
    """(images as H x W [x 3] uint8, phis (N, 87), 'train' | 'test') from either MAT version."""
    path = require_file(path, "COFW .mat file")
    with open(path, "rb") as f:
        head = f.read(128)
    # MATLAB v7.3 writes a 512-byte user block starting "MATLAB 7.3 MAT-file" before the HDF5 data.
    hdf5 = head.startswith(b"\x89HDF") or b"MATLAB 7.3" in head
    try:
        images, phis, split = _load_v73(path) if hdf5 else _load_v5(path)
    except MnnEdgeError:
        raise
    except Exception as e:  # scipy / h5py raise many types for damaged files
        raise MnnEdgeError(f"{path} could not be read as a COFW .mat file ({type(e).__name__}: {e})") from e
    if phis.ndim != 2 or phis.shape[1] != ROW or len(phis) != len(images):
        raise MnnEdgeError(f"{path}: expected {len(images)} rows of {ROW} numbers in the landmark variable, "
                           f"found shape {phis.shape}")
    return images, phis, split


def pts_text(row: np.ndarray) -> str:
    """The iBUG ``.pts`` syntax with a third column, COFW's occlusion flag."""
    body = "\n".join(f"{x:.3f} {y:.3f} {int(round(o))}"
                     for x, y, o in zip(row[:POINTS], row[POINTS:2 * POINTS], row[2 * POINTS:]))
    return f"version: 1\nn_points: {POINTS}\n{{\n{body}\n}}\n"


def to_bgr(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        raise ValueError(f"dtype {image.dtype}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    raise ValueError(f"shape {image.shape}")


def skips_text(skipped: Counter) -> str:
    """'2 NaN in landmarks, 1 unusable image'."""
    return ", ".join(f"{n} {reason}" for reason, n in skipped.most_common())


def convert_cofw(mat_path: str | Path, out: str | Path, force: bool = False,
                 progress: bool = True) -> tuple[int, Counter]:
    """Write ``cofw_{split}_{i:04d}.png`` + ``.pts`` (i from 1, the release's order) into ``out``.

    Faces with non-finite landmarks or an unusable image are skipped and counted; returns
    (faces written, skip reasons). Refuses to overwrite earlier output without ``force``.
    """
    from tqdm import tqdm

    images, phis, split = load_cofw_mat(mat_path)
    out = Path(out)
    prefix = f"cofw_{split}_"
    if out.is_dir() and not force and any(out.glob(f"{prefix}*.pts")):
        raise MnnEdgeError(f"{out} already holds {prefix}* files; pass --force to overwrite them")
    written, skipped = 0, Counter()
    for i, (image, row) in enumerate(tqdm(list(zip(images, phis)), desc="cofw", disable=not progress), start=1):
        if not np.all(np.isfinite(row)):
            skipped["NaN in landmarks"] += 1
            continue
        try:
            bgr = to_bgr(image)
        except ValueError:
            skipped["unusable image"] += 1
            continue
        ok, enc = cv2.imencode(".png", bgr)
        if not ok:
            skipped["unusable image"] += 1
            continue
        name = f"{prefix}{i:04d}"
        with atomic_path(out / f"{name}.png") as tmp:
            tmp.write_bytes(enc.tobytes())
        with atomic_path(out / f"{name}.pts") as tmp:
            tmp.write_text(pts_text(row))
        written += 1
    if written == 0:
        raise MnnEdgeError(f"{mat_path}: no usable face ({skips_text(skipped)})")
    return written, skipped
