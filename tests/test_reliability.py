"""Bad numbers and empty work end in one clear line and a non-zero exit, never in a silent
substitution (issue 14's first cases; each row: command, arguments, the words the message must hold)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mnn_edge.cli_util import run_cli

pytestmark = pytest.mark.reliability  # `pytest -m reliability`: the suite of docs/RELIABILITY.md


def _cli(name: str):
    from importlib import import_module

    module = {"mnn-train": "mnn_edge.train.cli", "mnn-export": "mnn_edge.export.cli", "mnn-run": "mnn_edge.run.cli",
              "mnn-eval": "mnn_edge.evaluate.cli", "mnn-bench": "mnn_edge.bench.cli",
              "mnn-report": "mnn_edge.report.cli", "mnn-data": "mnn_edge.data.cli",
              "mnn-build": "mnn_edge.engine_build.cli"}[name]
    return import_module(module).main


def _fails_with_one_line(capsys, command: str, argv: list[str], words: str) -> None:
    assert run_cli(_cli(command), argv) == 1
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and words in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and words in errors[0], err  # notes may precede it; one error line


BAD_NUMBERS = [
    ("mnn-train", ["--sigma", "0"], "sigma (the heatmap target's std in px) must be a positive number, got 0.0"),
    ("mnn-train", ["--lr", "nan"], "lr must be a positive number, got nan"),
    ("mnn-train", ["--weight-decay", "-1"], "weight_decay must be >= 0"),
    ("mnn-train", ["--limit", "0"], "limit must be >= 1"),
    ("mnn-export", ["--random-init", "-L", "0"], "landmarks L must be between 1 and 512, got 0"),
    ("mnn-export", ["--random-init", "-L", "100000"], "landmarks L must be between 1 and 512, got 100000"),
]


@pytest.mark.parametrize(("command", "args", "words"), BAD_NUMBERS, ids=[" ".join([c[0], *c[1]]) for c in BAD_NUMBERS])
def test_bad_numbers_are_refused_before_any_work(command, args, words, tmp_path, capsys):
    base = ["--data", str(tmp_path), "--out", str(tmp_path / "run")] if command == "mnn-train" else \
        ["--out", str(tmp_path / "export")]
    _fails_with_one_line(capsys, command, base + args, words)
    assert not (tmp_path / "run").exists() and not (tmp_path / "export").exists()


@pytest.mark.parametrize("fps", ["0", "-5", "nan"])
def test_mnn_run_refuses_a_frame_rate_it_cannot_use(fps, random_export, tmp_path, capsys):
    out = tmp_path / "x.avi"
    _fails_with_one_line(capsys, "mnn-run", ["--engine", str(random_export / "pose.onnx"), "--images",
                                             str(tmp_path), "--output", str(out), "--fps", fps, "--no-display"],
                         "--fps must be a frame rate")
    assert not out.exists()


def test_mnn_run_with_no_readable_frame_fails(random_export, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"not a jpeg")
    (folder / "b.png").write_bytes(b"\x89PNG broken")
    js = tmp_path / "o.jsonl"
    code = run_cli(_cli("mnn-run"), ["--engine", str(random_export / "pose.onnx"), "--images", str(folder),
                                     "--box", "10,10,50,50", "--no-display", "--quiet", "--json", str(js)])
    assert code == 1
    assert "no frame could be read from images" in capsys.readouterr().err


def test_json_results_are_not_replaced_without_force(random_export, tmp_path, capsys):
    existing = tmp_path / "r.json"
    existing.write_text('{"keep": true}')
    img = np.full((64, 64, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "face.jpg"), img)
    _fails_with_one_line(capsys, "mnn-bench", [str(random_export / "pose.onnx"), "--runs", "1", "--warmup", "0",
                                               "--json", str(existing), "--no-progress"], "already exist")
    _fails_with_one_line(capsys, "mnn-eval", ["--baseline", "zero", "--data", str(tmp_path), "--format", "300w",
                                              "--json", str(existing)], "already exist")
    assert json.loads(existing.read_text()) == {"keep": True}
    assert run_cli(_cli("mnn-bench"), [str(random_export / "pose.onnx"), "--runs", "1", "--warmup", "0",
                                       "--json", str(existing), "--force", "--no-progress"]) == 0
    assert json.loads(existing.read_text())["schema"]


def _table(lo: float, hi: float) -> str:
    from mnn_edge.quantize.calibration import CalibMethod, RangeTable

    return RangeTable(model="pose", method=CalibMethod.ENTROPY, num_images=4, checkpoint_sha256="x",
                      ranges={"conv_out": (lo, hi)}).to_json()


@pytest.mark.parametrize(("lo", "hi", "words"), [(-1e30, 1e30, "implausible"), (float("nan"), 1.0, "not finite"),
                                                 (2.0, 1.0, "low end above its high end")])
def test_range_tables_with_unusable_ranges_are_refused(lo, hi, words, tmp_path):
    from mnn_edge.errors import MnnEdgeError
    from mnn_edge.quantize.calibration import RangeTable

    path = tmp_path / "pose.ranges.json"
    path.write_text(_table(lo, hi))
    with pytest.raises(MnnEdgeError, match=f"not an mnn-edge range table: tensor conv_out: .*{words}"):
        RangeTable.load(path)
    path.write_text(_table(-3.5, 12.0))
    assert RangeTable.load(path).ranges == {"conv_out": (-3.5, 12.0)}


def test_binary_files_read_as_json_get_one_line(tmp_path, capsys):
    from mnn_edge.errors import MnnEdgeError
    from mnn_edge.quantize.calibration import RangeTable
    from mnn_edge.report.cli import main as report_main

    blob = tmp_path / "blob.json"
    blob.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(MnnEdgeError, match="is not a text file, so not a valid range table"):
        RangeTable.load(blob)
    assert run_cli(report_main, ["--bench", str(blob), "--out", str(tmp_path / "rep")]) == 1
    err = capsys.readouterr().err
    assert "is not a text file, so not a valid benchmark JSON" in err and "Traceback" not in err


def test_mnn_info_refuses_a_landmark_count_that_would_only_exhaust_memory(capsys):
    from mnn_edge.model.cli import main as info_main

    assert run_cli(info_main, ["-L", "10000000"]) == 1
    assert "landmarks L must be between 1 and 512" in capsys.readouterr().err


def test_a_second_writer_of_the_same_output_is_refused(random_export, tmp_path, capsys):
    """While one process holds an output (here: this test, through the same claim a running
    mnn-run or mnn-export takes), another run on it fails at once, names the holder and writes
    nothing; a lock file left by a killed run holds no lock and is taken over."""
    import os
    import subprocess
    import sys

    from mnn_edge.fileio import claim_output

    js = tmp_path / "o.jsonl"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from mnn_edge.fileio import claim_output\n"
                               f"with claim_output({str(js)!r}):\n    print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        _fails_with_one_line(capsys, "mnn-run", ["--engine", str(random_export / "pose.onnx"), "--images",
                                                 str(tmp_path), "--box", "1,1,9,9", "--no-display", "--json", str(js)],
                             f"JSON output {js} is being written by another process (pid {holder.pid})")
    finally:
        holder.kill()
        holder.wait()
    assert not js.exists()
    # the killed holder left its lock file behind; it no longer holds a lock
    assert (tmp_path / ".o.jsonl.lock").exists()
    with claim_output(js):
        pass
    assert not (tmp_path / ".o.jsonl.lock").exists()

    out = tmp_path / "export"
    with claim_output(out, "export folder"):
        _fails_with_one_line(capsys, "mnn-export", ["--random-init", "--out", str(out)],
                             f"export folder {out} is being written by another process (pid {os.getpid()})")
    assert not out.exists() or not any(out.iterdir())


def test_a_video_that_cannot_be_written_leaves_nothing_under_its_name(random_export, tmp_path, capsys):
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    cv2.imwrite(str(tiny / "a.png"), np.full((1, 1, 3), 128, np.uint8))
    out, js = tmp_path / "x.avi", tmp_path / "x.jsonl"
    _fails_with_one_line(capsys, "mnn-run", ["--engine", str(random_export / "pose.onnx"), "--images", str(tiny),
                                             "--box", "0,0,1,1", "--no-display", "--quiet", "--output", str(out),
                                             "--json", str(js)], "too small for a video")
    assert not out.exists() and not list(tmp_path.glob(".x.avi*"))


def test_a_video_write_that_fails_part_way_is_an_error_not_a_broken_file(tmp_path, monkeypatch):
    """OpenCV's writer says nothing when a frame write fails (a full disk): the finished file is
    read back before it gets its name."""
    from mnn_edge.errors import MnnEdgeError
    from mnn_edge.run import outputs

    class SilentlyFailingWriter:  # opens, then writes nothing: what a full disk looks like to cv2
        def __init__(self, path, *args):
            self.path = path

        def isOpened(self):  # noqa: N802 - OpenCV's name
            return True

        def write(self, frame):
            pass

        def release(self):
            open(self.path, "wb").close()

    monkeypatch.setattr(outputs.cv2, "VideoWriter", SilentlyFailingWriter)
    sink = outputs.VideoSink(tmp_path / "v.avi", 25.0)
    sink.write(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(MnnEdgeError, match=r"writing video .*v\.avi failed \(the file is empty\)"):
        sink.close()
    assert not (tmp_path / "v.avi").exists() and not list(tmp_path.iterdir())


def test_a_video_writer_that_does_not_open_names_the_codec_and_leaves_nothing(tmp_path, monkeypatch):
    from mnn_edge.errors import MnnEdgeError
    from mnn_edge.run import outputs

    class NoEncoder:  # what cv2 gives for a codec its build lacks: an unopened writer
        def __init__(self, path, *args):
            open(path, "wb").close()  # some backends create the file anyway

        def isOpened(self):  # noqa: N802 - OpenCV's name
            return False

    monkeypatch.setattr(outputs.cv2, "VideoWriter", NoEncoder)
    sink = outputs.VideoSink(tmp_path / "v.mp4", 25.0)
    with pytest.raises(MnnEdgeError, match=r"cannot open a mp4v video writer for .*v\.mp4 \(this OpenCV build has "
                                           r"no encoder for it\)"):
        sink.write(np.zeros((64, 64, 3), np.uint8))
    sink.close()
    assert not list(tmp_path.iterdir())


def test_temporaries_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    from mnn_edge.fileio import write_text_atomic

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".a.json.{dead.stdout.strip()}.x1y2.part"  # what a SIGKILLed writer leaves
    live = tmp_path / f".a.json.{subprocess.os.getpid()}.keep.part"  # a writer still at work
    stale.write_text("half")
    live.write_text("busy")
    write_text_atomic(tmp_path / "a.json", "{}")
    assert (tmp_path / "a.json").read_text() == "{}"
    assert not stale.exists() and live.exists()


def test_a_huge_benchmark_batch_is_refused_before_anything_is_allocated(random_export, capsys):
    _fails_with_one_line(capsys, "mnn-bench", [str(random_export / "pose.onnx"), "--batch", "1,100000"],
                         "--batch values must be between 1 and 256, got '1,100000'")


def test_mnn_edge_metadata_copied_onto_another_graph_fails_on_its_shapes(random_export, tmp_path):
    """A foreign graph carrying a copy of an export's metadata is refused at load, in one line."""
    import onnx
    from onnx import TensorProto, helper

    from mnn_edge.artifact.onnx_io import get_metadata, set_metadata
    from mnn_edge.errors import MnnEdgeError
    from mnn_edge.runtime import open_runner

    meta = get_metadata(onnx.load(str(random_export / "pose.onnx"), load_external_data=False))

    def foreign(name: str, side: int, output: str):
        """An Identity graph (input 'image' (n, 3, side, side) -> ``output``) wearing ``meta``."""
        x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, side, side])
        y = helper.make_tensor_value_info(output, TensorProto.FLOAT, ["n", 3, side, side])
        graph = helper.make_graph([helper.make_node("Identity", ["image"], [output])], name, [x], [y])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        set_metadata(model, meta)
        onnx.save(model, str(tmp_path / f"{name}.onnx"))
        return tmp_path / f"{name}.onnx"

    with pytest.raises(MnnEdgeError, match=r"\(N, 3, 256, 256\) float, the graph has image \['n', 3, 64, 64\]"):
        open_runner(foreign("foreign", 64, "pose"))
    with pytest.raises(MnnEdgeError, match="lists output\\(s\\) pose that the graph lacks"):
        open_runner(foreign("foreign2", 256, "other"))


