"""One frame through the network: crops -> preprocess -> infer -> results in image coordinates.

The crop, the network input and the way back to the image are :mod:`mnn_edge.frame`'s, the steps
``mnn-bench --breakdown`` times; the crop size and normalisation come from the artifact's metadata.
Every face in the frame goes through the network in one batch (split only when an engine's
profile caps the batch). Several streams share one runner: :func:`process_frames` runs the faces
of all their frames as one batch, each stream keeping its own tracker and smoother.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from mnn_edge.frame import STAGES, network_input, to_image
from mnn_edge.run.smoothing import TrackSmoother
from mnn_edge.run.track import Track, Tracker
from mnn_edge.runtime import Runner
from mnn_edge.runtime.chunks import infer_in_chunks


@dataclass
class FaceResult:
    track_id: int
    box: np.ndarray  # (4,) the square crop the network saw, image px
    score: float  # detector score of the track's last detection
    detected: bool  # the crop is a detection's (made on this frame, or in the background and carried here)
    detection_age: int  # frames since the detection behind this crop was made (0 = this frame)
    pose: np.ndarray  # (6,) yaw, pitch, roll deg; tx, ty image px; tz scale in image px
    landmarks: np.ndarray | None  # (L, 2) image px (full model only)
    visibility: np.ndarray | None  # (L,) probability in [0, 1] (full model only)


@dataclass
class FrameResult:
    faces: list[FaceResult]
    latency_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    detector_ran: bool = False


@dataclass
class PreparedFrame:
    """One frame after detection and cropping, waiting for its share of a batched inference."""

    result: FrameResult
    tracks: list[Track]
    maps: list[np.ndarray]
    batch: np.ndarray  # (N, C, H, W) network input, N = len(tracks)
    timestamp: float


class FacePipeline:
    def __init__(self, runner: Runner, tracker: Tracker, smoother: TrackSmoother | None = None):
        self.runner = runner
        self.meta = runner.metadata
        self.tracker = tracker
        self.smoother = smoother

    def process(self, image_bgr: np.ndarray, timestamp: float) -> FrameResult:
        """One frame on its own: its faces are one batch."""
        return process_frames([(self, image_bgr, timestamp)])[0]

    def prepare(self, image_bgr: np.ndarray, timestamp: float) -> PreparedFrame:
        """Detect or track, crop and preprocess: everything before the network."""
        result = FrameResult([])
        t0 = time.perf_counter()
        tracks = self.tracker.crops(image_bgr)
        t1 = time.perf_counter()
        result.detector_ran = self.tracker.ran_inline
        result.latency_ms["detect"] = self.tracker.detect_ms
        result.latency_ms["track"] = (t1 - t0) * 1000.0 - self.tracker.detect_ms  # the flow, the carrying
        if not tracks:
            return PreparedFrame(result, [], [], np.empty((0,)), timestamp)
        batch, maps = network_input([(image_bgr, t.center, t.size) for t in tracks], self.meta)
        result.latency_ms["preprocess"] = (time.perf_counter() - t1) * 1000.0
        return PreparedFrame(result, tracks, maps, batch, timestamp)

    def finish(self, frame: PreparedFrame, outputs: dict[str, np.ndarray]) -> FrameResult:
        """Map this frame's rows of the network outputs back to the image."""
        t0 = time.perf_counter()
        frame.result.faces = self._postprocess(frame.tracks, frame.maps, outputs, frame.timestamp)
        frame.result.latency_ms["postprocess"] = (time.perf_counter() - t0) * 1000.0
        return frame.result

    def _postprocess(self, tracks: list[Track], maps: list[np.ndarray], outputs: dict[str, np.ndarray],
                     timestamp: float) -> list[FaceResult]:
        faces = []
        for track, face in zip(tracks, to_image(outputs, maps, self.meta)):
            pose, landmarks = face.pose, face.landmarks
            if self.smoother is not None:
                pose, landmarks = self.smoother.smooth(track.track_id, timestamp, pose, landmarks)
            faces.append(FaceResult(track.track_id, track.box(), track.score, track.detected,
                                    self.tracker.frames_since_detection(track), pose, landmarks, face.visibility))
        if self.smoother is not None:
            self.smoother.keep_only({t.track_id for t in self.tracker.tracks})
        return faces


def process_frames(jobs: list[tuple[FacePipeline, np.ndarray, float]]) -> list[FrameResult]:
    """One frame from each of several streams (each its own pipeline, all on one runner): the faces
    of all the frames go through the network as one batch, so N cameras cost one engine call per
    step instead of N. Results come back in the order of ``jobs``."""
    if not jobs:
        return []
    runner = jobs[0][0].runner
    if any(p.runner is not runner for p, _, _ in jobs):
        raise ValueError("process_frames: all pipelines must share one runner")
    prepared = [p.prepare(image, ts) for p, image, ts in jobs]
    with_faces = [f for f in prepared if f.tracks]
    outputs: dict[str, np.ndarray] = {}
    infer_ms = 0.0
    if with_faces:
        t0 = time.perf_counter()
        outputs = infer_in_chunks(runner, np.concatenate([f.batch for f in with_faces]))
        infer_ms = (time.perf_counter() - t0) * 1000.0
    results, row = [], 0
    for (pipeline, _, _), frame in zip(jobs, prepared):
        n = len(frame.tracks)
        if n:
            frame.result.latency_ms["infer"] = infer_ms  # each frame waited for the whole batch
            pipeline.finish(frame, {k: v[row:row + n] for k, v in outputs.items()})
            row += n
        results.append(frame.result)
    return results
