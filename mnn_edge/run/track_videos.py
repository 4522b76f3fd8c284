"""Moving-face videos made from real face photos, with the truth of every frame.

A tracker is judged on what it feeds the network, so its test videos need faces that move as a
user's do and a truth that is exact on every frame. Each clip pastes real photos (faces with 68
annotated landmarks and a pose label) onto a textured background through a similarity map per
frame — sliding, zooming, turning in the image plane — with cuts to the next face. The landmarks
follow the same map, and so does the pose label (an in-plane turn composes with the rotation:
:func:`mnn_edge.data.augment.similarity_pose`), so the truth is exact, not re-estimated.

Clips (640x480 at 25 fps; one face after another unless said):

- ``slide``: 8 px per frame (a head moving at a normal pace), bouncing off the frame's edges; a cut
  to the next face every 25 frames.
- ``zoom``: the face grows and shrinks 0.6x-1.5x while drifting; a cut every 50 frames.
- ``turn``: in-plane rotation up to +-30 degrees while drifting; a cut every 50 frames.
- ``two``: two faces side by side moving up and down in opposite phase (they never cross).
- ``still``: one face held still (for jitter).
- ``leave``: a face slides out of the frame and back in; a blank stretch between.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from mnn_edge.data.augment import similarity_pose
from mnn_edge.data.crop import image_pose, standard_box
from mnn_edge.data.readers import load_image_rgb
from mnn_edge.data.sample import FaceSample
from mnn_edge.errors import MnnEdgeError

WIDTH, HEIGHT, FPS = 640, 480, 25.0
CLIPS = ("slide", "zoom", "turn", "two", "still", "leave")
FACE_SIDE = 120.0  # landmark-box side of a pasted face at scale 1, px
SLIDE_PX = 8.0  # per frame


@dataclass
class TruthFace:
    """One face on one frame: which photo, where its 68 landmarks are, and its pose label."""

    key: int  # index of the photo in the clip's face list: a new key after a cut
    landmarks: np.ndarray  # (68, 2) frame px
    angles: np.ndarray  # (3,) yaw, pitch, roll degrees (the photo's label, composed with the turn)

    def crop(self) -> tuple[np.ndarray, float]:
        """The standard (training-rule) crop of this face: centre, side."""
        centre, side = standard_box(FaceSample(image_path=None, landmarks=self.landmarks))  # type: ignore[arg-type]
        return np.asarray(centre, dtype=np.float64), float(side)


@dataclass
class Clip:
    name: str
    frames: list[np.ndarray] = field(default_factory=list)  # BGR
    truth: list[list[TruthFace]] = field(default_factory=list)  # per frame
    cuts: list[int] = field(default_factory=list)  # frames where a new face appears


@dataclass(frozen=True)
class _Photo:
    image: np.ndarray  # BGR
    mask: np.ndarray  # float32 0..1, feathered at the photo's border
    landmarks: np.ndarray
    pose: np.ndarray  # image-space pose of the photo (angles are the label; NaN when it has none)
    centre: np.ndarray  # landmark-box centre in the photo
    side: float  # landmark-box side


def load_photos(samples: Sequence[FaceSample]) -> list[_Photo]:
    photos = []
    for s in samples:
        if s.landmarks is None:
            raise MnnEdgeError(f"{s.image_path}: a clip needs faces with landmarks")
        rgb = load_image_rgb(s.image_path)
        h, w = rgb.shape[:2]
        mask = np.zeros((h, w), np.float32)
        edge = max(2, int(0.08 * min(h, w)))
        mask[edge:h - edge, edge:w - edge] = 1.0
        mask = cv2.GaussianBlur(mask, (0, 0), edge / 2.0)
        lms = np.asarray(s.landmarks, dtype=np.float64)
        lo, hi = lms.min(0), lms.max(0)
        pose = image_pose(s)
        if pose is None:  # positions only (tracking tests): no pose to score
            pose = np.array([np.nan, np.nan, np.nan, 0.0, 0.0, 1.0])
        photos.append(_Photo(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), mask, lms, pose, (lo + hi) / 2.0,
                             float(max(hi - lo))))
    return photos


def background(rng: np.random.Generator) -> np.ndarray:
    """A textured, face-free backdrop: smooth colour blobs plus fine grain."""
    coarse = rng.uniform(40, 200, size=(6, 8, 3)).astype(np.float32)
    img = cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 6, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _similarity(photo: _Photo, centre: np.ndarray, scale: float, turn_deg: float) -> np.ndarray:
    """2x3 map photo -> frame: the landmark-box centre lands on ``centre``, the box side becomes
    ``scale * FACE_SIDE``, turned ``turn_deg`` counter-clockwise on screen."""
    zoom = scale * FACE_SIDE / photo.side
    a = math.radians(turn_deg)
    lin = zoom * np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    t = centre - lin @ photo.centre
    return np.hstack([lin, t[:, None]])


def _paste(frame: np.ndarray, photo: _Photo, m: np.ndarray) -> None:
    size = (frame.shape[1], frame.shape[0])
    img = cv2.warpAffine(photo.image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(photo.mask, m, size, flags=cv2.INTER_LINEAR, borderValue=0.0)[..., None]
    frame[:] = (alpha * img + (1.0 - alpha) * frame).astype(np.uint8)


def _truth(photo: _Photo, key: int, m: np.ndarray) -> TruthFace:
    lms = photo.landmarks @ m[:, :2].T + m[:, 2]
    return TruthFace(key, lms, similarity_pose(photo.pose, m)[:3])


# A motion: frame index within its segment -> (centre, scale, turn degrees)
Motion = Callable[[int], tuple[np.ndarray, float, float]]


def _bounce(start: float, speed: float, lo: float, hi: float, t: int) -> float:
    """Position after t frames moving at ``speed`` between lo and hi, reflecting at the ends."""
    span = hi - lo
    u = (start - lo + speed * t) % (2 * span)
    return lo + (u if u <= span else 2 * span - u)


def _slide(rng: np.random.Generator) -> Motion:
    x0, y0 = rng.uniform(150, WIDTH - 150), rng.uniform(150, HEIGHT - 150)
    sx = SLIDE_PX * rng.choice([-1, 1])
    sy = 0.4 * SLIDE_PX * rng.choice([-1, 1])
    return lambda t: (np.array([_bounce(x0, sx, 110, WIDTH - 110, t), _bounce(y0, sy, 120, HEIGHT - 120, t)]),
                      1.0, 0.0)


def _zoom(rng: np.random.Generator) -> Motion:
    x0, y0 = rng.uniform(220, WIDTH - 220), rng.uniform(200, HEIGHT - 200)
    phase = rng.uniform(0, 2 * math.pi)
    return lambda t: (np.array([x0 + 2.0 * t, y0 + 30 * math.sin(t / 8.0)]),
                      1.05 + 0.45 * math.sin(phase + 2 * math.pi * t / 40.0), 0.0)


def _turn(rng: np.random.Generator) -> Motion:
    x0, y0 = rng.uniform(200, WIDTH - 200), rng.uniform(180, HEIGHT - 180)
    phase = rng.uniform(0, 2 * math.pi)
    return lambda t: (np.array([x0 + 3.0 * math.sin(t / 6.0) * 10, y0]), 1.0,
                      30.0 * math.sin(phase + 2 * math.pi * t / 50.0))


def _still(rng: np.random.Generator) -> Motion:
    centre = np.array([WIDTH / 2.0, HEIGHT / 2.0])
    return lambda t: (centre, 1.0, 0.0)


def _segments(clip: Clip, photos: list[_Photo], motion: Callable[[np.random.Generator], Motion], seg_len: int,
              n_frames: int, rng: np.random.Generator, bg: np.ndarray) -> None:
    for start in range(0, n_frames, seg_len):
        key = (start // seg_len) % len(photos)
        move = motion(rng)
        clip.cuts.append(start)
        for t in range(min(seg_len, n_frames - start)):
            frame = bg.copy()
            centre, scale, turn = move(t)
            m = _similarity(photos[key], centre, scale, turn)
            _paste(frame, photos[key], m)
            clip.frames.append(frame)
            clip.truth.append([_truth(photos[key], key, m)])


def paste_face(photo: _Photo, bg: np.ndarray, centre: np.ndarray, scale: float,
               turn_deg: float = 0.0) -> tuple[np.ndarray, TruthFace]:
    """One frame: ``photo`` on a copy of ``bg``, its landmark box centred at ``centre`` with a side of
    ``scale * FACE_SIDE``, turned ``turn_deg``; and its truth."""
    frame = bg.copy()
    m = _similarity(photo, np.asarray(centre, dtype=np.float64), scale, turn_deg)
    _paste(frame, photo, m)
    return frame, _truth(photo, 0, m)


def still_face(photo: _Photo, side_px: float, bg: np.ndarray) -> tuple[np.ndarray, TruthFace]:
    """One frame: ``photo`` at the frame's centre with a landmark box of ``side_px``, and its truth."""
    return paste_face(photo, bg, np.array([WIDTH / 2.0, HEIGHT / 2.0]), side_px / FACE_SIDE)


