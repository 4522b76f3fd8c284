"""Which square crops to run the network on, frame after frame.

The detector is the expensive part on an edge device, so it runs only when needed: on the first
frame, every ``redetect_every`` frames, and whenever a track is lost. In between, each face's
crop is carried from the previous frame to this one by the image itself: median flow
(:mod:`mnn_edge.run.flow`) measures how the pixels under the crop moved and scaled, and the
crop moves with them *before* the network runs, so the crop a frame gets is where the face is on
that frame, not where it was. Both models are tracked alike.

The network's outputs are not used to move crops (measured on bench/tracking.py): the pose
model's (tx, ty) follows a shifted face with a median slope of ~0.6 (the wrong way on some
faces), which drove the old pose-only tracker 20-30 px per frame off a face moving 8 px per frame;
re-framing the full model's crop on its own landmarks by the training crop rule — on every frame,
or once after each detection — framed worse than the detector box carried by the flow (landmark
NME +0.3 to +0.4 points, the crop drifting with each frame's landmark error).

A track is lost — and the detector runs on that very frame, inline — when the flow cannot say
where its pixels went (a cut, an occlusion, a face leaving: too few points come back, or what the
crop holds now does not look like what it held), or its crop becomes implausible (tiny, centre
outside the frame, size jump > 2x). A frame-size change drops every track.

With ``background=True`` (videos and cameras) the periodic re-detection runs on a worker thread
(:mod:`mnn_edge.run.detect_worker`) while the tracks keep being served; its detections are made on
an older frame, so each is carried forward by the flow from that frame to the current one before
it replaces the tracks. ``redetect_every=1`` always detects inline: every frame is detected.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np

from mnn_edge.run.det_crop import crop_from_detection
from mnn_edge.run.detect import Detection, Detector, box_iou
from mnn_edge.run.detect_worker import DetectorWorker
from mnn_edge.run.flow import BoxMotion, boxes_motion, to_gray

# Detections become crops as close to the training crop rule as a detector can get: from the box
# and CenterFace's five keypoints (mnn_edge.run.det_crop, calibrated on real faces).
MIN_CROP_PX = 16.0
MIN_FACE_PX = 40.0  # smaller detections are not tracked: a 256-px crop of them reads no pose


@dataclass(frozen=True)
class TrackerConfig:
    redetect_every: int = 10  # run the detector at least every N frames (1 = every frame, inline)
    max_faces: int = 8  # keep the N highest-scoring detections
    background: bool = False  # periodic re-detection on a worker thread (videos, cameras)
    match_iou: float = 0.3  # a detection within this IoU of a track keeps the track's id
    min_face: float = MIN_FACE_PX  # detector boxes with a shorter longest side are ignored


@dataclass
class Track:
    track_id: int
    center: np.ndarray  # (2,) crop centre, image px
    size: float  # crop side, image px
    score: float  # detector score at the last detection
    detected: bool = True  # this frame's crop is a detection's (not carried on from a previous crop)
    detected_frame: int = 0  # the frame the last detection of this face was made on

    def box(self) -> np.ndarray:
        half = self.size / 2.0
        return np.array([self.center[0] - half, self.center[1] - half, self.center[0] + half, self.center[1] + half])


def _moved(points: np.ndarray, center: np.ndarray, motion: BoxMotion) -> np.ndarray:
    return center + motion.shift + motion.scale * (np.asarray(points, dtype=np.float64) - center)


def _plausible(center: np.ndarray, size: float, prev_size: float, shape: tuple[int, ...]) -> bool:
    h, w = shape[:2]
    if not (np.all(np.isfinite(center)) and np.isfinite(size)) or size < MIN_CROP_PX:
        return False
    if not (0.5 * prev_size <= size <= 2.0 * prev_size):
        return False
    return 0.0 <= center[0] < w and 0.0 <= center[1] < h  # the face centre must stay in the frame


class Tracker:
    def __init__(self, detector: Detector, cfg: TrackerConfig = TrackerConfig()):
        self.detector = detector
        self.cfg = cfg
        self.tracks: list[Track] = []
        self._lost: list[Track] = []  # dropped since the last detection: a re-detected face keeps its id
        self._ids = itertools.count()
        self._since_detect = 0  # frames since the last detection, not counting the current one
        self._need_detect = True
        self.detector_runs = 0  # inline + background
        self.background_runs = 0
        self.ran_inline = False  # the detector ran inside the last crops() call
        self.detect_ms = 0.0  # its time (0 when it did not run)
        self._frame_no = 0  # frames seen, for matching background results to what they saw
        self._last_detect_frame = -1
        self._prev_gray: np.ndarray | None = None
        self._submitted_gray: tuple[int, np.ndarray] | None = None  # the frame the worker is detecting on
        # detecting on every frame (inline) leaves nothing for a worker to do
        background = cfg.background and cfg.redetect_every > 1
        self._worker = DetectorWorker(detector) if background else None

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()

    def reset(self) -> None:
        """Forget all faces (between unrelated images); ids start again from 0."""
        self.tracks = []
        self._lost = []
        self._ids = itertools.count()
        self._need_detect = True
        self._prev_gray = None

    @property
    def _due(self) -> bool:
        return self._since_detect + 1 >= self.cfg.redetect_every

    def frames_since_detection(self, track: Track) -> int:
        """How many frames old the detection behind ``track``'s crop is (0: made on this frame)."""
        return self._frame_no - track.detected_frame

    def crops(self, image: np.ndarray) -> list[Track]:
        """The tracks to run the network on for this frame: carried by the flow, or detected."""
        self._frame_no += 1
        self.ran_inline, self.detect_ms = False, 0.0
        gray = to_gray(image)
        prev, self._prev_gray = self._prev_gray, gray
        if prev is not None and prev.shape != gray.shape:  # a new frame size: nothing carries over
            self._lose_all()
        elif prev is not None and self.tracks and not self._need_detect:
            self._follow(prev, gray, image.shape)
        if self._worker is not None:
            self._take_background_result(gray)
        if self._need_detect or not self.tracks or (self._worker is None and self._due):
            # with no face in view the detector looks on every frame, so a face is picked up at once
            self._detect_inline(image)
            return list(self.tracks)
        self._since_detect += 1
        if self._due and self._worker is not None and self._worker.submit(self._frame_no, image):
            self._submitted_gray = (self._frame_no, gray)
            self.detector_runs += 1
            self.background_runs += 1
        return list(self.tracks)

    def _detect_inline(self, image: np.ndarray) -> None:
        t0 = time.perf_counter()
        dets = self.detector.detect(image)
        self.detect_ms = (time.perf_counter() - t0) * 1000.0
        self.ran_inline = True
        self.detector_runs += 1
        self._last_detect_frame = self._frame_no
        self._assign(dets, self._frame_no)

    def _follow(self, prev: np.ndarray, gray: np.ndarray, shape: tuple[int, ...]) -> None:
        """Move every track with its pixels; one whose pixels cannot be followed is lost."""
        motions = boxes_motion(prev, gray, [(t.center, t.size) for t in self.tracks])
        for t, motion in zip(list(self.tracks), motions):
            t.detected = False
            if motion is None:
                self._lose(t)
                continue
            center, size = t.center + motion.shift, t.size * motion.scale
            if not _plausible(center, size, t.size, shape):
                self._lose(t)
                continue
            t.center, t.size = center, float(size)
        self._drop_duplicates()

    def _lose(self, track: Track) -> None:
        self.tracks = [t for t in self.tracks if t is not track]
        self._lost.append(track)
        self._need_detect = True

    def _lose_all(self) -> None:
        for t in list(self.tracks):
            self._lose(t)
        self._need_detect = True

    def _take_background_result(self, gray: np.ndarray) -> None:
        done = self._worker.poll()
        # a detection made inline after this frame was submitted is newer: the old result is dropped
        if done is None or done[0] <= self._last_detect_frame:
            return
        frame_no, dets = done
        self._last_detect_frame = frame_no
        then = self._submitted_gray[1] if self._submitted_gray and self._submitted_gray[0] == frame_no else None
        carried = self._carry_forward(dets, then, gray)
        if carried is None:  # a face it saw cannot be followed to this frame: the next frame asks again
            self._since_detect = self.cfg.redetect_every
            return
        self._assign(carried, frame_no)

    def _carry_forward(self, dets: list[Detection], then: np.ndarray | None,
                       gray: np.ndarray) -> list[Detection] | None:
        """Detections made on an older frame, moved to where their faces are on this one (None when
        one of them cannot be followed, or that frame is not at hand)."""
        if then is None:
            return None
        crops = [crop_from_detection(d) for d in dets]
        motions = boxes_motion(then, gray, crops)
        if any(m is None for m in motions):
            return None
        out = []
        for det, (center, _), motion in zip(dets, crops, motions):
            # the box and its keypoints move and scale with the pixels about the crop centre
            box = _moved(det.box.reshape(2, 2), center, motion).reshape(4)
            kps = None if det.keypoints is None else _moved(det.keypoints, center, motion)
            out.append(Detection(box, det.score, kps))
        return out

    def _assign(self, detections: list[Detection], frame_no: int) -> None:
        """Detections become the tracks; one that overlaps an old (or just lost) track keeps its id."""
        dets = [d for d in detections if max(d.box[2] - d.box[0], d.box[3] - d.box[1]) >= self.cfg.min_face]
        dets = sorted(dets, key=lambda d: -d.score)[: self.cfg.max_faces]
        old = self.tracks + self._lost
        self._lost = []
        new: list[Track] = []
        for det in dets:
            center, size = crop_from_detection(det)
            track = Track(-1, center, size, det.score, detected=True, detected_frame=frame_no)
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

    def _drop_duplicates(self) -> None:
        """Two tracks drifting onto one face: keep the older one."""
        keep: list[Track] = []
        for t in sorted(self.tracks, key=lambda t: t.track_id):
            if keep and np.max(box_iou(t.box(), np.stack([k.box() for k in keep]))) > 0.6:
                continue
            keep.append(t)
        if len(keep) != len(self.tracks):
            self.tracks = [t for t in self.tracks if any(t is k for k in keep)]