def test_an_int8_artifact_that_drifts_too_far_is_removed_unless_allowed(random_export, tmp_path, capsys,
                                                                         monkeypatch):
    """Beyond the drift limit (broken ranges in real use; here the limit is lowered, since a
    random-weight model's outputs barely move), mnn-export removes the INT8 file and fails, or keeps
    it with a warning under --allow-drift."""
    from mnn_edge.runtime import compare

    monkeypatch.setattr(compare, "DRIFT_LIMIT", compare.Tolerance(pose_deg=1e-3, landmark_px=1e-3))
    args = ["--onnx", str(random_export / "pose.onnx"), "--out", str(tmp_path / "q"), "--int8", "--calib-random",
            "4", "--ranges-dir", str(tmp_path / "q"), "--no-progress"]
    _fails_with_one_line(capsys, "mnn-export", args, "drifts too far from pose.onnx")
    assert not (tmp_path / "q" / "pose.int8.onnx").exists() and not (tmp_path / "q" / "pose.int8-trt.onnx").exists()
    assert run_cli(_cli("mnn-export"), [*args, "--allow-drift", "--force"]) == 0
    assert "kept by --allow-drift" in capsys.readouterr().out
    assert (tmp_path / "q" / "pose.int8.onnx").is_file()


def test_a_box_outside_the_frame_is_said_once(capsys):
    from mnn_edge.run.detect import FixedBoxDetector

    det = FixedBoxDetector([(10, 10, 60, 60), (900, 900, 950, 950)])
    frame = np.zeros((120, 160, 3), np.uint8)
    assert [len(det.detect(frame)) for _ in range(3)] == [1, 1, 1]
    err = capsys.readouterr().err
    assert err.count("warning: --box 900,900,950,950 lies outside the 160x120 frame") == 1


