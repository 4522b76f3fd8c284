"""Faces/s of multi-stream mnn-run for 1, 2, 4 and 8 streams (issue 15 part 5).

    python bench/multistream.py                      # pose INT8 export made here once, 1/2/4/8 streams
    python bench/multistream.py --engine export/pose.onnx --streams 1,2,4 --frames 40 --rounds 3

Every stream plays the same generated video (``mnn_edge.run.synth_video``: one synthetic face,
256x256, no real person) with the fixed ``--box`` detector, so the numbers are the model and the
loop, not the face detector. Each configuration is one ``mnn-run`` process, as a user runs it;
faces/s comes from its ``--timing-json`` ``"run"`` block (the frame loop's wall time, not process
start-up or model loading). The configurations take turns round by round (1, 2, 4, 8, 1, 2, ...)
so a change in machine load hits them alike; the median over rounds is reported.

Without ``--engine`` the pose model is exported from the starter checkpoint with ``mnn-export
--int8`` (32 synthetic calibration images) into ``--work`` (git-ignored ``bench/results/``).
Writes ``bench/results/multistream.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mnn_edge.bench.machine import machine_record

ROOT = Path(__file__).resolve().parents[1]
BOX = "60,50,200,210"  # the synthetic face of write_video(faces=1) at its first frame


def export_pose_int8(work: Path) -> Path:
    """The starter checkpoint's pose.int8.onnx, exported once into ``work``."""
    engine = work / "export" / "pose.int8.onnx"
    if not engine.is_file():
        cmd = [sys.executable, "-m", "mnn_edge.export.cli", "--out", str(work / "export"), "--int8",
               "--calib-synthetic", "32", "--ranges-dir", str(work / "calibration"), "--force", "--no-progress"]
        print("exporting:", " ".join(cmd[2:]), file=sys.stderr)
        subprocess.run(cmd, check=True)
    return engine


def run_once(engine: Path, video: Path, streams: int) -> dict:
    """One mnn-run process with ``streams`` copies of ``video``: its timing JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        timing = Path(tmp) / "timing.json"
        cmd = [sys.executable, "-m", "mnn_edge.run", "--engine", str(engine), *(["--video", str(video)] * streams),
               "--detector", "box", "--box", BOX, "--no-display", "--quiet", "--timing-json", str(timing)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"mnn-run with {streams} stream(s) failed:\n{proc.stderr}")
        return json.loads(timing.read_text())


def summarise(runs: list[dict], streams: int) -> dict:
    counts = [r["run"] for r in runs]
    return {"streams": streams,
            "faces_per_s": statistics.median(c["faces_per_s"] for c in counts),
            "faces_per_s_rounds": [c["faces_per_s"] for c in counts],
            "stream_fps": statistics.median(statistics.mean(s["fps"] for s in c["streams"]) for c in counts),
            "faces_per_step": statistics.median(c["faces"] / c["steps"] for c in counts),  # the batch size
            "infer_p50_ms": statistics.median(r["infer"]["p50"] for r in runs),
            "step_p50_ms": statistics.median(r["frame"]["p50"] for r in runs),
            "dropped": sum(s["dropped"] for c in counts for s in c["streams"])}


def table(rows: list[dict]) -> str:
    base = rows[0]["faces_per_s"] if rows and rows[0]["streams"] == 1 else None
    lines = ["| streams | faces/s (median) | × 1 stream | per-stream FPS | faces per step (batch) | "
             "inference p50 ms | step p50 ms | rounds faces/s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        gain = f"{r['faces_per_s'] / base:.2f}" if base else "—"
        rounds = ", ".join(f"{v:.1f}" for v in r["faces_per_s_rounds"])
        lines.append(f"| {r['streams']} | {r['faces_per_s']:.1f} | {gain} | {r['stream_fps']:.2f} | "
                     f"{r['faces_per_step']:.2f} | {r['infer_p50_ms']:.1f} | {r['step_p50_ms']:.1f} | {rounds} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", type=Path, default=None,
                   help="the artifact to run (default: a pose INT8 export made once under --work)")
    p.add_argument("--streams", default="1,2,4,8", help="comma-separated stream counts")
    p.add_argument("--frames", type=int, default=24, help="frames per stream (the video's length)")
    p.add_argument("--rounds", type=int, default=2, help="rounds; the configurations take turns within each")
    p.add_argument("--work", type=Path, default=ROOT / "bench/results/multistream", help="scratch folder")
    p.add_argument("--out", type=Path, default=ROOT / "bench/results/multistream.json", help="results JSON")
    args = p.parse_args(argv)
    counts = [int(s) for s in args.streams.split(",")]
    if not counts or min(counts) < 1 or args.frames < 2 or args.rounds < 1:
        raise SystemExit("--streams must be positive counts, --frames >= 2, --rounds >= 1")
    from mnn_edge.run.synth_video import write_video

    args.work.mkdir(parents=True, exist_ok=True)
    engine = args.engine or export_pose_int8(args.work)
    video = args.work / f"face_{args.frames}.avi"
    if not video.is_file():
        write_video(video, frames=args.frames, faces=1)
    load_start = os.getloadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    runs: dict[int, list[dict]] = {n: [] for n in counts}
    for r in range(args.rounds):
        for n in counts:
            runs[n].append(run_once(engine, video, n))
            print(f"round {r + 1}/{args.rounds}: {n} stream(s): {runs[n][-1]['run']['faces_per_s']:.1f} faces/s",
                  file=sys.stderr)
    rows = [summarise(runs[n], n) for n in counts]
    result = {"command": "python " + " ".join([str(Path(sys.argv[0]).relative_to(ROOT)
                                                   if Path(sys.argv[0]).is_absolute() else sys.argv[0]),
                                                  *(argv if argv is not None else sys.argv[1:])]),
              "started": started, "engine": str(engine), "frames_per_stream": args.frames, "rounds": args.rounds,
              "machine": {**machine_record(), "load_average_start": load_start, "load_average_end": os.getloadavg()},
              "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(table(rows))
    print(f"\nload average (1/5/15 min) at start {load_start}, at end {result['machine']['load_average_end']}; "
          f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
