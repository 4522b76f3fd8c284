"""Multi-stream mnn-run (issue 15 part 1): several sources in one process, the faces of all streams
in one batched inference per step, per-stream trackers and outputs, a failing or stalled stream
that does not hold up the others, camera frames dropped (and counted) when inference is slower.

Most tests use in-memory sources and a fake runner (the point is the loop); one runs the real CLI
on two generated videos with an exported ONNX model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from test_run_cli import _count_frames, _records
from test_run_parts import FakeRunner

from mnn_edge.cli_util import run_cli
from mnn_edge.errors import MnnEdgeError
from mnn_edge.run import app, cli, options
from mnn_edge.run.detect import DetectorKind
from mnn_edge.run.frame_readers import ThreadedReader, gather
from mnn_edge.run.sources import Frame
from mnn_edge.run.synth_video import write_video
from mnn_edge.runtime.base import InputSpec
from mnn_edge.runtime.chunks import infer_in_chunks

BOX = (20.0, 20.0, 100.0, 100.0)


class ListSource:
    """Frames of one grey level, made on demand; ``fail_at`` raises there (a source dying mid-run),
    ``before`` (frame index -> callable) runs before that frame is made (to stall or pace it)."""

    fps, description = 10.0, "fake"

    def __init__(self, n: int, level: int = 90, live: bool = False, fail_at: int | None = None,
                 before: dict | None = None, every_s: float = 0.0):
        self.n, self.level, self.is_live, self.fail_at = n, level, live, fail_at
        self.total = n
        self.before = before or {}
        self.every_s = every_s
        self.closed = False

    def __iter__(self):
        for i in range(self.n):
            if i in self.before:
                self.before[i]()
            if self.every_s:
                time.sleep(self.every_s)
            if i == self.fail_at:
                raise RuntimeError(f"decoder crashed at frame {i}")
            yield Frame(i, i / 10.0, np.full((128, 128, 3), self.level, np.uint8))

    def close(self):
        self.closed = True


class TaggingRunner(FakeRunner):
    """A pose-only fake whose yaw is the crop's mean input value (so each result can be traced to
    its crop), with an optional batch limit and a per-call delay."""

    def __init__(self, max_batch: int | None = None, delay_s: float = 0.0):
        from mnn_edge.artifact import ModelKind

        super().__init__(ModelKind.POSE)
        self.input_spec = InputSpec("image", (None, 3, 256, 256), np.dtype(np.float32), max_batch=max_batch)
        self.delay_s = delay_s

    def _infer(self, batch):
        out = super()._infer(batch)
        out["pose"][:, 0] = batch.reshape(len(batch), -1).mean(axis=1)
        time.sleep(self.delay_s)
        return out


def _run(tmp_path, monkeypatch, sources: dict[str, ListSource], runner: FakeRunner, **kw) -> app.RunSummary:
    monkeypatch.setattr("mnn_edge.runtime.open_runner", lambda *a, **k: runner)
    monkeypatch.setattr(app, "open_source", lambda cfg: sources[cfg.location])
    cfg = app.RunConfig(engine=tmp_path / "fake.onnx",
                        source=tuple(app.SourceConfig(app.SourceKind.VIDEO, name) for name in sources),
                        detector=app.DetectorConfig(kind=DetectorKind.BOX, boxes=(BOX,)),
                        json=tmp_path / "o.jsonl", progress=False, **kw)
    return app.run(cfg)


def test_every_step_runs_the_crops_of_all_streams_as_one_inference(tmp_path, monkeypatch):
    from mnn_edge.run import frame_inference as pipeline

    steps: list[int] = []
    real = pipeline.process_frames

    def spy(jobs):
        steps.append(len(jobs))
        return real(jobs)

    monkeypatch.setattr(app, "process_frames", spy)
    runner = TaggingRunner(delay_s=0.02)  # slower than the readers: their buffers are full each step
    sources = {"a": ListSource(6, 50), "b": ListSource(6, 100), "c": ListSource(4, 150)}
    summary = _run(tmp_path, monkeypatch, sources, runner)
    assert [s.frames for s in summary.streams] == [6, 6, 4] and summary.faces == 16
    assert runner.batches == [n for n in steps if n]  # one inference per step, all its frames' faces
    assert max(runner.batches) == 3 and sum(runner.batches) == 16
    recs = _records(tmp_path / "o.jsonl")
    for k, n in enumerate((6, 6, 4)):
        mine = [r for r in recs if r["stream"] == k]
        assert [r["frame"] for r in mine] == list(range(n))  # every frame of each file stream, in order
        assert len({r["yaw"] for r in mine}) == 1  # each stream's results came from its own crops
    yaws = [next(r["yaw"] for r in recs if r["stream"] == k) for k in range(3)]
    assert yaws[0] < yaws[1] < yaws[2]  # darker frames, smaller tag: results went back to their stream
    assert all(s.closed for s in sources.values())


def test_a_batch_limit_of_one_splits_the_batch_instead_of_refusing(tmp_path, monkeypatch):
    runner = TaggingRunner(max_batch=1)
    summary = _run(tmp_path, monkeypatch, {"a": ListSource(3, 50), "b": ListSource(3, 150)}, runner)
    assert summary.faces == 6 and runner.batches == [1] * 6
    recs = _records(tmp_path / "o.jsonl")
    assert len({r["yaw"] for r in recs if r["stream"] == 0} | {r["yaw"] for r in recs if r["stream"] == 1}) == 2


def test_chunks_respect_the_profile_and_come_back_in_order():
    runner = TaggingRunner(max_batch=2)
    runner.input_spec = InputSpec("image", (None, 3, 256, 256), np.dtype(np.float32), min_batch=2, max_batch=2)
    batch = np.stack([np.full((3, 256, 256), v, np.float32) for v in (1, 2, 3, 4, 5)])
    out = infer_in_chunks(runner, batch)
    assert runner.batches == [2, 2, 2]  # the last single crop padded up to the profile's minimum
    np.testing.assert_allclose(out["pose"][:, 0], [1, 2, 3, 4, 5])


def test_a_stream_that_fails_mid_run_ends_while_the_others_complete(tmp_path, monkeypatch, capsys):
    runner = TaggingRunner()
    sources = {"good": ListSource(5, 50), "bad": ListSource(5, 150, fail_at=2)}
    monkeypatch.setattr("mnn_edge.runtime.open_runner", lambda *a, **k: runner)
    monkeypatch.setattr(app, "open_source", lambda cfg: sources[Path(cfg.location).name])
    out, js = tmp_path / "out.avi", tmp_path / "o.jsonl"
    args = ["--engine", "fake.onnx", "--video", "good", "--video", "bad", "--box", ",".join(map(str, map(int, BOX))),
            "--no-display", "--quiet", "--output", str(out), "--json", str(js)]
    assert run_cli(cli.main, args) == 1  # a failed stream fails the run; what it and the others did is kept
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert errors == ["error: stream 1 (video bad): RuntimeError: decoder crashed at frame 2"]
    assert "failed: RuntimeError" in captured.out  # the stream table says it too
    recs = _records(js)
    assert [r["frame"] for r in recs if r["stream"] == 0] == [0, 1, 2, 3, 4]
    assert [r["frame"] for r in recs if r["stream"] == 1] == [0, 1]
    assert _count_frames(tmp_path / "out.0.avi") == 5 and _count_frames(tmp_path / "out.1.avi") == 2
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))


def test_a_stalled_stream_never_holds_up_the_others(tmp_path, monkeypatch):
    fast_done = threading.Event()
    released = []
    stalled = ListSource(3, 150, before={1: lambda: released.append(fast_done.wait(20))})
    fast = ListSource(10, 50, before={9: fast_done.set})  # made only once the loop took frames 0..6
    summary = _run(tmp_path, monkeypatch, {"fast": fast, "stalled": stalled}, TaggingRunner())
    assert released == [True]  # the fast stream ran on while the other was stuck in its source
    assert [s.frames for s in summary.streams] == [10, 3]


def test_a_camera_faster_than_inference_drops_its_oldest_frames_and_counts_them(tmp_path, monkeypatch):
    camera = ListSource(60, 50, live=True, every_s=0.002)
    summary = _run(tmp_path, monkeypatch, {"cam": camera, "clip": ListSource(4, 150)}, TaggingRunner(delay_s=0.03))
    cam, clip = summary.streams
    assert cam.dropped > 0 and cam.frames + cam.dropped == 60  # every frame processed or counted as dropped
    assert clip.dropped == 0 and clip.frames == 4  # a file is never dropped from
    frames = [r["frame"] for r in _records(tmp_path / "o.jsonl") if r["stream"] == 0]
    assert frames == sorted(set(frames)) and frames[-1] == 59  # always the newest, ending on the last
    assert "dropped" in summary.stream_table()


def test_the_readers_buffer_is_bounded():
    wake = threading.Condition()
    live = ThreadedReader(ListSource(200, live=True), wake, live=True)
    files = ThreadedReader(ListSource(200), wake, live=False)
    try:
        deadline = time.monotonic() + 10
        while not (live.dropped == 199 and len(files._buffer) == 2) and time.monotonic() < deadline:  # noqa: SLF001
            time.sleep(0.01)
        assert live.dropped == 199 and not live.finished  # only the newest frame waits; the rest were counted
        assert len(live._buffer) == 1 and len(files._buffer) == 2  # noqa: SLF001
        taken = gather([live, files], wake)
        assert [(i, fed.frame.index) for i, fed in taken] == [(0, 199), (1, 0)]
        assert live.finished
    finally:
        live.close()
        files.close()


def test_max_frames_is_per_stream_and_a_single_source_is_stream_0(tmp_path, monkeypatch):
    summary = _run(tmp_path, monkeypatch, {"a": ListSource(9, 50), "b": ListSource(9, 150)}, TaggingRunner(),
                   max_frames=3)
    assert [s.frames for s in summary.streams] == [3, 3]
    (tmp_path / "o.jsonl").unlink()
    summary = _run(tmp_path, monkeypatch, {"a": ListSource(4)}, TaggingRunner(), output=tmp_path / "one.avi")
    assert {r["stream"] for r in _records(tmp_path / "o.jsonl")} == {0}
    assert _count_frames(tmp_path / "one.avi") == 4  # one stream: the output keeps the name given


def _fails_with_one_line(capsys, argv: list[str], words: str) -> None:
    assert run_cli(cli.main, argv) == 1
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in err and len(errors) == 1 and words in errors[0], err


def test_sources_file_keeps_order_resolves_paths_and_names_a_bad_line(tmp_path, capsys):
    listing = tmp_path / "cams" / "sources.txt"
    listing.parent.mkdir()
    listing.write_text("# lobby\ncamera 0\n\nvideo clips/door.mp4\nimages /data/photos/\ncamera rtsp://cam/1 x\n")
    args = options.build_parser().parse_args(["--engine", "m.onnx", "--video", "first.mp4", "--sources", str(listing),
                                          "--camera", "2", "--no-display"])
    cfg = options.config_from_args(args)
    assert [(s.kind.value, s.location) for s in cfg.sources] == [
        ("video", "first.mp4"), ("camera", "0"), ("video", str(listing.parent / "clips/door.mp4")),
        ("images", "/data/photos/"), ("camera", "rtsp://cam/1 x"), ("camera", "2")]
    base = ["--engine", "m.onnx", "--no-display", "--sources", str(listing)]
    listing.write_text("camera 0\nvideo\n")
    _fails_with_one_line(capsys, base, f"{listing}:2: expected 'KIND LOCATION' with KIND one of camera, video, "
                                       "images, got 'video'")
    listing.write_text("camera 0\n\n# x\nwebcam 1\n")
    _fails_with_one_line(capsys, base, f"{listing}:4: expected 'KIND LOCATION'")
    listing.write_text("# nothing\n")
    _fails_with_one_line(capsys, base, "lists no source")
    _fails_with_one_line(capsys, ["--engine", "m.onnx", "--sources", str(tmp_path / "no.txt")],
                         "--sources file not found")
    with pytest.raises(MnnEdgeError, match="no source given"):
        options.config_from_args(options.build_parser().parse_args(["--engine", "m.onnx"]))


def test_two_generated_videos_through_the_real_cli(random_export, tmp_path):
    a = write_video(tmp_path / "a.avi", frames=3, faces=1)
    b = write_video(tmp_path / "b.avi", frames=2, faces=1)
    out, js = tmp_path / "out.mp4", tmp_path / "all.jsonl"
    proc = subprocess.run([sys.executable, "-m", "mnn_edge.run", "--engine", str(random_export / "pose.onnx"),
                           "--video", str(a), "--video", str(b), "--box", "60,50,200,210", "--no-display", "--quiet",
                           "--output", str(out), "--json", str(js), "--timing-json", str(tmp_path / "t.json")],
                          capture_output=True, text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    recs = _records(js)
    assert sorted((r["stream"], r["frame"]) for r in recs) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert all(r["num_faces"] == 1 and np.isfinite(r["yaw"]) for r in recs)
    assert _count_frames(tmp_path / "out.0.mp4") == 3 and _count_frames(tmp_path / "out.1.mp4") == 2
    assert "faces/s" in proc.stdout and f"video {b}" in proc.stdout
    counts = json.loads((tmp_path / "t.json").read_text())["run"]
    assert counts["faces"] == 5 and counts["faces_per_s"] > 0 and 3 <= counts["steps"] <= 5
    assert [(s["name"], s["frames"], s["dropped"]) for s in counts["streams"]] == [(f"video {a}", 3, 0),
                                                                                  (f"video {b}", 2, 0)]


def test_multi_stream_soak_memory_stays_flat(tmp_path):
    """A file stream of 1,501 small frames beside a camera that delivers faster than the loop
    (drops counted) through the whole multi-stream loop, in a fresh process: resident memory after
    the file's frame 1,500 is within 1.5 MB of frame 500. An unbounded camera queue would hold
    every dropped 37 KB frame (thousands here); the single-stream soak is in test_reliability.py."""
    from fresh_process import run_soak

    grown, cam_frames, dropped = map(int, run_soak("test_multistream", "soak_two_streams", str(tmp_path)).split(","))
    print(f"resident memory change over 1,000 frames: {grown / 1e6:+.3f} MB; camera {cam_frames} frames, "
          f"{dropped} dropped")
    assert grown < 1_500_000, f"resident memory grew {grown / 1e6:.2f} MB over 1,000 frames"


def soak_two_streams(folder: str) -> str:
    """The soak's body (run by :func:`fresh_process.run_soak`): 'RSS growth,camera frames,dropped'."""
    from fresh_process import resident_bytes

    marks: dict[int, int] = {}
    done = threading.Event()

    class Clip(ListSource):
        def __iter__(self):
            image = np.full((96, 128, 3), 90, np.uint8)
            for i in range(1501):
                if i in (500, 1500):
                    marks[i] = resident_bytes()
                yield Frame(i, i / 30.0, image.copy())
            done.set()

    class Camera(ListSource):
        def __iter__(self):
            image = np.full((96, 128, 3), 120, np.uint8)
            i = 0
            while not done.is_set():
                yield Frame(i, i / 30.0, image.copy())
                i += 1
                time.sleep(0.002)

    with pytest.MonkeyPatch.context() as monkeypatch:
        summary = _run(Path(folder), monkeypatch, {"clip": Clip(0), "cam": Camera(0, live=True)}, TaggingRunner())
    clip, cam = summary.streams
    assert clip.frames == 1501 and clip.error is None and cam.error is None
    return f"{marks[1500] - marks[500]},{cam.frames},{cam.dropped}"