def test_a_truncated_video_is_said(tmp_path, capsys):
    from mnn_edge.run.sources import VideoSource
    from mnn_edge.run.synth_video import write_video

    video = write_video(tmp_path / "v.avi", frames=20)
    source = VideoSource(video)
    source.total = 60  # what a damaged file's header may still announce
    assert len(list(source)) == 20
    source.close()
    assert "ended after 20 of the 60 frames its header announces" in capsys.readouterr().err
    source = VideoSource(video)
    source.total = 23  # a few frames short, as a file damaged near its end reads (292 of 300 was silent)
    assert len(list(source)) == 20
    source.close()
    assert "ended after 20 of the 23 frames" in capsys.readouterr().err
    source = VideoSource(video)
    source.total = 21  # one frame off: some codecs' counts are, and that is not a damaged file
    assert len(list(source)) == 20
    source.close()
    assert "ended after" not in capsys.readouterr().err


def test_building_a_half_exported_folder_says_what_is_missing(tmp_path, capsys):
    from trt_double.install import installed
    from trt_double.models import write_tiny

    from mnn_edge.artifact import Precision
    from mnn_edge.runtime.tensorrt.build import build_engines_for_export
    from mnn_edge.runtime.tensorrt.config import BuildConfig

    write_tiny(tmp_path / "export", Precision.FP32)  # pose.onnx only
    with installed("10.3"):
        plans = build_engines_for_export(tmp_path / "export", [Precision.FP32],
                                         BuildConfig(out_dir=tmp_path / "e", timing_cache=None, progress=False))
    assert [p.name for p in plans] == ["pose.fp32.plan"]
    assert "has no mnn.onnx; building the other model only" in capsys.readouterr().err


