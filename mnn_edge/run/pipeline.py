"""One frame through the network: crops -> preprocess -> infer -> results in image coordinates.

The crop size and normalisation come from the artifact's metadata (via
:func:`mnn_edge.preprocess.to_input`); every face in the frame goes through the network in one
batch (split only when an engine's profile caps the batch).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from mnn_edge.artifact import ModelKind
from mnn_edge.data.crop import crop_frame_bgr
from mnn_edge.geometry import apply_affine, pose_to_image
from mnn_edge.preprocess import to_input
from mnn_edge.run.smoothing import TrackSmoother
from mnn_edge.run.track import Track, Tracker
from mnn_edge.runtime import Runner

STAGES = ("decode", "detect", "preprocess", "infer", "postprocess", "draw")


@dataclass
class FaceResult:
    track_id: int
    box: np.ndarray  # (4,) the square crop the network saw, image px
    score: float  # detector score of the track's last detection
    detected: bool  # the crop came from the detector on this frame (else from tracking)
    pose: np.ndarray  # (6,) yaw, pitch, roll deg; tx, ty image px; tz scale in image px
    landmarks: np.ndarray | None  # (L, 2) image px (full model only)
    visibility: np.ndarray | None  # (L,) probability in [0, 1] (full model only)


@dataclass
class FrameResult:
    faces: list[FaceResult]
    latency_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    detector_ran: bool = False


def crop_faces(image_bgr: np.ndarray, tracks: list[Track], size: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """(N, size, size, 3) RGB crops and their 2x3 crop->image maps; outside the frame is black."""
    crops = np.empty((len(tracks), size, size, 3), dtype=np.uint8)
    maps = []
    for i, t in enumerate(tracks):
        crops[i], m = crop_frame_bgr(image_bgr, t.center, t.size, size)
        maps.append(m)
    return crops, maps


class FacePipeline:
    def __init__(self, runner: Runner, tracker: Tracker, smoother: TrackSmoother | None = None):
        self.runner = runner
        self.meta = runner.metadata
        self.tracker = tracker
        self.smoother = smoother
        spec = runner.input_spec
        self.max_batch = spec.max_batch or 64
        self.min_batch = spec.min_batch

    def process(self, image_bgr: np.ndarray, timestamp: float) -> FrameResult:
        result = FrameResult([])
        lat = result.latency_ms
        t0 = time.perf_counter()
        result.detector_ran = self.tracker.will_detect
        tracks = self.tracker.crops(image_bgr)
        t1 = time.perf_counter()
        lat["detect"] = (t1 - t0) * 1000.0 if result.detector_ran else 0.0
        if not tracks:
            return result
        crops, maps = crop_faces(image_bgr, tracks, self.meta.input_size)
        batch = to_input(crops, self.meta)
        t2 = time.perf_counter()
        outputs = self._infer(batch)
        t3 = time.perf_counter()
        result.faces = self._postprocess(tracks, maps, outputs, image_bgr.shape, timestamp)
        t4 = time.perf_counter()
        lat["preprocess"] = (t2 - t1) * 1000.0
        lat["infer"] = (t3 - t2) * 1000.0
        lat["postprocess"] = (t4 - t3) * 1000.0
        return result

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        n = len(batch)
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, n, self.max_batch):
            chunk = batch[start:start + self.max_batch]
            pad = max(0, self.min_batch - len(chunk))  # an engine profile may need a minimum batch
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            out = self.runner.infer(chunk)
            parts.append({k: v[: len(chunk) - pad] for k, v in out.items()})
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _postprocess(self, tracks: list[Track], maps: list[np.ndarray], outputs: dict[str, np.ndarray],
                     shape: tuple[int, ...], timestamp: float) -> list[FaceResult]:
        full = self.meta.kind is ModelKind.FULL and "landmarks" in outputs
        faces = []
        for i, (track, c2i) in enumerate(zip(tracks, maps)):
            pose = pose_to_image(np.asarray(outputs["pose"][i], dtype=np.float64), c2i)
            landmarks = apply_affine(c2i, outputs["landmarks"][i]) if full else None
            visibility = np.asarray(outputs["visibility"][i], dtype=np.float64) if "visibility" in outputs else None
            if self.smoother is not None:
                pose, landmarks = self.smoother.smooth(track.track_id, timestamp, pose, landmarks)
            faces.append(FaceResult(track.track_id, track.box(), track.score, track.detected, pose,
                                    landmarks, visibility))
            self.tracker.update(track, pose, landmarks, shape)  # the next frame's crop
        if self.smoother is not None:
            self.smoother.keep_only({t.track_id for t in self.tracker.tracks})
        return faces
