"""The ``NAME.jpg`` + ``NAME.mat`` layout: AFLW2000-3D, 300W-LP and the synthetic faces.

Conventions (checked on the real AFLW2000-3D samples, see docs/DATA_FORMATS.md):
- ``Pose_Para`` 1x7 = pitch, yaw, roll [rad], tx, ty, tz, scale. Angles become (yaw, pitch, roll)
  in degrees, the toolkit convention (:mod:`mnn_edge.geometry` implements 3DDFA's matrices).
- AFLW2000-3D / 300W-LP landmarks were made by 3DDFA's MATLAB code (``height + 1 - y``): 1-based
  pixel coordinates. We subtract 1 so that pixel centres sit on integers from 0 (OpenCV).
- Synthetic faces (our generator) are written 0-based already, with the exact ``pose_mnn`` 1x6
  and ``visibility`` 1x68.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnn_edge.data.readers.base import FormatReader, SkipFile
from mnn_edge.data.sample import FaceSample

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
MATLAB_OFFSET = 1.0  # 1-based MATLAB pixel coordinates -> 0-based


def list_mat_files(root: Path) -> list[Path]:
    """Annotation ``.mat`` files under ``root`` (recursively), excluding 300W-LP's separate
    ``landmarks/`` tree, its ``*_pts.mat`` files and its ``Code/`` folder (3DMM model files)."""
    if root.is_file():
        return [root] if root.suffix == ".mat" else []
    out = []
    for p in root.rglob("*.mat"):
        rel = p.relative_to(root).parts
        if p.name.endswith("_pts.mat") or "landmarks" in rel[:-1] or "Code" in rel[:-1]:
            continue
        out.append(p)
    return sorted(out)


def find_image(mat_path: Path) -> Path:
    for suffix in IMAGE_SUFFIXES:
        candidate = mat_path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    raise SkipFile("missing image")


def load_mat(path: Path) -> dict:
    from scipy.io import loadmat

    try:
        return loadmat(str(path))
    except Exception as e:  # noqa: BLE001 - scipy raises many types for corrupt files
        raise SkipFile("unreadable annotation") from e


def get_array(mat: dict, key: str, size: int | None = None) -> np.ndarray:
    """``mat[key]`` as float64, with a shape check; SkipFile('missing KEY' / 'bad KEY')."""
    if key not in mat:
        raise SkipFile(f"missing {key}")
    try:
        arr = np.asarray(mat[key], dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise SkipFile(f"bad {key}") from e
    if size is not None and arr.size != size:
        raise SkipFile(f"bad {key} size")
    if not np.all(np.isfinite(arr)):
        raise SkipFile(f"NaN in {key}")
    return arr


def pose_para_angles(mat: dict) -> np.ndarray:
    """(yaw, pitch, roll) degrees from ``Pose_Para`` (pitch, yaw, roll radians first)."""
    para = get_array(mat, "Pose_Para", 7).ravel()
    pitch, yaw, roll = np.rad2deg(para[:3])
    return np.array([yaw, pitch, roll])


def landmarks_2xl(arr: np.ndarray, key: str, n: int = 68) -> np.ndarray:
    """(n, 2) from a 2xn / 3xn / nx2 / nx3 array."""
    if arr.ndim == 2 and arr.shape[0] in (2, 3) and arr.shape[1] == n:
        return arr[:2].T.copy()
    if arr.ndim == 2 and arr.shape[1] in (2, 3) and arr.shape[0] == n:
        return arr[:, :2].copy()
    raise SkipFile(f"bad {key} shape")


def parse_aflw2000(path: Path, source: str = "aflw2000") -> FaceSample:
    mat = load_mat(path)
    image = find_image(path)
    angles = pose_para_angles(mat)
    lms = landmarks_2xl(get_array(mat, "pt3d_68"), "pt3d_68") - MATLAB_OFFSET
    return FaceSample(image_path=image, landmarks=lms, angles=angles, source=source)


def _separate_landmarks(path: Path) -> Path | None:
    """300W-LP keeps 68-point landmarks for the non-flipped images in
    ``<root>/landmarks/<subset>/<name>_pts.mat``, beside ``<root>/<subset>/<name>.mat``."""
    candidate = path.parent.parent / "landmarks" / path.parent.name / f"{path.stem}_pts.mat"
    return candidate if candidate.is_file() else None


def parse_300wlp(path: Path) -> FaceSample:
    """300W-LP: ``pt3d_68`` when present; else ``landmarks/<subset>/<name>_pts.mat`` key
    ``pts_3d`` (the 3D landmarks, consistent with the pose like AFLW2000-3D's ``pt3d_68``);
    else the main file's ``pt2d`` when it holds 68 points."""
    mat = load_mat(path)
    image = find_image(path)
    angles = pose_para_angles(mat)
    if "pt3d_68" in mat:
        lms = landmarks_2xl(get_array(mat, "pt3d_68"), "pt3d_68")
    else:
        extra = _separate_landmarks(path)
        pts = load_mat(extra) if extra is not None else {}
        if "pts_3d" in pts:
            lms = landmarks_2xl(get_array(pts, "pts_3d"), "pts_3d")
        elif "pt2d" in mat and np.asarray(mat["pt2d"]).size == 136:
            lms = landmarks_2xl(get_array(mat, "pt2d"), "pt2d")
        else:
            raise SkipFile("missing pt3d_68/pts_3d/pt2d (68 points)")
    return FaceSample(image_path=image, landmarks=lms - MATLAB_OFFSET, angles=angles, source="300wlp")


def parse_synthetic(path: Path) -> FaceSample:
    """Synthetic faces: 0-based ``pt3d_68``, exact ``pose_mnn`` (1x6 image-space pose in the
    toolkit convention) and ``visibility`` (1x68)."""
    mat = load_mat(path)
    image = find_image(path)
    pose = get_array(mat, "pose_mnn", 6).ravel()
    lms = landmarks_2xl(get_array(mat, "pt3d_68"), "pt3d_68")
    vis = get_array(mat, "visibility", len(lms)).ravel().astype(np.float32)
    return FaceSample(image_path=image, landmarks=lms, visibility=vis, angles=pose[:3].copy(), pose=pose,
                      source="synthetic")


def reader(fmt: str) -> FormatReader:
    parse = {"aflw2000": parse_aflw2000, "300wlp": parse_300wlp, "synthetic": parse_synthetic}[fmt]
    return FormatReader(list_items=list_mat_files, parse_item=parse)
