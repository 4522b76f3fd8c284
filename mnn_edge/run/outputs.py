"""Where mnn-run's results go: a window, a video file or a folder of images, a JSON-lines file.

Every file output is written under a hidden ``.NAME.partial`` name beside its target and renamed
onto it when the run ends, however it ends (last frame, Ctrl-C, a camera that is gone): what was
processed is kept, complete, and no reader ever sees a half-written file under the final name.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import atomic_path, make_folder

# Bound at import: reading a finished video back must not go through a capture that tests (or a
# camera shim) swap in for cv2.VideoCapture.
_VideoReader = cv2.VideoCapture
VIDEO_CODECS = {".mp4": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
IMAGE_WRITE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def gui_available() -> bool:
    """Whether this OpenCV build has a GUI backend at all (the headless wheels have none)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() not in ("NONE", "NO", "")
    return False


def display_available(env: dict[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether a window can be shown: decided before any cv2.imshow, since the non-headless wheel
    aborts the whole process (not an exception) when it finds no display on Linux."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if platform.startswith("linux") or "bsd" in platform:
        return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
    return True  # Windows and macOS always have a desktop session for a user-run program


def check_writable(path: Path, force: bool, what: str) -> None:
    """Refuse to replace an existing output unless --force (an empty folder is not "existing")."""
    if path.is_dir() and what != "output folder":
        raise MnnEdgeError(f"{what} {path} is a folder; give a file name")
    if path.is_file() and what == "output folder":
        raise MnnEdgeError(f"{what} {path} is a file; give a folder, or a video name ending in "
                           f"{', '.join(VIDEO_CODECS)}")
    exists = path.is_file() or (path.is_dir() and any(path.iterdir()))
    if exists and not force:
        raise MnnEdgeError(f"{what} {path} already exists; pass --force to replace it")


class Window:
    """An OpenCV window; ``show`` returns False when the user pressed q or Esc."""

    def __init__(self, title: str = "mnn-run"):
        self.title = title

    def show(self, image: np.ndarray) -> bool:
        cv2.imshow(self.title, image)
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self) -> None:
        cv2.destroyWindow(self.title)


class VideoSink:
    """Annotated frames into one video file. Frames of another size (a folder of mixed images)
    are letterboxed to the first frame's size, since a video has one frame size."""

    def __init__(self, path: Path, fps: float):
        suffix = path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise MnnEdgeError(f"--output {path}: video suffix must be one of {', '.join(VIDEO_CODECS)}")
        self.path = path
        self.fps = fps
        make_folder(path.parent)
        self._tmp = path.with_name(f".{path.name}.partial{suffix}")  # OpenCV picks the container by suffix
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, image: np.ndarray, index: int = 0, name: str = "") -> None:
        if self._writer is None:
            h, w = image.shape[:2]
            self._size = (w - w % 2, h - h % 2)  # most codecs want even sizes
            if min(self._size) < 2:
                raise MnnEdgeError(f"the first frame is {w}x{h} px, too small for a video; write images to a "
                                   "folder instead (--output DIR)")
            fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, self._size)
            if not self._writer.isOpened():  # OpenCV says no more than that; name the likely cause
                self._writer = None  # nothing to finish at close
                self._tmp.unlink(missing_ok=True)
                if not os.access(self._tmp.parent, os.W_OK):
                    raise MnnEdgeError(f"cannot write video {self.path}: its folder is not writable")
                raise MnnEdgeError(f"OpenCV cannot open a {VIDEO_CODECS[self.path.suffix.lower()]} video writer "
                                   f"for {self.path} (this OpenCV build has no encoder for it); try "
                                   "--output out.avi or a folder")
        self._writer.write(letterbox(image, self._size))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            problem = unreadable_video(self._tmp)
            if problem:  # OpenCV's writer reports nothing per frame: a full disk shows only here
                self._tmp.unlink(missing_ok=True)
                raise MnnEdgeError(f"writing video {self.path} failed ({problem}); nothing was kept under "
                                   "that name (disk full or not writable?)")
            os.replace(self._tmp, self.path)
        self._tmp.unlink(missing_ok=True)


def unreadable_video(path: Path) -> str:
    """Why the finished video at ``path`` cannot be played back ('' when its first frame reads)."""
    try:
        if path.stat().st_size == 0:
            return "the file is empty"
    except OSError as e:
        return f"the file is missing: {e.strerror}"
    cap = _VideoReader(str(path))
    try:
        return "" if cap.isOpened() and cap.read()[0] else "its first frame cannot be read back"
    finally:
        cap.release()


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to fit (w, h) with its aspect kept, on black."""
    w, h = size
    ih, iw = image.shape[:2]
    if (iw, ih) == (w, h):
        return image
    k = min(w / iw, h / ih)
    nw, nh = max(1, int(iw * k)), max(1, int(ih * k))
    out = np.zeros((h, w, 3), dtype=np.uint8)
    x, y = (w - nw) // 2, (h - nh) // 2
    out[y:y + nh, x:x + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    return out


class FolderSink:
    """One annotated image per frame: the source image's name, or frame_000123.jpg for video."""

    def __init__(self, folder: Path):
        self.folder = folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise MnnEdgeError(f"cannot create output folder {folder}: {e.strerror}") from e
        self.frames = 0

    def write(self, image: np.ndarray, index: int, name: str = "") -> None:
        target = self.folder / (name if Path(name).suffix.lower() in IMAGE_WRITE_SUFFIXES
                                else f"{Path(name).stem or f'frame_{index:06d}'}.jpg")
        ok, data = cv2.imencode(target.suffix, image)
        if not ok:
            raise MnnEdgeError(f"OpenCV cannot encode {target.name}")
        with atomic_path(target) as tmp:
            tmp.write_bytes(data.tobytes())
        self.frames += 1

    def close(self) -> None:
        pass


def open_image_or_video_sink(path: Path, fps: float) -> VideoSink | FolderSink:
    """``out.mp4`` (a known video suffix) -> a video; anything else -> a folder of images."""
    return VideoSink(path, fps) if path.suffix.lower() in VIDEO_CODECS else FolderSink(path)


def _clean(value):
    """JSON-safe: numpy -> Python, NaN/inf -> None, floats rounded to what is meaningful."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.floating, float)):
        f = float(value)
        return round(f, 4) if math.isfinite(f) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


class JsonlSink:
    """One JSON object per line, flushed after every frame (a reader can tail it live).

    A write that fails (a full disk, a quota) ends the run with the system's reason; the file is
    cut back to its last complete line and kept under its name, so every record before the
    failure survives and no reader meets half a line.
    """

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = path.with_name(f".{path.name}.partial")
            self._fd: int | None = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            raise MnnEdgeError(f"cannot write {path}: {e.strerror}") from e
        self.records = 0
        self._complete = 0  # bytes on disk that end with a whole line

    def write(self, records: list[dict]) -> None:
        data = "".join(json.dumps(_clean(r), separators=(",", ":")) + "\n" for r in records).encode("utf-8")
        view = memoryview(data)
        try:
            while view:  # os.write may take part of the buffer
                view = view[os.write(self._fd, view):]
        except OSError as e:
            raise MnnEdgeError(f"writing JSON lines to {self.path} failed: {e.strerror}; the {self.records} "
                               "record(s) before it are kept") from e
        self._complete += len(data)
        self.records += len(records)

    def close(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, self._complete)  # drop a partly written line; needs no free space
        finally:
            os.close(fd)
        if self.records == 0:  # no frame was read: an empty file would only block the rerun
            self._tmp.unlink(missing_ok=True)
            return
        os.replace(self._tmp, self.path)