def _start_export(out, extra=()):
    """mnn-export in a child whose parity check first waits 60 s: a signal sent once a temporary
    exists lands part-way, however slow the machine (on a loaded CI machine the whole export once
    finished between the test seeing the temporary and sending SIGINT). Ctrl-C is restored in the
    child: a test run started in the background (nohup, `&`, some CI runners) passes SIGINT on as
    ignored, and Python then never raises KeyboardInterrupt -- unlike a terminal's Ctrl-C."""
    import subprocess
    import sys

    code = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "import sys, time; sys.argv[0] = 'mnn-export'; from mnn_edge.export import exporter as pipeline; "
            "real = pipeline.check_parity; "
            "pipeline.check_parity = lambda *a, **k: (time.sleep(60), real(*a, **k))[1]; "
            "from mnn_edge.export.cli import entry; raise SystemExit(entry())")
    return subprocess.Popen([sys.executable, "-c", code, "--random-init", "--out", str(out), "--no-progress", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_until(condition, proc, timeout=120.0) -> bool:
    """Poll ``condition()`` while ``proc`` runs; True once it holds, False if the process ended first."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGINT"])
def test_an_export_stopped_part_way_leaves_nothing_that_reads_as_complete(tmp_path, signal_name):
    """Killed (or Ctrl-C'd) while writing: no file under a final name that is not a checked artifact,
    and the next export into the folder removes the dead writer's temporaries."""
    import signal

    from mnn_edge.export.cli import main as export_main
    from mnn_edge.runtime import open_runner

    out = tmp_path / "export"
    proc = _start_export(out)
    try:
        started = _wait_until(lambda: out.is_dir() and any(p.name.endswith(".part") for p in out.iterdir()), proc)
        assert started, "the export never started writing"
        proc.send_signal(getattr(signal, signal_name))
        rc = proc.wait(timeout=60)
    finally:
        proc.kill()
    err = proc.stderr.read()
    if signal_name == "SIGINT":
        assert rc == 130 and "interrupted" in err and "Traceback" not in err, (rc, err)
    else:
        assert rc == -signal.SIGKILL
    for final in ("pose.onnx", "mnn.onnx"):
        if (out / final).exists():  # only a file whose parity check passed reaches its final name
            with open_runner(out / final) as runner:
                assert runner.metadata.kind.value in ("pose", "full")
    assert export_main(["--random-init", "--out", str(out), "--force", "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["mnn.onnx", "pose.onnx"]  # temporaries and lock gone


def test_mnn_run_soak_memory_stays_flat(tmp_path):
    """A camera-like run of 6,000 small frames through the whole mnn-run loop (tracking, background
    re-detection, JSON lines, timing), in a fresh process: resident memory after frame 6,000 is
    within 1.5 MB of frame 1,000. The old per-stage latency lists grew ~0.35 KB a frame (1.8 MB
    over this stretch)."""
    from fresh_process import run_soak

    grown = float(run_soak("test_reliability", "soak_single_stream", str(tmp_path)))
    print(f"resident memory change over 5,000 frames: {grown / 1e6:+.3f} MB")
    assert grown < 1_500_000, f"resident memory grew {grown / 1e6:.2f} MB over 5,000 frames"


def soak_single_stream(folder: str) -> int:
    """The soak's body (run by :func:`fresh_process.run_soak`): RSS at frame 6,000 minus frame 1,000."""
    from fresh_process import resident_bytes
    from test_run_parts import FakeRunner

    from mnn_edge.run import app
    from mnn_edge.run.detect import DetectorKind
    from mnn_edge.run.sources import Frame

    marks: dict[int, int] = {}

    class EndlessCamera:
        is_live, fps, total, description = True, 30.0, None, "fake camera"

        def __iter__(self):
            image = np.full((96, 128, 3), 90, np.uint8)
            for i in range(6001):
                if i in (1000, 6000):
                    marks[i] = resident_bytes()
                yield Frame(i, i / 30.0, image.copy())

        def close(self):
            pass

    tmp_path = Path(folder)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr("mnn_edge.runtime.open_runner", lambda *a, **k: FakeRunner())
        monkeypatch.setattr(app, "open_source", lambda cfg: EndlessCamera())
        cfg = app.RunConfig(engine=tmp_path / "fake.onnx", source=app.SourceConfig(app.SourceKind.CAMERA, "0"),
                            detector=app.DetectorConfig(kind=DetectorKind.BOX, boxes=((20.0, 10.0, 90.0, 90.0),)),
                            tracker=app.TrackerConfig(redetect_every=10, background=True),
                            json=tmp_path / "soak.jsonl", progress=False)
        summary = app.run(cfg)
    assert summary.frames == 6001 and summary.faces == 6001
    return marks[6000] - marks[1000]


@pytest.mark.parametrize("command", ["mnn-export", "mnn-eval"])
def test_an_output_under_a_file_says_so(command, random_export, tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    if command == "mnn-export":
        args = ["--random-init", "--out", str(blocker)]
    else:
        args = ["--artifact", str(random_export / "pose.onnx"), "--data", "../shared/data/samples/aflw2000",
                "--format", "aflw2000", "--json", str(blocker / "r.json"), "--no-progress"]
    _fails_with_one_line(capsys, command, args, f"{blocker} is a file, not a folder")
    assert blocker.read_text() == "x"


def test_a_killed_mnn_run_leaves_no_json_lines_under_the_final_name(random_export, tmp_path):
    """SIGKILL part-way: the JSON lines stay in the hidden partial file (never the final name), and
    the next run replaces it and finishes."""
    import signal
    import subprocess
    import sys

    from mnn_edge.run.synth_video import write_video

    video = write_video(tmp_path / "v.avi", frames=40)
    out = tmp_path / "out.jsonl"
    code = "import sys; sys.argv[0] = 'mnn-run'; from mnn_edge.run.cli import entry; raise SystemExit(entry())"
    argv = ["--engine", str(random_export / "pose.onnx"), "--video", str(video), "--box", "60,50,200,210",
            "--no-display", "--quiet", "--json", str(out)]
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = tmp_path / ".out.jsonl.partial"
    try:
        _wait_until(lambda: partial.exists() and partial.stat().st_size > 0, proc, timeout=60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert not out.exists()
    assert run_cli(_cli("mnn-run"), argv) == 0
    assert len(out.read_text().splitlines()) == 40 and not partial.exists()


def _limit_file_size(max_bytes: int):
    """preexec_fn: the kernel refuses writes past ``max_bytes`` in any file (EFBIG) -- a real failing
    write on any machine, without root. SIGXFSZ is ignored so the write fails instead of killing."""
    import resource
    import signal

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return apply


def _run_command(command: str, argv: list[str], preexec_fn=None, timeout: float = 300.0):
    import subprocess
    import sys

    module = {"mnn-run": "mnn_edge.run.cli", "mnn-export": "mnn_edge.export.cli", "mnn-train": "mnn_edge.train.cli"}
    code = f"import sys; sys.argv[0] = '{command}'; from {module[command]} import entry; raise SystemExit(entry())"
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=timeout,
                          preexec_fn=preexec_fn)


def _error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_json_lines_on_a_disk_that_fills_keep_every_complete_record(random_export, tmp_path):
    """A write that fails part-way (here the kernel's file-size limit, EFBIG): one line with the
    system's reason, exit 1, and the file under its name holds the complete records before it."""
    import json

    from mnn_edge.run.synth_video import write_video

    video = write_video(tmp_path / "v.avi", frames=30)
    out = tmp_path / "o.jsonl"
    proc = _run_command("mnn-run", ["--engine", str(random_export / "pose.onnx"), "--video", str(video),
                                    "--box", "60,50,200,210", "--no-display", "--quiet", "--json", str(out)],
                        preexec_fn=_limit_file_size(3000))
    assert proc.returncode == 1
    [line] = _error_lines(proc.stderr)
    assert "File too large" in line and "record(s) before it are kept" in line
    records = [json.loads(row) for row in out.read_text().splitlines()]  # no half line
    assert 0 < len(records) < 30 and [r["frame"] for r in records] == list(range(len(records)))
    assert not list(tmp_path.glob(".o.jsonl*partial"))


def _tmpfs(path: Path, options: str) -> None:
    """Mount a real tmpfs (size-limited or read-only) at ``path``; skip where mounting is not allowed."""
    import shutil
    import subprocess

    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root/CAP_SYS_ADMIN): {done.stderr.decode().strip()}")


@pytest.fixture
def small_filesystems(tmp_path):
    """A 256 KB and a read-only tmpfs under tmp_path, unmounted afterwards."""
    import subprocess

    full, readonly = tmp_path / "full", tmp_path / "ro"
    mounted = []
    try:
        for path, options in ((full, "size=256k"), (readonly, "size=64k,ro")):
            _tmpfs(path, options)
            mounted.append(path)
        yield full, readonly
    finally:
        for path in mounted:
            subprocess.run(["umount", str(path)], capture_output=True)


def test_exports_onto_a_full_or_read_only_filesystem_end_in_one_line(small_filesystems):
    full, readonly = small_filesystems
    proc = _run_command("mnn-export", ["--random-init", "--out", str(full / "export"), "--no-progress"])
    assert proc.returncode == 1
    [line] = _error_lines(proc.stderr)
    assert "No space left on device" in line
    assert [p.name for p in full.rglob("*") if p.is_file()] == []  # no model and no temporary
    proc = _run_command("mnn-export", ["--random-init", "--out", str(readonly / "export"), "--no-progress"])
    assert proc.returncode == 1
    [line] = _error_lines(proc.stderr)
    assert "Read-only file system" in line


def test_mnn_run_onto_a_full_filesystem_keeps_what_it_wrote(random_export, small_filesystems, tmp_path):
    import json

    from mnn_edge.run.synth_video import write_video

    full, _ = small_filesystems
    video = write_video(tmp_path / "v.avi", frames=200)
    out = full / "o.jsonl"
    proc = _run_command("mnn-run", ["--engine", str(random_export / "pose.onnx"), "--video", str(video),
                                    "--box", "60,50,200,210", "--no-display", "--quiet", "--json", str(out),
                                    "--output", str(full / "o.avi")])
    assert proc.returncode == 1
    assert any("No space left on device" in line for line in _error_lines(proc.stderr))
    records = [json.loads(row) for row in out.read_text().splitlines()]
    assert 0 < len(records) < 200
    assert not (full / "o.avi").exists() or (full / "o.avi").stat().st_size > 0


def test_a_killed_training_run_resumes_from_its_last_complete_checkpoint(synthetic_dir, tmp_path):
    """SIGKILL while the trainer saves: last.pt is either the previous complete checkpoint or the new
    one (never half a file), --resume continues from its step, and the dead run's temporary goes."""
    import signal
    import subprocess
    import sys

    from mnn_edge.checkpoint import load_checkpoint
    from mnn_edge.train.cli import main as train_main

    out = tmp_path / "run"
    base = ["--data", str(synthetic_dir), "--limit", "4", "--out", str(out), "--batch", "2", "--epoch-steps", "1",
            "--schedule", "cpu-starter", "--no-progress", "--device", "cpu"]
    code = "import sys; sys.argv[0] = 'mnn-train'; from mnn_edge.train.cli import entry; raise SystemExit(entry())"
    proc = subprocess.Popen([sys.executable, "-c", code, *base, "--epochs", "500"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:  # a save after the first one: the moment its temporary exists
        saving = _wait_until(lambda: (out / "last.pt").exists() and any(out.glob(".last.pt.*.part")), proc,
                             timeout=240)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert saving, proc.stderr.read()
    step = load_checkpoint(out / "last.pt").state["step"]
    assert step >= 1
    assert train_main(base + ["--epochs", str(step + 1), "--resume", str(out / "last.pt")]) == 0
    assert load_checkpoint(out / "last.pt").state["step"] == step + 1
    assert not any(out.glob(".*.part"))


def _bad_file(kind: str, like: Path, folder: Path) -> Path:
    """A file named like ``like`` that is missing, empty, random bytes, or ``like`` cut in half."""
    path = folder / f"{kind}{like.suffix}"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "truncated":
        data = like.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    return path


BAD_FILE_KINDS = ["missing", "empty", "random", "truncated"]
# command, how the bad file is passed, the real file it imitates (fixture name: file)
BAD_FILE_COMMANDS = [
    ("mnn-run", lambda f, t, d: ["--engine", str(f), "--images", str(t), "--no-display", "--quiet"], "onnx"),
    ("mnn-eval", lambda f, t, d: ["--artifact", str(f), "--data", str(d), "--format", "synthetic", "--no-progress"],
     "onnx"),
    ("mnn-bench", lambda f, t, d: [str(f), "--runs", "1", "--no-progress"], "onnx"),
    ("mnn-export", lambda f, t, d: ["--checkpoint", str(f), "--out", str(t / "export")], "pt"),
    ("mnn-train", lambda f, t, d: ["--data", str(d), "--out", str(t / "run"), "--init", str(f)], "pt"),
    ("mnn-report", lambda f, t, d: ["--bench", str(f), "--out", str(t / "report")], "json"),
]


@pytest.mark.parametrize("kind", BAD_FILE_KINDS)
@pytest.mark.parametrize(("command", "argv", "imitates"), BAD_FILE_COMMANDS, ids=[c[0] for c in BAD_FILE_COMMANDS])
def test_every_command_refuses_a_bad_input_file_in_one_line(command, argv, imitates, kind, random_export,
                                                           random_checkpoint, synthetic_dir, tmp_path, capsys):
    """Missing, empty, random or truncated models, checkpoints and result files: exit 1, one line
    naming the file, no traceback, nothing written."""
    real = {"onnx": random_export / "pose.onnx", "pt": random_checkpoint, "json": tmp_path / "real.json"}[imitates]
    if imitates == "json":
        real.write_text(json.dumps({"schema": 1, "results": [{"artifact": "x", "latency_ms": {"p50": 1.0}}]}))
    bad = _bad_file(kind, real, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert run_cli(_cli(command), argv(bad, tmp_path, synthetic_dir)) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in err and len(errors) == 1 and bad.name in errors[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# command, its arguments (export folder, synthetic faces, tmp), the output it writes (relative to tmp)
CLAIMED_OUTPUTS = [
    ("mnn-eval", lambda e, d, t: ["--artifact", str(e / "pose.onnx"), "--data", str(d), "--format", "synthetic",
                                  "--json", str(t / "r.json"), "--no-progress"], "r.json"),
    ("mnn-bench", lambda e, d, t: [str(e / "pose.onnx"), "--runs", "1", "--json", str(t / "b.json"),
                                   "--no-progress"], "b.json"),
    ("mnn-train", lambda e, d, t: ["--data", str(d), "--out", str(t / "run"), "--limit", "2"], "run"),
    ("mnn-report", lambda e, d, t: ["--bench", str(t / "b.json"), "--out", str(t / "report")], "report"),
    ("mnn-data", lambda e, d, t: ["synth", "--out", str(t / "faces"), "--n", "2"], "faces"),
    ("mnn-data", lambda e, d, t: ["pseudo-label", "--teacher", str(t / "teacher"), "--data", str(d),
                                  "--format", "synthetic", "--out", str(t / "labels.jsonl")], "labels.jsonl"),
    ("mnn-build", lambda e, d, t: [str(e / "pose.onnx"), "--out", str(t / "engines")], "engines"),
]


@pytest.mark.parametrize(("command", "argv", "output"), CLAIMED_OUTPUTS,
                         ids=[f"{c[0]} {c[2]}" for c in CLAIMED_OUTPUTS])
def test_every_command_that_writes_refuses_a_second_writer(command, argv, output, random_export, synthetic_dir,
                                                           tmp_path, capsys):
    """Another process holds the output (here: this test, through the same lock a run takes): the
    command stops before any work with one line naming the holder, and writes nothing."""
    import os

    from mnn_edge.fileio import claim_output

    with claim_output(tmp_path / output, "output"):
        before = sorted(p.name for p in tmp_path.iterdir())
        _fails_with_one_line(capsys, command, argv(random_export, synthetic_dir, tmp_path),
                             f"is being written by another process (pid {os.getpid()})")
        assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_no_output_may_be_an_input_or_another_output(tmp_path, random_export, capsys):
    """--timing-json over the input video, --json twice over one file, --output in the images'
    own folder, mnn-bench --json over the model: refused before any work, --force or not, with
    every file unchanged."""
    import re

    from mnn_edge.bench.cli import main as bench_main
    from mnn_edge.run.cli import main as run_main
    from mnn_edge.run.synth_video import write_frames, write_video

    video = write_video(tmp_path / "victim.avi", frames=2)
    frames = tmp_path / "frames"
    write_frames(frames, frames=1)
    model = random_export / "pose.onnx"
    before = {p: p.read_bytes() for p in (video, model, *frames.iterdir())}
    link = tmp_path / "alias.avi"
    link.symlink_to(video)
    base = ["--engine", str(model), "--box", "60,50,200,210", "--no-display", "--quiet", "--force"]
    cases = [
        ([*base, "--video", str(video), "--timing-json", str(video)], "timing-json .* is the input video itself"),
        ([*base, "--video", str(video), "--json", str(link)], "--json .* is the input video itself"),
        ([*base, "--video", str(video), "--output", str(tmp_path / "sub" / ".." / "victim.avi")],
         "--output .* is the input video itself"),
        ([*base, "--video", str(video), "--json", str(tmp_path / "t.json"), "--timing-json",
          str(tmp_path / "t.json")], "--timing-json and --json are the same file"),
        ([*base, "--images", str(frames), "--output", str(frames)], "--output .* is the folder the input image"),
        ([*base, "--video", str(video), "--json", str(model)], "--json .* is the model itself"),
    ]
    for argv, message in cases:
        assert run_cli(run_main, argv) == 1, argv
        assert re.search(message, capsys.readouterr().err), message
    assert run_cli(bench_main, [str(model), "--json", str(model), "--force", "--runs", "1", "--no-progress"]) == 1
    assert "is the artifact itself" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before
    assert not (tmp_path / "t.json").exists()


def _wait_for(predicate, timeout: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the child"
        time.sleep(0.05)


def test_sigterm_ends_mnn_run_like_ctrl_c(random_export, tmp_path):
    """docker stop / systemd send SIGTERM: the outputs are completed and renamed, one line, exit 143."""
    import signal
    import subprocess
    import sys

    from mnn_edge.run.synth_video import write_video

    video = write_video(tmp_path / "v.avi", frames=120, path_frames=240)
    out, js = tmp_path / "o.avi", tmp_path / "o.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "mnn_edge.run", "--engine", str(random_export / "pose.onnx"),
                             "--video", str(video), "--box", "60,50,200,210", "--no-display", "--quiet",
                             "--output", str(out), "--json", str(js)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = lambda: [p for p in tmp_path.glob(".o.jsonl*") if p.suffix != ".lock"]  # noqa: E731
    _wait_for(lambda: any(p.stat().st_size > 0 for p in partial()) or proc.poll() is not None)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-2000:]
    assert "terminated (SIGTERM)" in stdout and "Traceback" not in stderr
    records = [json.loads(line) for line in js.read_text().splitlines()]
    assert 0 < len(records) < 120 and [r["frame"] for r in records] == list(range(len(records)))
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(records)
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_sigterm_saves_mnn_train_last_checkpoint(synthetic_dir, tmp_path):
    import signal
    import subprocess
    import sys

    from mnn_edge.checkpoint import load_checkpoint

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", "from mnn_edge.train.cli import entry; entry()",
                             "--data", str(synthetic_dir), "--limit", "4",
                             "--out", str(out), "--batch", "2", "--epoch-steps", "1", "--epochs", "10000",
                             "--schedule", "cpu-starter", "--no-progress", "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (out / "last.pt").exists() or proc.poll() is not None, timeout=300)  # an epoch was done
    (out / "last.pt").unlink()
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 143, stderr[-2000:]
    assert "terminated (SIGTERM): saving the last checkpoint" in stdout + stderr
    assert stderr.strip().splitlines()[-1] == "terminated (SIGTERM)"
    assert load_checkpoint(out / "last.pt").state["step"] >= 1


def test_wrong_kinds_of_input_name_the_real_problem(random_export, tmp_path, capsys):
    from mnn_edge.data.cli import main as data_main
    from mnn_edge.run.cli import main as run_main

    base = ["--no-display", "--quiet", "--box", "0,0,10,10"]
    assert run_cli(run_main, ["--engine", "https://models.example/pose", "--video", "x.avi", *base]) == 1
    assert "https:// is not a model source; give a local file" in capsys.readouterr().err
    assert run_cli(run_main, ["--engine", str(random_export / "pose.onnx"), "--video", str(tmp_path), *base]) == 1
    assert f"--video {tmp_path} is a folder; for a folder of images use --images" in capsys.readouterr().err
    teacher = tmp_path / "fsanet.onnx"
    teacher.write_bytes(b"")
    assert run_cli(data_main, ["pseudo-label", "--teacher", str(teacher), "--data", str(tmp_path),
                               "--out", str(tmp_path / "l.jsonl")]) == 1
    assert "is a file: give the folder that holds the teacher's .onnx files" in capsys.readouterr().err


def test_a_run_that_read_no_frame_leaves_no_output_to_block_its_rerun(random_export, tmp_path, capsys):
    from mnn_edge.run.cli import main as run_main

    images = tmp_path / "images"
    images.mkdir()
    (images / "broken.jpg").write_bytes(b"not an image")
    js = tmp_path / "o.jsonl"
    argv = ["--engine", str(random_export / "pose.onnx"), "--images", str(images), "--no-display", "--quiet",
            "--box", "0,0,10,10", "--json", str(js)]
    for _ in range(2):  # the second run fails for the same reason, not because of the first one's file
        assert run_cli(run_main, argv) == 1
        err = capsys.readouterr().err
        assert "no frame could be read" in err and "already exist" not in err
        assert not js.exists() and not list(tmp_path.glob(".o.jsonl*"))


def test_export_takes_fp32_files_by_their_metadata_not_their_names(random_export, tmp_path, capsys):
    import re

    from mnn_edge.export.cli import main as export_main

    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "mypose.onnx").write_bytes((random_export / "pose.onnx").read_bytes())
    assert run_cli(export_main, ["--onnx", str(odd / "mypose.onnx"), "--fp16", "--out", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "pose.fp16.onnx").is_file()
    (odd / "junk.onnx").write_bytes(b"\x08\x07junk")
    for bad, message in ((odd / "junk.onnx", "has no mnn-edge metadata|not a loadable ONNX model"),
                         (odd / "none.onnx", "no such file")):
        assert run_cli(export_main, ["--onnx", str(bad), "--fp16", "--out", str(tmp_path / "b")]) == 1
        assert re.search(message, capsys.readouterr().err)
        assert not (tmp_path / "b").exists()  # refused before the output folder was made
    capsys.readouterr()
    assert run_cli(export_main, ["--onnx", str(odd / "mypose.onnx"), str(random_export / "pose.onnx"), "--fp16",
                                 "--out", str(tmp_path / "c")]) == 1
    assert "gives two pose models" in capsys.readouterr().err


def test_triton_repo_problems_are_refused_before_any_artifact_is_written(random_export, tmp_path, capsys):
    from mnn_edge.export.cli import main as export_main

    repo_file = tmp_path / "repo"
    repo_file.write_text("a file")
    argv = ["--onnx", str(random_export / "pose.onnx"), "--fp16", "--triton-repo"]
    assert run_cli(export_main, [*argv, str(repo_file), "--out", str(tmp_path / "a")]) == 1
    assert "is a file, not a folder for a Triton model repository" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    repo = tmp_path / "triton"
    assert run_cli(export_main, [*argv, str(repo), "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    assert run_cli(export_main, [*argv, str(repo), "--out", str(tmp_path / "c")]) == 1
    assert "pose_fp16 already exist(s) in the Triton repository" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_absurd_sizes_and_nesting_are_one_line(tmp_path, capsys):
    from mnn_edge.data.cli import main as data_main
    from mnn_edge.data.readers.pose_labels import read_labels
    from mnn_edge.errors import MnnEdgeError
    from mnn_edge.fileio import read_json

    assert run_cli(data_main, ["synth", "--out", str(tmp_path / "s"), "--n", "1", "--size", "100000"]) == 1
    assert "--size must be 64..2048 px, got 100000" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    for argv, words in [(["--size", "100000"], "--size must be 64..2048 px"),
                        (["--n", "100000"], "a sheet of 100000 faces of 128 px in 4 columns would be 512x3200000 px")]:
        assert run_cli(data_main, ["preview", "--out", str(tmp_path / "p" / "sheet.png"), *argv]) == 1
        assert words in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(MnnEdgeError, match="nests JSON too deeply"):
        read_json(deep, "benchmark JSON")
    with pytest.raises(MnnEdgeError, match="line 1: JSON nested too deeply"):
        read_labels(deep)
    from mnn_edge.evaluate.cli import main as eval_main

    assert run_cli(eval_main, ["--data", str(tmp_path), "--format", "synthetic", "--batch", "100000"]) == 1
    assert "--batch must be 1..256 faces per inference call" in capsys.readouterr().err


def test_diverged_or_foreign_weights_are_named_not_served(random_checkpoint, tmp_path):
    import torch

    from mnn_edge.checkpoint import load_checkpoint
    from mnn_edge.errors import MnnEdgeError

    payload = torch.load(random_checkpoint, map_location="cpu", weights_only=True)
    name = next(k for k, v in payload["weights"].items() if v.is_floating_point())
    payload["weights"][name] = payload["weights"][name].clone().fill_(float("nan"))
    torch.save(payload, tmp_path / "nan.pt")
    with pytest.raises(MnnEdgeError, match=r"hold NaN or infinite values \(e\.g\. .*\): the training run diverged"):
        load_checkpoint(tmp_path / "nan.pt")
    payload = torch.load(random_checkpoint, map_location="cpu", weights_only=True)
    payload["weights"]["extra.weight"] = torch.zeros(2)
    fc = next(k for k in payload["weights"] if k.startswith("fc_pose") and k.endswith("weight"))
    payload["weights"][fc] = torch.zeros(3, 3)
    del payload["weights"][name]
    torch.save(payload, tmp_path / "foreign.pt")
    with pytest.raises(MnnEdgeError) as e:
        load_checkpoint(tmp_path / "foreign.pt")
    message = str(e.value)
    assert f"1 missing (e.g. {name})" in message and "1 unexpected (e.g. extra.weight)" in message
    assert f"1 of another shape (e.g. {fc} (3, 3) vs" in message


def test_eval_and_export_outputs_are_not_their_inputs(random_export, synthetic_dir, tmp_path, capsys):
    from mnn_edge.evaluate.cli import main as eval_main
    from mnn_edge.export.cli import main as export_main

    model = random_export / "pose.onnx"
    before = model.read_bytes()
    assert run_cli(eval_main, ["--data", str(synthetic_dir), "--format", "synthetic", "--artifact", str(model),
                               "--json", str(model), "--force"]) == 1
    assert "--json " in (err := capsys.readouterr().err) and "is the artifact itself" in err
    assert run_cli(eval_main, ["--data", str(synthetic_dir), "--format", "synthetic", "--artifact", str(model),
                               "--json", str(tmp_path / "e.json"), "--per-face", str(tmp_path / "e.json")]) == 1
    assert "are the same file" in capsys.readouterr().err
    assert run_cli(export_main, ["--onnx", str(model), "--fp16", "--out", str(model), "--force"]) == 1
    assert "--out " in (err := capsys.readouterr().err) and "is the --onnx file itself" in err
    assert model.read_bytes() == before
    out = tmp_path / "same"
    assert run_cli(export_main, ["--onnx", str(model), "--fp16", "--out", str(out), "--triton-repo", str(out)]) == 1
    assert "are the same file" in capsys.readouterr().err


def test_report_train_and_data_outputs_are_not_their_inputs(tmp_path, capsys):
    """mnn-report, mnn-train and mnn-data refuse an output that is (directly, by a symlink, through
    ``..``) one of their inputs, before any work and --force or not; every input stays as it was."""
    import re

    bench = tmp_path / "r" / "machine.json"  # a benchmark file kept in the report folder
    bench.parent.mkdir()
    bench.write_text("{}")
    data, teacher, run = tmp_path / "data", tmp_path / "teacher", tmp_path / "run"
    for folder in (data, teacher, run):
        folder.mkdir()
    (data / "synth_000000.jpg").write_bytes(b"face")
    (teacher / "fsanet.onnx").write_bytes(b"model")
    (run / "last.pt").write_bytes(b"weights")
    (tmp_path / "alias.onnx").symlink_to(teacher / "fsanet.onnx")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    cases = [
        ("mnn-report", ["--bench", str(bench), "--out", str(bench.parent), "--force"],
         "report file .*machine.json is the --bench file itself"),
        ("mnn-report", ["--eval", f"fp32={bench}", "--out", str(bench)], "--out .* is the --eval file itself"),
        ("mnn-train", ["--data", str(data), "--out", str(tmp_path / "x" / ".." / "data")],
         "--out .* is the training data folder itself"),
        ("mnn-train", ["--data", str(data), "--init", str(run / "last.pt"), "--out", str(run), "--force"],
         "run file .*last.pt is the --init checkpoint itself"),
        ("mnn-data", ["pseudo-label", "--teacher", str(teacher), "--data", str(data), "--out",
                      str(tmp_path / "alias.onnx"), "--force"], "--out .* is the teacher model itself"),
        ("mnn-data", ["cofw", "--mat", str(bench), "--out", str(bench), "--force"], "--out .* is the .mat file itself"),
        ("mnn-data", ["profile", "--data", str(data), "--mesh", str(teacher), "--teacher", str(teacher),
                      "--out", str(tmp_path), "--force"], "--out .* holds the dataset folder"),
    ]
    for command, argv, message in cases:
        assert run_cli(_cli(command), argv) == 1, argv
        err = capsys.readouterr().err
        assert re.search(message, err) and "Traceback" not in err, (argv, err)
    assert {p: p.read_bytes() for p in before} == before
    assert not (tmp_path / "x").exists()
    # Continuing a run from its own last.pt is what --resume is for: not refused as an input.
    from mnn_edge.train.cli import check_paths
    from mnn_edge.train.config import build_config

    check_paths(build_config({}, {"data": data, "resume": run / "last.pt", "out": run}), None)


def test_a_box_left_of_or_above_the_frame_parses_as_written(random_export, tmp_path, capsys):
    """``--box -5,10,100,120`` was taken for an unknown option (only ``--box=-5,...`` parsed); a
    malformed box is one line naming it."""
    from mnn_edge.run.detect import attach_negative_values
    from mnn_edge.run.options import build_parser, config_from_args

    argv = ["--engine", str(random_export / "pose.onnx"), "--images", str(tmp_path), "--no-display"]
    args = build_parser().parse_args(attach_negative_values([*argv, "--box", "-5,10,100,120", "--box", "-1e9,-.5,1,2"]))
    assert config_from_args(args).detector.boxes == ((-5.0, 10.0, 100.0, 120.0), (-1e9, -0.5, 1.0, 2.0))
    for box, words in [("-5,10,100", "--box takes x0,y0,x1,y1 (four numbers), got '-5,10,100'"),
                       ("nan,0,10,10", "--box nan,0,10,10: every value must be a finite number"),
                       ("-1,0,inf,10", "must be a finite number"), ("100,10,-5,120", "need x1 > x0")]:
        _fails_with_one_line(capsys, "mnn-run", [*argv, "--box", box], words)


def test_the_training_bar_ends_where_the_time_budget_ends_the_run():
    """4,000 planned steps at 1.545 s each are 1:43 h; a 78-minute budget stops the run near step
    3,029, so that is the bar's total (and its ETA) once the pace is known."""
    from mnn_edge.train.loop import expected_end_step

    budget = 78 * 60.0
    assert expected_end_step(4000, 0, 0.0, budget, 0, 0.0) == 4000  # no pace measured yet
    assert 3025 <= expected_end_step(4000, 100, 154.5, budget, 100, 154.5) <= 3035
    assert expected_end_step(4000, 100, 154.5, None, 100, 154.5) == 4000  # no budget: the planned steps
    assert expected_end_step(4000, 100, 154.5, 10 * budget, 100, 154.5) == 4000  # the steps end it first
    # A resumed run: the clock carried over (elapsed) counts, the pace is this session's own.
    assert expected_end_step(4000, 3000, budget - 3.0, budget, 10, 15.45) == 3002
    assert expected_end_step(4000, 3000, budget + 60, budget, 10, 15.45) == 3000  # budget already used


def test_a_batch_that_cannot_fit_in_memory_is_refused_before_the_data_is_read(tmp_path, capsys):
    """``batch = 100000`` (67 TB a step) ended in an out-of-memory kill after the data was read;
    now one line says what fits. The bound is a measured lower bound: the shipped batch passes."""
    from mnn_edge.errors import MnnEdgeError
    from mnn_edge.train.config import PRESETS, TrainConfig, check_step_memory

    gb = 1e9
    with pytest.raises(MnnEdgeError, match=r"batch 100000 needs at least 50000 GB .* this machine has 23 GB: "
                                           r"use batch <= 46$"):
        check_step_memory(TrainConfig(data=tmp_path, batch=100000), "cpu", 23 * gb)
    check_step_memory(TrainConfig(data=tmp_path, batch=8), "cpu", 23 * gb)  # configs/starter_*.toml on 23 GB
    check_step_memory(TrainConfig(data=tmp_path, batch=100000), "cpu", None)  # memory unknown: not refused
    with pytest.raises(MnnEdgeError, match="this GPU has 80 GB: use batch <= 640"):
        check_step_memory(TrainConfig(data=tmp_path, batch=1000), "cuda", 80 * gb)
    # An encoder-only schedule keeps far less per face.
    pose_only = (PRESETS["cpu-starter"][0],)
    check_step_memory(TrainConfig(data=tmp_path, batch=400, schedule=pose_only), "cpu", 23 * gb)
    empty = tmp_path / "no_faces_here"
    empty.mkdir()
    _fails_with_one_line(capsys, "mnn-train", ["--data", str(empty), "--out", str(tmp_path / "run"), "--batch",
                                               "100000", "--device", "cpu"], "batch 100000 needs at least")
    assert not (tmp_path / "run").exists()


def test_a_command_colliding_with_itself_says_so(random_export, tmp_path, capsys):
    """Two outputs of one command on one path blamed "another process (pid N)" with the command's
    own pid (mnn-build --out X --triton-repo X); now the build's outputs are checked like every
    other command's, and claim_outputs refuses two of its targets on one path itself."""
    from mnn_edge.errors import MnnEdgeError
    from mnn_edge.fileio import claim_outputs

    model = random_export / "pose.onnx"
    before = model.read_bytes()
    same = [str(model), "--out", str(tmp_path / "e"), "--triton-repo", str(tmp_path / "x" / ".." / "e")]
    _fails_with_one_line(capsys, "mnn-build", same, "--triton-repo and --out are the same file")
    _fails_with_one_line(capsys, "mnn-build", [str(random_export), "--out", str(model), "--force"],
                         "is the ONNX input itself")
    assert model.read_bytes() == before and not (tmp_path / "e").exists()
    with pytest.raises(MnnEdgeError, match="per-face output and JSON output are the same file") as e:
        with claim_outputs((tmp_path / "o.json", "JSON output"), (tmp_path / "o.json", "per-face output")):
            pass
    assert "pid" not in str(e.value)


@pytest.mark.parametrize("line", ["out_dir = 5", "timing_cache = [1]"])
def test_a_build_recipe_path_of_the_wrong_type_is_one_line(line, random_export, tmp_path, capsys):
    """``out_dir = 5`` in a TensorRT recipe was a TypeError traceback from Path()."""
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'name = "r"\n[build]\n{line}\n')
    key = line.split()[0]
    _fails_with_one_line(capsys, "mnn-build", [str(random_export / "pose.onnx"), "--recipe", str(recipe)],
                         f"recipe {recipe}: bad value for '{key}': expected a path in quotes")


NOT_MEASUREMENTS = [('"mae": "fast", "n": 5', "mae='fast'"), ('"mae": 1.0, "n": "x"', "n='x'"),
                    ('"mae": [1, 2], "n": 3', "mae=[1, 2]"), ('"mae": Infinity, "nme": -4, "n": 3', "mae=inf, nme=-4")]


@pytest.mark.parametrize("kind", ["binary", "folder"])
def test_a_config_file_that_is_binary_or_a_folder_is_one_line(kind, random_export, tmp_path, capsys):
    """A binary file or a folder as ``mnn-train --config`` / ``mnn-build --recipe`` was a
    UnicodeDecodeError / IsADirectoryError traceback."""
    bad = tmp_path / "c.toml"
    bad.mkdir() if kind == "folder" else bad.write_bytes(bytes(range(128, 256)))
    words = "is not a text file" if kind == "binary" else "Is a directory"
    _fails_with_one_line(capsys, "mnn-train", ["--config", str(bad), "--data", str(tmp_path)], words)
    _fails_with_one_line(capsys, "mnn-build", [str(random_export / "pose.onnx"), "--recipe", str(bad)], words)


def test_a_results_document_without_its_sections_is_one_line(tmp_path, capsys):
    results = tmp_path / "results.json"
    results.write_text('{"schema": "mnn-edge-results/1"}')
    _fails_with_one_line(capsys, "mnn-report", ["--results", str(results), "--out", str(tmp_path / "report")],
                         f"{results}: the results document has no bench or accuracy section")


@pytest.mark.parametrize(("metrics", "shown"), NOT_MEASUREMENTS)
def test_accuracy_results_that_are_not_measurements_are_one_line(metrics, shown, tmp_path, capsys):
    """An mnn-eval result whose numbers are strings or lists was a ValueError/TypeError traceback
    in mnn-report; Infinity and negative errors were printed in the report as measured."""
    result = tmp_path / "e.json"
    result.write_text("{" + metrics + "}")
    _fails_with_one_line(capsys, "mnn-report", ["--eval", f"pose={result}", "--out", str(tmp_path / "report")],
                         f"{result}: metrics that are not measurements: {shown}")
    assert not (tmp_path / "report" / "REPORT.md").exists()


def test_calibration_images_the_machine_cannot_hold_are_refused_first(tmp_path, capsys, monkeypatch):
    """Calibration holds every input at once (0.79 MB a face): ``--calib-synthetic 2000`` on a
    1 GiB machine is one line before the export writes anything or renders a face, and a folder of
    122,000 faces without --calib-limit (96 GB) one line before any image is loaded."""
    from mnn_edge import host
    from mnn_edge.errors import MnnEdgeError
    from mnn_edge.quantize.calibration import check_inputs_fit

    monkeypatch.setattr(host, "memory_gb", lambda: 1.0)
    out = tmp_path / "export"
    _fails_with_one_line(capsys, "mnn-export", ["--random-init", "--int8", "--calib-synthetic", "2000", "--out",
                                                str(out)], "--calib-synthetic: 2000 calibration images need 2 GB")
    assert not out.exists()
    monkeypatch.setattr(host, "memory_gb", lambda: 23.0)
    with pytest.raises(MnnEdgeError, match=r"calibration: 122000 calibration images need 96 GB .* has 25 GB; "
                                           r"calibrate on fewer \(--calib-limit N"):
        check_inputs_fit(122_000, 256, "calibration")
    check_inputs_fit(256, 256, "calibration")  # the documented 64-256 passes


def test_a_stop_inside_a_deferred_block_lands_after_it():
    """A frame's JSON line and video frame are written with Ctrl-C/SIGTERM held: a signal sent
    between the two writes raises only after both (the SIGTERM test above once caught a JSON line
    for a frame its video never got)."""
    import os
    import signal

    from mnn_edge.cli_util import interrupts_deferred

    writes = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            writes.append("json")
            os.kill(os.getpid(), signal.SIGINT)
            writes.append("video")
    assert writes == ["json", "video"]
