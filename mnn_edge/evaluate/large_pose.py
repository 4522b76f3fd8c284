"""Large-pose measures: pose error by |yaw| and |pitch| bin, and roll on photos turned in-plane.

- :func:`binned_mae` splits :class:`~mnn_edge.evaluate.metrics.EvalResult` per-face records by the
  label's |yaw| (or |pitch|) and averages the angle errors in each bin.
- :func:`roll_sweep` turns each photo in-plane by known angles through the training crop's own exact
  augmentation (:class:`~mnn_edge.data.augment.AugmentDraw`: the label becomes the camera-axis
  rotation composed with the pose) and compares what the model reads with what the label says,
  both relative to the unturned photo, so the model's and the teacher's disagreement on the photo
  itself cancels: ``slope`` is the least-squares gain of read roll change on label roll change
  (1 = follows), ``roll_error`` the mean |read change - label change|, ``induced_yaw`` /
  ``induced_pitch`` the same for the angles that should barely move.
"""

from __future__ import annotations

import math

import numpy as np

from mnn_edge.data.augment import AugmentDraw
from mnn_edge.data.sample import FaceSample
from mnn_edge.errors import MnnEdgeError
from mnn_edge.evaluate.metrics import crop_and_infer
from mnn_edge.runtime.base import Runner

YAW_BINS = ((0.0, 30.0), (30.0, 60.0), (60.0, 180.0))
PITCH_BINS = ((0.0, 20.0), (20.0, 180.0))
ROLL_SWEEP_DEG = (-45.0, -30.0, -20.0, -10.0, 10.0, 20.0, 30.0, 45.0)


def bin_label(lo: float, hi: float) -> str:
    return f"{lo:g}+" if hi >= 180 else f"{lo:g}-{hi:g}"


def binned_mae(faces: list[dict], angle: int, bins: tuple[tuple[float, float], ...]) -> list[dict]:
    """Per bin of |label angle ``angle``| (0 yaw, 1 pitch): faces and MAE of yaw, pitch, roll, mean."""
    rows = []
    scored = [f for f in faces if "abs_error" in f]
    for lo, hi in bins:
        errs = np.array([f["abs_error"] for f in scored if lo <= abs(f["gt_angles"][angle]) < hi], dtype=np.float64)
        mae = errs.mean(axis=0) if len(errs) else np.full(3, math.nan)
        rows.append({"bin": bin_label(lo, hi), "n": len(errs), "mae_yaw": float(mae[0]), "mae_pitch": float(mae[1]),
                     "mae_roll": float(mae[2]), "mae": float(mae.mean())})
    return rows


def _read_angles(runner: Runner, samples: list[FaceSample], draw: AugmentDraw,
                 batch: int) -> tuple[np.ndarray, np.ndarray]:
    """(label angles, read angles), each (N, 3), of every sample cropped with ``draw``."""
    labels, reads = [], []
    for _, crops, out in crop_and_infer(runner, samples, batch, augment=draw):
        labels += [c.pose[:3] for c in crops]
        reads += list(np.asarray(out["pose"])[:, :3])
    return np.asarray(labels, np.float64), np.asarray(reads, np.float64)


def _wrap(d: np.ndarray) -> np.ndarray:
    return (d + 180.0) % 360.0 - 180.0


def roll_sweep(runner: Runner, samples: list[FaceSample], angles=ROLL_SWEEP_DEG, batch: int = 8) -> dict:
    """How the read pose follows in-plane turns of the photos (see the module docstring)."""
    if not samples or any(s.angles is None for s in samples):
        raise MnnEdgeError("the roll sweep needs faces with pose labels")
    label0, read0 = _read_angles(runner, samples, AugmentDraw(), batch)
    rows, all_label, all_read = [], [], []
    for theta in angles:
        label, read = _read_angles(runner, samples, AugmentDraw(rotation_deg=float(theta)), batch)
        d_label, d_read = _wrap(label - label0), _wrap(read - read0)
        miss = np.abs(d_read - d_label).mean(axis=0)
        rows.append({"turn_deg": float(theta), "label_roll_change": float(d_label[:, 2].mean()),
                     "read_roll_change": float(d_read[:, 2].mean()), "roll_error": float(miss[2]),
                     "induced_yaw": float(miss[0]), "induced_pitch": float(miss[1])})
        all_label.append(d_label[:, 2])
        all_read.append(d_read[:, 2])
    x, y = np.concatenate(all_label), np.concatenate(all_read)
    slope = float((x * y).sum() / (x * x).sum())
    return {"faces": len(samples), "slope": slope, "rows": rows,
            "roll_error": float(np.mean([r["roll_error"] for r in rows])),
            "induced_yaw": float(np.mean([r["induced_yaw"] for r in rows])),
            "induced_pitch": float(np.mean([r["induced_pitch"] for r in rows]))}
