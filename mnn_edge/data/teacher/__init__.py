"""Pose teachers for pseudo-labels: FSA-Net, MediaPipe's Face Landmarker, or the two combined.

Training-time only. A folder holding ``face_landmarker.task`` is the Face Landmarker; any other is
an FSA-Net folder (:mod:`mnn_edge.data.teacher.fsanet`). With both, :class:`TeacherPair` applies the rule
chosen by measurement (docs/DATA_PROFILE.md, "Two teachers"): on the 4 true-labelled AFLW2000-3D
samples the Face Landmarker errs 3.79 deg, FSA-Net 4.54, their average 4.03 (this rule 3.73); on profiled held-out
faces (how well each follows a known turn) the average is best up to 60 deg of yaw (0-30: 3.14 vs
4.30 FSA-Net, 30-60: 5.21 vs 5.28) and FSA-Net beyond (7.54 vs 10.15), where the Face Landmarker
also misses 30% of faces. So: the rotation average of the two where both read the face and
FSA-Net's |yaw| is under :data:`AVERAGE_BELOW_YAW`, FSA-Net alone otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnn_edge.data.teacher.fsanet import Teacher, load_teacher
from mnn_edge.errors import MnnEdgeError
from mnn_edge.geometry import euler_to_matrix, matrix_to_euler

AVERAGE_BELOW_YAW = 60.0


def average_pose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) of the rotation midway between two poses (the chordal mean: the mean of the
    two matrices projected back onto the rotations)."""
    u, _, vt = np.linalg.svd(euler_to_matrix(*a) + euler_to_matrix(*b))
    return np.array(matrix_to_euler(u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt))


class MeshTeacher:
    """The Face Landmarker as a teacher: the pose of the mesh nearest the landmarks' centre."""

    def __init__(self, folder: Path) -> None:
        from mnn_edge.data.profile.landmarker import FaceLandmarker

        self.landmarker = FaceLandmarker(folder)

    def predict(self, image_rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
        pts = np.asarray(landmarks, dtype=np.float64)
        pts = pts[np.all(np.isfinite(pts), axis=1)]
        reading = self.landmarker.read(image_rgb, near=tuple((pts.min(axis=0) + pts.max(axis=0)) / 2))
        return None if reading is None else reading.angles

    def provenance(self) -> dict:
        return {**self.landmarker.provenance(), "crop": {"rule": "whole image; the mesh nearest the landmark box"}}

    def close(self) -> None:
        self.landmarker.close()


@dataclass
class TeacherPair:
    """FSA-Net and the Face Landmarker, combined by the measured rule (module docstring)."""

    fsanet: Teacher
    mesh: MeshTeacher

    def predict(self, image_rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        f = self.fsanet.predict(image_rgb, landmarks)
        m = self.mesh.predict(image_rgb, landmarks) if abs(f[0]) < AVERAGE_BELOW_YAW else None
        return f if m is None else average_pose(f, m)

    def provenance(self) -> dict:
        return {"kind": "fsanet+mediapipe", "teachers": [self.fsanet.provenance(), self.mesh.provenance()],
                "rule": f"rotation average where both read the face and FSA-Net |yaw| < {AVERAGE_BELOW_YAW:g}, "
                        "FSA-Net alone otherwise"}

    def close(self) -> None:
        self.mesh.close()


def is_mesh_folder(folder: Path) -> bool:
    from mnn_edge.data.profile.landmarker import TASK_FILE

    return (Path(folder) / TASK_FILE).is_file()


def open_teachers(folders: list[Path], margin: float | None = None):
    """One teacher folder (either kind) or one of each (combined); the result has ``predict``,
    ``provenance`` and ``close``."""
    if not 1 <= len(folders) <= 2:
        raise MnnEdgeError(f"give one or two --teacher folders, got {len(folders)}")
    mesh_dirs = [f for f in folders if is_mesh_folder(f)]
    fsa_dirs = [f for f in folders if not is_mesh_folder(f)]
    if len(mesh_dirs) > 1 or len(fsa_dirs) > 1:
        raise MnnEdgeError("two --teacher folders must be one FSA-Net folder and one Face Landmarker folder")
    fsa = None
    if fsa_dirs:
        fsa = load_teacher(fsa_dirs[0]) if margin is None else load_teacher(fsa_dirs[0], margin=margin)
    mesh = MeshTeacher(mesh_dirs[0]) if mesh_dirs else None
    if fsa is not None and mesh is not None:
        return TeacherPair(fsa, mesh)
    return fsa if fsa is not None else mesh
