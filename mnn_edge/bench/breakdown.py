"""End-to-end latency on real frames, stage by stage: preprocess / host->device / infer / device->host / postprocess.

Why: deployment engineers keep finding that Python pre-processing, not the network, is the
bottleneck (tensorrtx issue 1208: preprocessing at 8x the inference time). So ``mnn-bench
--breakdown --frames DIR`` times the whole path a frame takes, with the same timing core and the
same interleaving as the plain benchmark.

Stages, per batch:
- preprocess: square crop of each decoded BGR frame with ``mnn-run``'s own crop
  (:func:`mnn_edge.frame.crop_frame_bgr`) + :func:`mnn_edge.preprocess.to_input`. Frames are
  decoded once up front, as a camera hands over decoded frames; JPEG decoding is not timed.
- h2d / infer / d2h: a runner that can separate them provides ``infer_staged(batch) -> (outputs,
  {"h2d": ms, "infer": ms, "d2h": ms})`` (the TensorRT runner, timing its copies and the
  execution separately). ONNX Runtime and PyTorch on the CPU copy nothing, and on CUDA their
  copies happen inside one ``run()`` call: for them h2d and d2h are reported as null (folded into
  infer) and the record's note says so.
- postprocess: landmarks and pose mapped from crop pixels back to the frame
  (:func:`mnn_edge.geometry.apply_affine`, :func:`mnn_edge.geometry.pose_to_image`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from mnn_edge.bench.schema import STAGES, Breakdown
from mnn_edge.bench.timing import StageTimer, summarize
from mnn_edge.errors import MnnEdgeError
from mnn_edge.frame import crop_frame_bgr
from mnn_edge.geometry import apply_affine, pose_to_image
from mnn_edge.preprocess import to_input
from mnn_edge.runtime.base import Runner

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
FOLDED_NOTE = ("h2d/d2h are null: this backend copies inside one run() call (nothing to copy on the CPU), "
               "so they are folded into infer")
STAGED_NOTE = "h2d/infer/d2h measured by the runner itself"


def load_frames(folder: Path, limit: int = 32) -> list[np.ndarray]:
    """Up to ``limit`` images from ``folder`` (sorted by name), decoded to BGR uint8 as a camera delivers."""
    import cv2

    folder = Path(folder)
    if not folder.is_dir():
        raise MnnEdgeError(f"frames folder not found: {folder}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    frames = []
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is not None:
            frames.append(img)
    if not frames:
        raise MnnEdgeError(f"no readable images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return frames


def centre_box(frame: np.ndarray) -> tuple[tuple[float, float], float]:
    """The largest centred square: stands in for a face detector's box, which costs the same to crop."""
    h, w = frame.shape[:2]
    return ((w - 1) / 2.0, (h - 1) / 2.0), float(min(h, w))


class FramePipeline:
    """One artifact's full path for a batch of frames, each stage recorded in a :class:`StageTimer`."""

    def __init__(self, runner: Runner, frames: list[np.ndarray], batch: int, timer: StageTimer | None = None):
        self.runner = runner
        self.meta = runner.metadata
        self.batch = batch
        self.timer = timer or StageTimer()
        self._frames = frames
        self._boxes = [centre_box(f) for f in frames]
        self._next = 0
        self._staged: Callable | None = getattr(runner, "infer_staged", None)

    def __call__(self) -> dict[str, np.ndarray]:
        idx = [(self._next + i) % len(self._frames) for i in range(self.batch)]
        self._next = (self._next + self.batch) % len(self._frames)
        size = self.meta.input_size
        t = self.timer
        with t.stage("preprocess"):
            cropped = [crop_frame_bgr(self._frames[i], *self._boxes[i], size) for i in idx]
            crops = np.stack([c for c, _ in cropped])
            x = to_input(crops, self.meta)
        if self._staged is not None:
            outputs, stages_ms = self._staged(x)
            for name in ("h2d", "infer", "d2h"):
                t.add(name, stages_ms[name])
        else:
            with t.stage("infer"):
                outputs = self.runner.infer(x)
        with t.stage("postprocess"):
            _to_frame(outputs, [m for _, m in cropped])
        return outputs

    def breakdown(self, skip: int = 0) -> Breakdown:
        """Stage statistics, leaving out the first ``skip`` calls of each stage (the warm-up)."""
        stages: dict = {}
        for name in STAGES:
            s = self.timer.samples_ms.get(name, [])[skip:]
            stages[name] = summarize(s) if s else None
        return Breakdown(stages, STAGED_NOTE if self._staged is not None else FOLDED_NOTE)


def _to_frame(outputs: dict[str, np.ndarray], crop_to_image: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """What a caller does with the outputs: landmarks and pose in frame coordinates."""
    result = []
    for k, m in enumerate(crop_to_image):
        item = {"pose": pose_to_image(outputs["pose"][k], m)}
        if "landmarks" in outputs:
            item["landmarks"] = apply_affine(m, outputs["landmarks"][k])
        result.append(item)
    return result
