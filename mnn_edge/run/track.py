"""Which square crops to run the network on, frame after frame.

The detector is the expensive part on an edge device, so it runs only when needed: on the first
frame, every ``redetect_every`` frames, and whenever a track is lost. In between, each face's
next crop comes from the network's own output on the previous frame:

- full model: the bounding box of the 68 predicted landmarks (the same rule the training crops
  use), so the crop follows the face as it moves, turns and scales;
- pose-only model (no landmarks): a light box tracker driven by the pose translation — the crop
  moves with the predicted (tx, ty) and scales with tz, relative to their values just after the
  last detection. The full model falls back to it when its landmarks are implausible.

A track is dropped (and the detector runs on the next frame) when its next crop is implausible:
tiny, mostly outside the frame, or jumping in size by more than 2x between frames.

With ``background=True`` (videos and cameras) the periodic re-detection runs on a worker thread
(:mod:`mnn_edge.run.detect_worker`) while the tracks keep being served; its detections replace the
tracks when they are ready, a few frames later. Only a frame with no track to serve (the first,
or after a loss) waits for the detector.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from mnn_edge.artifact import ModelKind
from mnn_edge.data.crop import MARGIN, UP_SHIFT
from mnn_edge.run.detect import Detection, Detector, box_iou
from mnn_edge.run.detect_worker import DetectorWorker

# The training crop rule (mnn_edge.data.crop): side = MARGIN x the landmark box's longest side,
# centre UP_SHIFT of its height above the box centre. Tracking crops follow the same rule so the
# network sees faces framed as it learnt them.
# From a CenterFace box (taller than the landmark box: it includes the forehead) to that crop,
# measured on the 4 AFLW2000-3D samples in shared/data and 11 synthetic faces (side ratio 1.20-1.50,
# median 1.38 synthetic / 1.20 real; centre shift +0.00..0.07 of the side, downwards).
DETECTOR_CROP_SCALE = 1.3
DETECTOR_CROP_SHIFT_Y = 0.03
MIN_CROP_PX = 16.0


@dataclass(frozen=True)
class TrackerConfig:
    redetect_every: int = 10  # run the detector at least every N frames (1 = every frame)
    max_faces: int = 8  # keep the N highest-scoring detections
    background: bool = False  # periodic re-detection on a worker thread (videos, cameras)
    match_iou: float = 0.3  # a detection within this IoU of a track keeps the track's id
    detector_crop_scale: float = DETECTOR_CROP_SCALE  # crop side / detector box's longest side


@dataclass
class Track:
    track_id: int
    center: np.ndarray  # (2,) crop centre, image px
    size: float  # crop side, image px
    score: float  # detector score at the last detection
    detected: bool = True  # this frame's crop came from the detector
    # pose-only tracking: crop centre minus pose (tx, ty), and crop size / tz, after a detection
    anchor_offset: np.ndarray | None = None
    anchor_ratio: float | None = None

    def box(self) -> np.ndarray:
        half = self.size / 2.0
        return np.array([self.center[0] - half, self.center[1] - half, self.center[0] + half, self.center[1] + half])


def crop_from_landmarks(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """Square crop (centre, side) around (L, 2) landmarks, by the training crop rule."""
    pts = np.asarray(landmarks, dtype=np.float64)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) == 0:
        return np.array([np.nan, np.nan]), float("nan")
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    center = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0 - UP_SHIFT * (y1 - y0)])
    return center, float(MARGIN * max(x1 - x0, y1 - y0))


def crop_from_detection(det: Detection, scale: float = DETECTOR_CROP_SCALE) -> tuple[np.ndarray, float]:
    """Square crop (centre, side) for a detector box (see DETECTOR_CROP_SCALE)."""
    x0, y0, x1, y1 = det.box
    side = max(x1 - x0, y1 - y0)
    center = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0 + DETECTOR_CROP_SHIFT_Y * side])
    return center, float(side * scale)


def _plausible(center: np.ndarray, size: float, prev_size: float, shape: tuple[int, ...]) -> bool:
    h, w = shape[:2]
    if not (np.all(np.isfinite(center)) and np.isfinite(size)) or size < MIN_CROP_PX:
        return False
    if not (0.5 * prev_size <= size <= 2.0 * prev_size):
        return False
    return 0.0 <= center[0] < w and 0.0 <= center[1] < h  # the face centre must stay in the frame


class Tracker:
    def __init__(self, detector: Detector, kind: ModelKind, cfg: TrackerConfig = TrackerConfig()):
        self.detector = detector
        self.kind = kind
        self.cfg = cfg
        self.tracks: list[Track] = []
        self._lost: list[Track] = []  # dropped since the last detection: a re-detected face keeps its id
        self._ids = itertools.count()
        self._since_detect = 0  # frames since the last detection, not counting the current one
        self._need_detect = True
        self.detector_runs = 0
        self._frame_no = 0  # frames seen, for matching background results to what they saw
        self._last_detect_frame = -1
        self._worker = DetectorWorker(detector) if cfg.background else None

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()

    def reset(self) -> None:
        """Forget all faces (between unrelated images); ids start again from 0."""
        self.tracks = []
        self._lost = []
        self._ids = itertools.count()
        self._need_detect = True

    @property
    def will_detect(self) -> bool:
        """The detector runs inline on the next frame (in the background mode: only with nothing to serve)."""
        # with no face in view the detector looks on every frame, so a face is picked up at once
        if self._need_detect or not self.tracks:
            return True
        return self._worker is None and self._due

    @property
    def _due(self) -> bool:
        return self._since_detect + 1 >= self.cfg.redetect_every

    def crops(self, image: np.ndarray) -> list[Track]:
        """The tracks to run the network on for this frame (the detector runs if due)."""
        self._frame_no += 1
        if self._worker is not None:
            self._take_background_result()
        if self.will_detect:
            self.detector_runs += 1
            self._last_detect_frame = self._frame_no
            self._assign(self.detector.detect(image))
            return list(self.tracks)
        due = self._due
        self._since_detect += 1
        for t in self.tracks:
            t.detected = False
        if due and self._worker is not None and self._worker.submit(self._frame_no, image):
            self.detector_runs += 1
        return list(self.tracks)

    def _take_background_result(self) -> None:
        done = self._worker.poll()
        # a detection made inline after this frame was submitted is newer: the old result is dropped
        if done is not None and done[0] > self._last_detect_frame:
            self._last_detect_frame = done[0]
            self._assign(done[1])

    def _assign(self, detections: list[Detection]) -> None:
        """Detections become the tracks; one that overlaps an old (or just lost) track keeps its id."""
        dets = sorted(detections, key=lambda d: -d.score)[: self.cfg.max_faces]
        old = self.tracks + self._lost
        self._lost = []
        new: list[Track] = []
        for det in dets:
            center, size = crop_from_detection(det, self.cfg.detector_crop_scale)
            track = Track(-1, center, size, det.score)
            if old:
                ious = box_iou(track.box(), np.stack([t.box() for t in old]))
                best = int(np.argmax(ious))
                if ious[best] >= self.cfg.match_iou:
                    track.track_id = old.pop(best).track_id
            if track.track_id < 0:
                track.track_id = next(self._ids)
            new.append(track)
        self.tracks = new
        self._since_detect = 0
        self._need_detect = False

    def update(self, track: Track, pose: np.ndarray, landmarks: np.ndarray | None, shape: tuple[int, ...]) -> None:
        """Move ``track`` to where the network says the face is now; drop it if that is implausible.

        The full model's landmarks come first; when they are implausible (e.g. a model whose
        landmark head is weak collapses them to a point) the pose-driven box is the fallback.
        """
        candidates = []
        if self.kind is ModelKind.FULL and landmarks is not None:
            candidates.append(crop_from_landmarks(landmarks))
        candidates.append(self._pose_box(track, pose))  # also keeps the pose anchor up to date
        for center, size in candidates:
            if _plausible(center, size, track.size, shape):
                track.center, track.size = center, size
                self._drop_duplicates()
                return
        self.tracks = [t for t in self.tracks if t is not track]
        self._lost.append(track)
        self._need_detect = True

    def _pose_box(self, track: Track, pose: np.ndarray) -> tuple[np.ndarray, float]:
        txy, tz = np.asarray(pose[3:5], dtype=np.float64), float(pose[5])
        if track.detected or track.anchor_offset is None:
            # just after a detection: remember how the detector's crop relates to the pose
            track.anchor_offset = track.center - txy
            track.anchor_ratio = track.size / tz if abs(tz) > 1e-6 else None
            return track.center, track.size
        size = track.anchor_ratio * tz if track.anchor_ratio is not None else track.size
        return txy + track.anchor_offset, float(size)

    def _drop_duplicates(self) -> None:
        """Two tracks drifting onto one face: keep the older one."""
        keep: list[Track] = []
        for t in sorted(self.tracks, key=lambda t: t.track_id):
            if keep and np.max(box_iou(t.box(), np.stack([k.box() for k in keep]))) > 0.6:
                continue
            keep.append(t)
        if len(keep) != len(self.tracks):
            self.tracks = [t for t in self.tracks if any(t is k for k in keep)]
