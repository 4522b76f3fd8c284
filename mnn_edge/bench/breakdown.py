"""End-to-end latency on real frames, stage by stage: preprocess / host->device / infer / device->host / postprocess.

Why: deployment engineers keep finding that Python pre-processing, not the network, is the
bottleneck (tensorrtx issue 1208: preprocessing at 8x the inference time). So ``mnn-bench
--breakdown --frames DIR`` times the whole path a frame takes, with the same timing core and the
same interleaving as the plain benchmark.

Stages, per batch (:data:`mnn_edge.frame.BREAKDOWN_STAGES`: the network's part of ``mnn-run``'s
frame, through ``mnn-run``'s own functions):
- preprocess: square crop of each decoded BGR frame and the network input
  (:func:`mnn_edge.frame.network_input`). Frames are decoded once up front, as a camera hands
  over decoded frames; JPEG decoding is not timed.
- h2d / infer / d2h: a runner that can separate them provides ``infer_staged(batch) -> (outputs,
  {"h2d": ms, "infer": ms, "d2h": ms})`` (the TensorRT runner, timing its copies and the
  execution separately). ONNX Runtime and PyTorch on the CPU copy nothing, and on CUDA their
  copies happen inside one ``run()`` call: for them h2d and d2h are reported as null (folded into
  infer) and the record's note says so.
- postprocess: pose, landmarks and visibility mapped from crop pixels back to the frame
  (:func:`mnn_edge.frame.to_image`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from mnn_edge.bench.schema import Breakdown
from mnn_edge.bench.timing import StageTimer, summarize
from mnn_edge.errors import MnnEdgeError
from mnn_edge.frame import BREAKDOWN_STAGES, INFER_SPLIT, network_input, to_image
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
        t = self.timer
        with t.stage("preprocess"):
            x, maps = network_input([(self._frames[i], *self._boxes[i]) for i in idx], self.meta)
        if self._staged is not None:
            outputs, stages_ms = self._staged(x)
            for name in INFER_SPLIT:
                t.add(name, stages_ms[name])
        else:
            with t.stage("infer"):
                outputs = self.runner.infer(x)
        with t.stage("postprocess"):
            to_image(outputs, maps, self.meta)
        return outputs

    def breakdown(self, skip: int = 0) -> Breakdown:
        """Stage statistics, leaving out the first ``skip`` calls of each stage (the warm-up)."""
        stages: dict = {}
        for name in BREAKDOWN_STAGES:
            s = self.timer.samples_ms.get(name, [])[skip:]
            stages[name] = summarize(s) if s else None
        return Breakdown(stages, STAGED_NOTE if self._staged is not None else FOLDED_NOTE)

