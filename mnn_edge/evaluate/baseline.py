"""Constant predictors, the yardstick a trained model must beat.

They are :class:`~mnn_edge.runtime.base.Runner` s, so ``evaluate_runner`` scores them exactly as it
scores an artifact (same crops, same metrics):

- ``zero``: zero angles; landmarks of the frontal mean face placed by the standard crop rule.
- ``mean``: the mean crop-space pose, the mean crop-space landmarks and the majority visibility of
  a training set.
"""

from __future__ import annotations

import numpy as np

from mnn_edge.artifact import INPUT_SIZE, ModelKind, ModelMetadata
from mnn_edge.data.sample import FaceSample
from mnn_edge.errors import MnnEdgeError
from mnn_edge.geometry import project
from mnn_edge.meanface import mean_face
from mnn_edge.runtime.base import InputSpec, Runner

BASELINES = ("zero", "mean")
OUTPUTS = ("pose", "pose_proj", "landmarks", "visibility")


class ConstantRunner(Runner):
    """Predicts the same pose, landmarks and visibility for every input."""

    backend = "constant"

    def __init__(self, name: str, pose: np.ndarray, landmarks: np.ndarray, visibility: np.ndarray,
                 size: int = INPUT_SIZE):
        super().__init__(f"<baseline:{name}>")
        self.name = name
        self._values = {"pose": np.asarray(pose, np.float32), "pose_proj": np.asarray(pose, np.float32),
                        "landmarks": np.asarray(landmarks, np.float32),
                        "visibility": np.asarray(visibility, np.float32)}
        self.metadata = ModelMetadata(kind=ModelKind.FULL, num_landmarks=len(landmarks), input_size=size,
                                      outputs=OUTPUTS, extra={"baseline": name})
        self.input_spec = InputSpec("image", (None, 3, size, size), np.dtype(np.float32))

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        n = batch.shape[0]
        return {k: np.repeat(v[None], n, axis=0) for k, v in self._values.items()}

    def describe(self) -> str:
        return f"constant baseline '{self.name}'"


def _label_crop(sample: FaceSample, size: int):
    """Crop labels without decoding the image (a 1x1 stand-in: only the labels are used)."""
    from mnn_edge.data.crop import crop_sample

    return crop_sample(sample, image=np.zeros((1, 1, 3), np.uint8), size=size)


def zero_baseline(size: int = INPUT_SIZE) -> ConstantRunner:
    lms = project(mean_face(), np.array([0.0, 0.0, 0.0, 0.0, 0.0, 100.0]))
    frontal = FaceSample(image_path="<frontal mean face>", landmarks=lms, angles=np.zeros(3))
    crop = _label_crop(frontal, size)
    return ConstantRunner("zero", crop.pose, crop.landmarks, np.ones(len(lms)), size)


def mean_baseline(samples: list[FaceSample], size: int = INPUT_SIZE) -> ConstantRunner:
    """Means over the crops of ``samples`` (a training set): pose, landmarks, majority visibility."""
    n = len(mean_face())  # the baselines speak the mean face's landmark scheme (iBUG 68)
    poses, lms, vis = [], [], []
    for s in samples:
        c = _label_crop(s, size)
        if c.pose is not None:
            poses.append(c.pose)
        if c.landmarks is not None and len(c.landmarks) == n:
            lms.append(c.landmarks)
        if c.visibility is not None and len(c.visibility) == n:
            vis.append(c.visibility)
    if not poses or not lms:
        raise MnnEdgeError(f"the mean baseline needs training faces with pose and {n} landmarks")
    v = (np.nanmean(vis, axis=0) > 0.5).astype(np.float32) if vis else np.ones(n, np.float32)
    return ConstantRunner("mean", np.mean(poses, axis=0), np.nanmean(lms, axis=0), v, size)
