"""MediaPipe's Face Landmarker: a 3D face mesh and a head pose per photo (data preparation only).

``mediapipe`` is an optional extra (``pip install 'mnn-edge[profile]'``); nothing at inference
imports this module. Its wheel depends on ``opencv-contrib-python``, which would replace the
headless OpenCV the toolkit uses, so the extra is installed without dependencies (README).

What it returns, in the toolkit's terms:
- the 478 points' x, y are normalised image coordinates and z is depth in x's scale, smaller =
  nearer; :func:`mesh_pixels` turns the 468 face-mesh points into pixels with depth toward the
  camera (larger = nearer), scaled by a calibration factor (the raw depth is too flat);
- ``facial_transformation_matrixes[0]`` places the canonical face (x right, y up, z toward the
  camera) in camera space: its rotation is the pose matrix of :mod:`mnn_edge.geometry` as it is
  (``matrix_to_euler`` reads yaw, pitch, roll; checked on the AFLW2000-3D samples by a test).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnn_edge.data.profile.topology import MESH_POINTS
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import sha256_file
from mnn_edge.geometry import matrix_to_euler

TASK_FILE = "face_landmarker.task"
INSTALL = "pip install --no-deps 'mediapipe==1.2.3' absl-py flatbuffers"


@dataclass(frozen=True)
class MeshReading:
    """One face read by the Face Landmarker."""

    points: np.ndarray  # (478, 3): x, y normalised to the image, z in x's scale (smaller = nearer)
    angles: np.ndarray  # (3,) yaw, pitch, roll in degrees (toolkit convention)
    faces: int  # faces found in the photo


def mesh_pixels(points: np.ndarray, width: int, height: int, depth_scale: float) -> np.ndarray:
    """(468, 3) x, y in pixels and depth toward the camera in pixels (larger = nearer)."""
    p = np.asarray(points, dtype=np.float64)[:MESH_POINTS]
    return np.column_stack([p[:, 0] * width - 0.5, p[:, 1] * height - 0.5, -p[:, 2] * width * depth_scale])


def import_mediapipe():
    try:
        import mediapipe as mp
        from mediapipe.tasks import python as mp_tasks
        from mediapipe.tasks.python import vision
    except ImportError as e:
        raise MnnEdgeError("the Face Landmarker needs MediaPipe, an optional extra for data preparation: "
                           f"{INSTALL}") from e
    return mp, mp_tasks, vision


class FaceLandmarker:
    """A loaded ``face_landmarker.task``; use as a context manager (MediaPipe wants ``close()``)."""

    def __init__(self, model: str | Path, max_faces: int = 2) -> None:
        path = Path(model)
        if path.is_dir():
            path = path / TASK_FILE
        if not path.is_file():
            from mnn_edge.data.fetch import fetch_hint

            raise MnnEdgeError(f"Face Landmarker model {path} does not exist (MediaPipe's {TASK_FILE})"
                               f"{fetch_hint(path)}")
        mp, mp_tasks, vision = import_mediapipe()
        self._mp = mp
        self.path, self.sha256 = path, sha256_file(path)
        opts = vision.FaceLandmarkerOptions(base_options=mp_tasks.BaseOptions(model_asset_path=str(path)),
                                            output_facial_transformation_matrixes=True, num_faces=max_faces,
                                            running_mode=vision.RunningMode.IMAGE)
        try:
            self._landmarker = vision.FaceLandmarker.create_from_options(opts)
        except (RuntimeError, ValueError) as e:
            raise MnnEdgeError(f"{path} is not a Face Landmarker model bundle: {e}") from e

    def read(self, image_rgb: np.ndarray, near: tuple[float, float] | None = None) -> MeshReading | None:
        """The mesh and pose of the face nearest ``near`` (x, y px; default the first found); None
        when no face is found."""
        h, w = image_rgb.shape[:2]
        img = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(image_rgb))
        res = self._landmarker.detect(img)
        if not res.face_landmarks:
            return None
        faces = [np.array([[q.x, q.y, q.z] for q in f], dtype=np.float64) for f in res.face_landmarks]
        i = 0
        if near is not None:
            centres = np.array([[f[:, 0].mean() * w, f[:, 1].mean() * h] for f in faces])
            i = int(((centres - np.asarray(near)) ** 2).sum(axis=1).argmin())
        rot = np.asarray(res.facial_transformation_matrixes[i], dtype=np.float64)[:3, :3]
        return MeshReading(points=faces[i], angles=np.array(matrix_to_euler(rot)), faces=len(faces))

    def provenance(self) -> dict:
        return {"kind": "mediapipe-face-landmarker", "models": [{"file": self.path.name, "sha256": self.sha256}]}

    def close(self) -> None:
        self._landmarker.close()

    def __enter__(self) -> FaceLandmarker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
