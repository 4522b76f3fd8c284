"""Frame sources for mnn-run: a camera, a video file, or a folder/glob of images.

Each source yields one :class:`Frame` at a time (a generator, never a queue), so the main loop
holds a bounded number of frames whatever the input length. Images come out as 3-channel BGR
uint8 (OpenCV's order) whatever the file held: grey, alpha and 16-bit files are converted here
so nothing downstream has to care.
"""

from __future__ import annotations

import glob
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mnn_edge.errors import MnnEdgeError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


class SourceLost(MnnEdgeError):
    """The camera stopped delivering frames and did not come back after the retries."""


@dataclass
class Frame:
    index: int  # 0-based position in the stream (skipped unreadable images do not count)
    timestamp: float  # seconds: from the video's clock, the camera's wall clock, or index / fps
    image: np.ndarray  # (H, W, 3) uint8 BGR
    name: str = ""  # image file name, or "" for video/camera frames


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any decoded image (grey, BGR, BGRA; 8 or 16 bit) -> (H, W, 3) uint8 BGR."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def list_images(spec: str) -> list[Path]:
    """A folder (its image files, sorted) or a glob pattern; raises when nothing matches."""
    p = Path(spec)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
    elif p.is_file():
        files = [p]
    else:
        files = sorted(Path(f) for f in glob.glob(spec) if Path(f).suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MnnEdgeError(f"no images found at {spec} (expected a folder, a file or a glob of "
                           f"{', '.join(IMAGE_SUFFIXES)})")
    return files


class ImageSource:
    """Images from a folder or glob; unreadable files are skipped with a warning (counted)."""

    fps: float | None = None
    is_live = False

    def __init__(self, spec: str):
        self.files = list_images(spec)
        self.total: int | None = len(self.files)
        self.skipped: list[str] = []
        self.description = f"{len(self.files)} image(s) from {spec}"

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        for path in self.files:
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None or image.size == 0:
                self.skipped.append(path.name)
                print(f"warning: cannot read image {path}, skipped", file=sys.stderr)
                continue
            yield Frame(index, float(index), to_bgr8(image), path.name)
            index += 1

    def close(self) -> None:
        pass


class VideoSource:
    """Frames of a video file; an unreadable file fails at once with a clear message."""

    is_live = False

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            raise MnnEdgeError(f"--video {self.path} is a folder; for a folder of images use --images")
        if not self.path.is_file():
            raise MnnEdgeError(f"video not found: {self.path}")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise MnnEdgeError(f"cannot open video {self.path}: not a video OpenCV can decode")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.0 < fps < 1000.0 else None
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.total: int | None = count if count > 0 else None  # containers may not know; only for the bar
        self.description = f"video {self.path.name}" + (f" at {self.fps:.1f} fps" if self.fps else "")

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while True:
            ok, image = self._cap.read()
            if not ok or image is None:
                if index == 0:
                    raise MnnEdgeError(f"cannot read any frame from video {self.path}")
                # the container's count can be off by a frame for some codecs; more than that is a
                # damaged or truncated file (a video corrupt mid-file read 292 of 300 frames silently)
                if self.total is not None and index < self.total - 2:
                    print(f"warning: video {self.path} ended after {index} of the {self.total} frames its "
                          "header announces (truncated or damaged?)", file=sys.stderr)
                return
            ts = index / self.fps if self.fps else float(index)
            yield Frame(index, ts, to_bgr8(image))
            index += 1

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()


class CameraSource:
    """A live camera. A failed open or a failed read is retried ``retries`` times (re-opening the
    device, ``retry_wait`` s apart) before the run stops with :class:`SourceLost`.

    USB cameras drop out for a moment when the bus resets or the cable is nudged; a few re-opens
    ride that out, while a camera that is really gone ends the run with what was written kept.
    """

    is_live = True

    def __init__(self, index: int | str, retries: int = 3, retry_wait: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep):
        self.index = index
        self.retries = retries
        self.retry_wait = retry_wait
        self._sleep = sleep
        self._cap: cv2.VideoCapture | None = self._open_with_retries()
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.0 < fps < 1000.0 else None
        self.total: int | None = None
        self.description = f"camera {index}"

    def _open(self) -> cv2.VideoCapture | None:
        # an int is a device index; a string a device path, stream URL or GStreamer pipeline
        # (a Jetson CSI camera: "nvarguscamerasrc ! ... ! appsink")
        cap = cv2.VideoCapture(self.index)
        if cap is not None and cap.isOpened():
            # keep only the newest frame: a slow model must not fall further and further behind
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            return cap
        if cap is not None:
            cap.release()
        return None

    def _open_with_retries(self) -> cv2.VideoCapture:
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.retry_wait)
            cap = self._open()
            if cap is not None:
                return cap
            print(f"warning: camera {self.index}: open attempt {attempt + 1} of {self.retries + 1} failed",
                  file=sys.stderr)
        n = self.retries + 1
        raise MnnEdgeError(f"camera {self.index} did not open after {n} attempt{'s' if n != 1 else ''} "
                           "(is it connected, and not in use by another program?)")

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        failures = 0  # consecutive failed reads; a good frame resets it
        t0 = time.monotonic()
        while True:
            ok, image = self._cap.read() if self._cap is not None else (False, None)
            if ok and image is not None:
                failures = 0
                yield Frame(index, time.monotonic() - t0, to_bgr8(image))
                index += 1
                continue
            failures += 1
            if failures > self.retries:
                raise SourceLost(f"camera {self.index} stopped delivering frames at frame {index} and did not "
                                 f"come back after {self.retries} retries; outputs written so far are kept")
            print(f"warning: camera {self.index}: no frame at frame {index}, re-opening "
                  f"(retry {failures} of {self.retries})", file=sys.stderr)
            if self._cap is not None:
                self._cap.release()
            self._sleep(self.retry_wait)
            self._cap = self._open()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