def make_clip(name: str, samples: Sequence[FaceSample], seed: int = 0, frames: int = 200) -> Clip:
    """Clip ``name`` (one of :data:`CLIPS`) of ``frames`` frames from the faces in ``samples``."""
    if name not in CLIPS:
        raise MnnEdgeError(f"unknown clip '{name}'; choose from {', '.join(CLIPS)}")
    photos = load_photos(samples)
    if not photos:
        raise MnnEdgeError("a clip needs at least one face")
    rng = np.random.default_rng(seed)
    bg = background(rng)
    clip = Clip(name)
    if name in ("slide", "zoom", "turn", "still"):
        motion = {"slide": _slide, "zoom": _zoom, "turn": _turn, "still": _still}[name]
        _segments(clip, photos, motion, 25 if name == "slide" else 50 if name != "still" else frames, frames,
                  rng, bg)
    elif name == "two":
        if len(photos) < 2:
            raise MnnEdgeError("clip 'two' needs two faces")
        clip.cuts.append(0)
        for t in range(frames):
            frame, faces = bg.copy(), []
            for k, x in ((0, WIDTH * 0.27), (1, WIDTH * 0.73)):
                y = HEIGHT / 2 + (1 if k == 0 else -1) * 110 * math.sin(2 * math.pi * t / 60.0)
                m = _similarity(photos[k], np.array([x, y]), 0.9, 0.0)
                _paste(frame, photos[k], m)
                faces.append(_truth(photos[k], k, m))
            clip.frames.append(frame)
            clip.truth.append(faces)
    else:  # leave: out on the right, a blank stretch, back in from the left
        clip.cuts.append(0)
        for t in range(frames):
            frame, faces = bg.copy(), []
            x = WIDTH / 2 + SLIDE_PX * t if t < frames // 2 else -200 + SLIDE_PX * (t - frames // 2)
            if -FACE_SIDE < x < WIDTH + FACE_SIDE:
                m = _similarity(photos[0], np.array([x, HEIGHT / 2]), 1.0, 0.0)
                _paste(frame, photos[0], m)
                centre = _truth(photos[0], 0, m).crop()[0]
                if 0 <= centre[0] < WIDTH:  # counted only while its centre is in view
                    faces.append(_truth(photos[0], 0, m))
            clip.frames.append(frame)
            clip.truth.append(faces)
    return clip


def write_clip(clip: Clip, path) -> None:
    """The clip as a lossless-enough MJPG .avi (what every OpenCV build decodes)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise MnnEdgeError(f"OpenCV cannot write {path}")
    try:
        for f in clip.frames:
            writer.write(f)
    finally:
        writer.release()
