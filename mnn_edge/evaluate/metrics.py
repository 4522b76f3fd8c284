"""Accuracy of any artifact on any dataset: pose MAE, landmark NME, visibility accuracy.

Every face goes through the standard crop (:func:`mnn_edge.data.crop.crop_sample`, no
augmentation) and the artifact's own preprocessing (:func:`mnn_edge.preprocess.to_input`). Angles
are compared directly (the axis-aligned crop does not rotate the head); predicted landmarks are
mapped back to image pixels with ``CropItem.crop_to_image`` and compared with the dataset's own
landmarks there, so the numbers do not depend on the crop rule.

- ``mae_*``: mean absolute angle error in degrees, each difference wrapped into [-180, 180].
- ``nme``: mean point error over the face's annotated landmarks divided by the inter-ocular distance
  (outer eye corners, points 36 and 45 of the 68-point scheme; NaN for other schemes).
- ``nme_box``: the same divided by sqrt(w h) of the ground-truth landmark box.
- ``vis_acc``: fraction of labelled landmarks whose visibility (probability > 0.5) is right.
- ``pred_abs_*``: mean |predicted angle|; on frontal faces, how far the estimate leans off zero.
- ``pose_reference``: ``true labels`` (the dataset's own), ``teacher labels`` (``mnn-data
  pseudo-label``: then the MAE is agreement with the teacher, not accuracy) or ``mixed``.
Metrics the model or the data cannot give are NaN (``None`` in JSON).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnn_edge.artifact import scheme_for
from mnn_edge.data.sample import CropItem, FaceSample
from mnn_edge.errors import MnnEdgeError
from mnn_edge.preprocess import to_input
from mnn_edge.runtime.base import Runner
from mnn_edge.runtime.chunks import infer_in_chunks

if TYPE_CHECKING:  # augment (and cv2 with it) loads only when a crop is made
    from mnn_edge.data.augment import AugmentDraw

# Outer eye corners per landmark count (the inter-ocular normaliser of 300W / AFLW2000-3D).


@dataclass
class EvalResult:
    n: int  # faces evaluated
    mae_yaw: float
    mae_pitch: float
    mae_roll: float
    mae: float  # mean of the three
    nme: float  # inter-ocular, fraction
    nme_box: float  # by sqrt(w h) of the landmark box, fraction
    vis_acc: float  # fraction
    n_pose: int = 0  # faces with angle labels
    n_landmarks: int = 0  # faces with landmarks (and a landmark output)
    n_vis: int = 0  # labelled visibility entries
    # Mean |predicted angle| (yaw, pitch, roll): on frontal faces the bias of the estimate.
    pred_abs_yaw: float = math.nan
    pred_abs_pitch: float = math.nan
    pred_abs_roll: float = math.nan
    pose_reference: str = ""  # what the angle errors are against: "true labels", "teacher labels", "mixed"
    artifact: str = ""
    backend: str = ""
    data: str = ""
    format: str = ""
    extra: dict = field(default_factory=dict)
    faces: list[dict] = field(default_factory=list, repr=False)  # per face, as _Accumulator.add records it

    def to_dict(self) -> dict:
        """The summary (without the per-face records), NaN as None."""
        d = asdict(self)
        d.pop("faces")
        return {k: finite_or_none(v) for k, v in d.items()}


def finite_or_none(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


def angle_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """|pred - gt| per angle in degrees, the difference wrapped into [-180, 180]."""
    d = (np.asarray(pred, np.float64) - np.asarray(gt, np.float64) + 180.0) % 360.0 - 180.0
    return np.abs(d)


def landmark_box_size(landmarks: np.ndarray) -> float:
    pts = landmarks[np.all(np.isfinite(landmarks), axis=1)]
    w, h = np.maximum(pts.max(0) - pts.min(0), 1.0)
    return float(np.sqrt(w * h))


def face_nme(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """(inter-ocular NME, box NME) of one face, both in image px ratios; NaN where undefined."""
    ok = np.all(np.isfinite(gt), axis=1)
    if not ok.any():
        return math.nan, math.nan
    err = float(np.linalg.norm(pred[ok] - gt[ok], axis=1).mean())
    corners = scheme_for(len(gt)).outer_eye_corners
    iod = math.nan
    if corners is not None and ok[list(corners)].all():
        iod = float(np.linalg.norm(gt[corners[0]] - gt[corners[1]]))
    return (err / iod if iod > 1e-6 else math.nan), err / landmark_box_size(gt)


def ground_truth_angles(sample: FaceSample) -> np.ndarray | None:
    if sample.angles is not None:
        return np.asarray(sample.angles, np.float64)
    if sample.pose is not None:
        return np.asarray(sample.pose[:3], np.float64)
    return None


FRONTAL_DEG = 10.0  # the card's "frontal" subset: every label angle within this many degrees


def frontal_only(samples: list[FaceSample], within_deg: float = FRONTAL_DEG) -> list[FaceSample]:
    """The faces whose label angles all lie within ``within_deg`` of zero (faces without angles drop)."""
    return [s for s in samples if (a := ground_truth_angles(s)) is not None and np.all(np.abs(a) <= within_deg)]


class _Accumulator:
    def __init__(self):
        self.ang: list[np.ndarray] = []
        self.nme: list[float] = []
        self.nme_box: list[float] = []
        self.vis_right = 0
        self.vis_total = 0
        self.n = 0
        self.faces: list[dict] = []
        self.pred_abs: list[np.ndarray] = []
        self.origins: set[str] = set()

    def add(self, sample: FaceSample, crop: CropItem, out: dict[str, np.ndarray]) -> None:
        self.n += 1
        record: dict = {"image": str(sample.image_path)}
        gt = ground_truth_angles(sample)
        if "pose" in out:
            record["pred_angles"] = [round(float(v), 3) for v in out["pose"][:3]]
            self.pred_abs.append(np.abs(np.asarray(out["pose"][:3], np.float64)))
        if gt is not None and "pose" in out:
            self.origins.add(sample.pose_origin)
            record["pose_origin"] = sample.pose_origin
            self.ang.append(angle_errors(out["pose"][:3], gt))
            record["gt_angles"] = [round(float(v), 3) for v in gt]
            record["abs_error"] = [round(float(v), 3) for v in self.ang[-1]]
        if sample.landmarks is not None and "landmarks" in out and len(out["landmarks"]) == len(sample.landmarks):
            ones = np.ones((len(out["landmarks"]), 1))
            in_image = np.hstack([out["landmarks"], ones]) @ np.asarray(crop.crop_to_image).T
            a, b = face_nme(in_image, np.asarray(sample.landmarks, np.float64))
            if math.isfinite(b):
                self.nme.append(a)
                self.nme_box.append(b)
                record.update(nme=finite_or_none(round(float(a), 5)), nme_box=round(float(b), 5))
        if sample.visibility is not None and "visibility" in out:
            gt_v = np.asarray(sample.visibility, np.float64)
            pred_v = np.asarray(out["visibility"], np.float64)
            if len(gt_v) == len(pred_v):
                ok = np.isfinite(gt_v)
                right = int(((pred_v[ok] > 0.5) == (gt_v[ok] > 0.5)).sum())
                self.vis_right += right
                self.vis_total += int(ok.sum())
                record["vis_right"], record["vis_labelled"] = right, int(ok.sum())
        self.faces.append(record)

    def result(self) -> EvalResult:
        mae = np.mean(self.ang, axis=0) if self.ang else np.full(3, math.nan)
        nme = [v for v in self.nme if math.isfinite(v)]
        pred_abs = np.mean(self.pred_abs, axis=0) if self.pred_abs else np.full(3, math.nan)
        reference = {frozenset(): "", frozenset({"label"}): "true labels",
                     frozenset({"teacher"}): "teacher labels"}.get(frozenset(self.origins), "mixed")
        return EvalResult(
            n=self.n, mae_yaw=float(mae[0]), mae_pitch=float(mae[1]), mae_roll=float(mae[2]),
            mae=float(np.mean(mae)), nme=float(np.mean(nme)) if nme else math.nan,
            nme_box=float(np.mean(self.nme_box)) if self.nme_box else math.nan,
            vis_acc=self.vis_right / self.vis_total if self.vis_total else math.nan,
            n_pose=len(self.ang), n_landmarks=len(self.nme_box), n_vis=self.vis_total,
            pred_abs_yaw=float(pred_abs[0]), pred_abs_pitch=float(pred_abs[1]), pred_abs_roll=float(pred_abs[2]),
            pose_reference=reference, faces=self.faces)


def crop_and_infer(runner: Runner, samples: list[FaceSample], batch: int = 8, augment: AugmentDraw | None = None
                   ) -> Iterator[tuple[list[FaceSample], list[CropItem], dict[str, np.ndarray]]]:
    """``batch`` faces at a time: the samples, their standard crops (with the fixed ``augment`` drawn
    onto them, labels moved along) and the runner's outputs for those crops. The one loop scoring
    (:func:`evaluate_runner`) and the roll sweep (:mod:`mnn_edge.evaluate.large_pose`) share."""
    from mnn_edge.data.crop import crop_sample

    meta = runner.metadata
    for start in range(0, len(samples), batch):
        chunk = samples[start:start + batch]
        crops = [crop_sample(s, size=meta.input_size, augment=augment) for s in chunk]
        # cropped `batch` faces at a time; the helper fits each call to the engine's profile
        yield chunk, crops, infer_in_chunks(runner, to_input(np.stack([c.image for c in crops]), meta))


def evaluate_runner(runner: Runner, samples: list[FaceSample], batch: int = 8, progress: bool = True) -> EvalResult:
    """Run ``runner`` on the standard crops of ``samples`` and score its outputs (see module doc)."""
    from tqdm import tqdm

    if not samples:
        raise MnnEdgeError("no faces to evaluate")
    if batch < 1:
        raise MnnEdgeError(f"batch must be >= 1, got {batch}")
    acc = _Accumulator()
    with tqdm(total=len(samples), desc="eval", disable=not progress, dynamic_ncols=True) as bar:
        for chunk, crops, outs in crop_and_infer(runner, samples, batch):
            for i, (s, c) in enumerate(zip(chunk, crops)):
                acc.add(s, c, {k: v[i] for k, v in outs.items()})
            bar.update(len(chunk))
    res = acc.result()
    res.artifact, res.backend = str(getattr(runner, "path", "")), runner.backend
    return res


def evaluate_artifact(path: str | Path, samples: list[FaceSample], batch: int = 8, progress: bool = True,
                      device: str = "auto") -> EvalResult:
    """Open ``path`` with :func:`mnn_edge.runtime.open_runner` (.pt, .onnx, .plan) and evaluate it."""
    from mnn_edge.runtime import open_runner

    with open_runner(path, device=device) as runner:
        return evaluate_runner(runner, samples, batch=batch, progress=progress)
