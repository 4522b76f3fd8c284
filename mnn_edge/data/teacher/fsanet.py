"""A head-pose teacher for pseudo-labelling real faces: the FSA-Net ONNX models in a folder.

Training-time only: nothing in export, ``mnn-run`` or the runtimes imports this module.

What the models expect (``docs/DATA.md``, checked by :func:`load_teacher`):
input ``[1, 3, 64, 64]`` float32, the face crop resized to 64x64 in OpenCV's BGR order,
``(pixel - 127.5) / 128``; output ``[1, 3]`` yaw, pitch, roll in degrees in the AFLW2000-3D
convention (the toolkit's, no sign flips). The author's demo averages the models; so do we.

The crop (:data:`TEACHER_MARGIN`) was chosen on the four true-labelled AFLW2000-3D samples with
their 68 landmarks, the only landmarks every pseudo-labelled source has (docs/TRAINING.md has the
table of margins tried).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import sha256_file

TEACHER_SIZE = 64
# Each side of the landmark box grows by this fraction of the box's width / height, then the box
# is clipped to the image (FSA-Net's demo crops a detector box with a margin the same way).
TEACHER_MARGIN = 0.4
EXPECTED = ("a folder of FSA-Net ONNX models (*.onnx, input float32 [1, 3, 64, 64] BGR, "
            "output [1, 3] yaw/pitch/roll in degrees), e.g. models/teachers/fsanet")


@dataclass(frozen=True)
class TeacherModel:
    path: Path
    sha256: str
    session: object  # onnxruntime.InferenceSession
    input_name: str


@dataclass(frozen=True)
class Teacher:
    """The loaded models; :meth:`predict` averages them on one face."""

    folder: Path
    models: tuple[TeacherModel, ...]
    margin: float = TEACHER_MARGIN

    def provenance(self) -> dict:
        """What produced a label: model files with their SHA-256 and the crop rule."""
        return {"kind": "fsanet", "models": [{"file": m.path.name, "sha256": m.sha256} for m in self.models],
                "crop": {"rule": "68-landmark box, each side widened by margin x its size, clipped to the image, "
                                 "resized to 64x64 BGR, (x - 127.5) / 128",
                         "margin": self.margin, "size": TEACHER_SIZE}}

    def close(self) -> None:
        """Nothing to release (its ONNX Runtime sessions go with it); the teachers share one interface."""

    def predict(self, image_rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """(yaw, pitch, roll) in degrees for the face whose landmarks are given."""
        x = teacher_input(image_rgb, landmarks, self.margin)
        outs = [np.asarray(m.session.run(None, {m.input_name: x})[0], dtype=np.float64).reshape(-1)[:3]
                for m in self.models]
        return np.mean(outs, axis=0)


def teacher_box(landmarks: np.ndarray, width: int, height: int, margin: float) -> tuple[int, int, int, int]:
    """Integer (x0, y0, x1, y1), x1/y1 exclusive, of the landmark box widened and clipped."""
    pts = np.asarray(landmarks, dtype=np.float64)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if not len(pts):
        raise MnnEdgeError("the teacher needs landmarks to crop the face")
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    w, h = x1 - x0, y1 - y0
    bx0 = int(np.clip(np.floor(x0 - margin * w), 0, width - 1))
    by0 = int(np.clip(np.floor(y0 - margin * h), 0, height - 1))
    bx1 = int(np.clip(np.ceil(x1 + margin * w) + 1, bx0 + 1, width))
    by1 = int(np.clip(np.ceil(y1 + margin * h) + 1, by0 + 1, height))
    return bx0, by0, bx1, by1


def teacher_input(image_rgb: np.ndarray, landmarks: np.ndarray, margin: float = TEACHER_MARGIN) -> np.ndarray:
    """The (1, 3, 64, 64) float32 input of one face."""
    h, w = image_rgb.shape[:2]
    x0, y0, x1, y1 = teacher_box(landmarks, w, h, margin)
    crop = cv2.resize(image_rgb[y0:y1, x0:x1, ::-1], (TEACHER_SIZE, TEACHER_SIZE), interpolation=cv2.INTER_AREA)
    x = (crop.astype(np.float32) - 127.5) / 128.0
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def _check_model(path: Path, session) -> str:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        raise MnnEdgeError(f"teacher model {path} has {len(inputs)} inputs / {len(outputs)} outputs; "
                           f"expected {EXPECTED}")
    shape = list(inputs[0].shape)
    if inputs[0].type != "tensor(float)" or len(shape) != 4 or shape[1:] != [3, TEACHER_SIZE, TEACHER_SIZE]:
        raise MnnEdgeError(f"teacher model {path} takes {inputs[0].type} {shape}; expected {EXPECTED}")
    out = list(outputs[0].shape)
    if len(out) != 2 or out[-1] != 3:
        raise MnnEdgeError(f"teacher model {path} returns {out}; expected {EXPECTED}")
    return inputs[0].name


def load_teacher(folder: str | Path, margin: float = TEACHER_MARGIN, threads: int = 1) -> Teacher:
    """Every ``*.onnx`` in ``folder``, checked against the FSA-Net input/output contract."""
    import onnxruntime as ort

    folder = Path(folder)
    if folder.is_file():
        raise MnnEdgeError(f"--teacher {folder} is a file: give the folder that holds the teacher's .onnx files "
                           f"({EXPECTED})")
    if not folder.is_dir():
        from mnn_edge.data.fetch import fetch_hint

        raise MnnEdgeError(f"teacher folder {folder} does not exist; expected {EXPECTED}{fetch_hint(folder)}")
    paths = sorted(folder.glob("*.onnx"))
    if not paths:
        raise MnnEdgeError(f"no .onnx file in teacher folder {folder}; expected {EXPECTED}")
    if not 0.0 <= margin <= 2.0:
        raise MnnEdgeError(f"teacher crop margin must be in [0, 2], got {margin}")
    from mnn_edge.runtime.onnxruntime_backend import session_options

    opts = session_options(threads)
    models = []
    for path in paths:
        try:
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises several types for a bad file
            raise MnnEdgeError(f"teacher model {path} is not a loadable ONNX model ({type(e).__name__}); "
                               f"expected {EXPECTED}") from e
        models.append(TeacherModel(path=path, sha256=sha256_file(path), session=session,
                                   input_name=_check_model(path, session)))
    return Teacher(folder=folder, models=tuple(models), margin=margin)
